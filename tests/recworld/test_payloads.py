"""Typed event payloads: what writers store is what readers parse."""

from __future__ import annotations

import json

import numpy as np

from recworld.events import EventType
from recworld.payloads import (
    LEAVE_PAYLOADS,
    LEAVE_REASONS,
    PAYLOADS,
    AuthoredPayload,
    ChatPayload,
    ConversationEndPayload,
    LeavePayload,
    PostPayload,
    SocialWatchPayload,
    TurnPayload,
    json_fragment,
)


def test_round_trip_and_optional_fields():
    p = PostPayload(post=3, parent_post=None, cascade=3, depth=0, by="llm")
    d = p.dump()
    assert d == {"post": 3, "parent_post": None, "cascade": 3, "depth": 0, "by": "llm"}  # about_item left out, parent_post kept
    assert PostPayload.read(json.dumps(d)) == p
    q = PostPayload(post=4, parent_post=3, cascade=3, depth=1, about_item=17)
    assert q.dump()["about_item"] == 17 and PostPayload.read(q.dump()) == q
    assert [LeavePayload.read(x).reason for x in LEAVE_PAYLOADS] == list(LEAVE_REASONS)


def test_dump_of_is_the_models_dump_without_validation():
    """The conversation layer's hot path writes turns with dump_of: the same dict, key order included, as the model's dump."""
    import pytest

    cases = [
        {"conversation": 3, "turn": 0, "role": "user", "act": "request"},
        {"conversation": 3, "turn": 1, "role": "agent", "act": "recommend", "items": [4, 9], "tools": ["search"], "by": "template"},
        {"conversation": 5, "turn": 2, "role": "user", "act": "answer", "attribute": "genre", "value": "comedy", "by": "llm"},
        {"conversation": 5, "turn": 3, "role": "user", "act": "reject", "items": [1], "attribute": None, "value": None},
    ]
    for kw in cases:
        fast, slow = TurnPayload.dump_of(**kw), TurnPayload(**kw).dump()
        assert fast == slow and list(fast) == list(slow)
    end = {"conversation": 2, "outcome": "success", "mode": "target", "agent": "policy", "target": 7, "reference": [7]}
    end |= {"recommended": [[1, 2, 3], [], [7]], "accepted": [2, 7], "success_turn": 6, "errors": 0}
    for kw in (end, {**end, "target": None, "success_turn": None, "outcome": "abandoned", "mode": "target_free"}):
        fast, slow = ConversationEndPayload.dump_of(**kw), ConversationEndPayload(**kw).dump()
        assert fast == slow and list(fast) == list(slow)
    p = PostPayload(post=3, parent_post=None, cascade=3, depth=0)
    assert PostPayload.dump_of(post=3, parent_post=None, cascade=3, depth=0) == p.dump()
    with pytest.raises(TypeError, match="no field 'colour'"):
        TurnPayload.dump_of(conversation=1, turn=0, role="user", act="request", colour=1)
    with pytest.raises(TypeError, match="'act' is required"):
        TurnPayload.dump_of(conversation=1, turn=0, role="user")
    a = TurnPayload.dump_of(conversation=1, turn=0, role="user", act="request")
    a["items"].append(7)  # defaults are copies, as the model's
    assert TurnPayload.dump_of(conversation=1, turn=0, role="user", act="request")["items"] == []


def test_malformed_payloads_read_as_none():
    for raw in (None, "", "{", "[1, 2]", '"text"', '{"post": "x"}', {"reason": "bored"}):
        assert PostPayload.read(raw) is None or raw == ""
        assert LeavePayload.read(raw) is None
    assert AuthoredPayload.read('{"by": "llm", "later_key": 1}') == AuthoredPayload(by="llm")  # newer keys are ignored


def test_json_fragment_matches_stored_json():
    from recworld.events import payload_json

    assert json_fragment("by", "llm") in payload_json(AuthoredPayload(by="llm").dump())


def test_every_payload_the_simulator_writes_parses_with_its_model(make_world):
    """A run with the social, conversation and search layers: every event with a payload parses with the model of its type, and only those types carry one."""
    from tests_support import run_collecting

    from recworld.agents.conversation.layer import ConversationLayer
    from recworld.agents.search import SearchLayer
    from recworld.agents.social import SocialLayer

    world = make_world(n=120, recommender="mf")
    layer = SocialLayer.from_config(world, {"post_rate": 0.6, "chat_rate": 0.3, "reshare_rate": 0.8, "item_post_rate": 0.3}, brain=world.brain, seed=2)
    world.add_layer(layer)
    world.add_layer(ConversationLayer.from_config({"rate": 0.3}))
    world.add_layer(SearchLayer.from_config({"rate": 0.3}))
    ev = run_collecting(world, 20)
    seen = set()
    for i, p in ev.payload.items():
        t = EventType(int(ev.type[i]))
        model = PAYLOADS[t]
        assert model.read(json.loads(json.dumps(p))) is not None, (t, p)
        assert model.read(p).dump() == p
        seen.add(t)
    talk = (EventType.SEARCH, EventType.CONVERSE, EventType.CONVERSATION_END)
    assert seen >= {EventType.LEAVE, EventType.POST, EventType.SOCIAL_WATCH, EventType.CHAT, *talk}
    for t in (EventType.POST, EventType.SOCIAL_WATCH, EventType.CHAT, EventType.LEAVE, *talk):
        idx = np.flatnonzero(ev.of_type(t))
        assert all(int(i) in ev.payload for i in idx), t
    assert isinstance(PostPayload.read(ev.payload[int(np.flatnonzero(ev.of_type(EventType.POST))[0])]), PostPayload)
    assert SocialWatchPayload.read(ev.payload[int(np.flatnonzero(ev.of_type(EventType.SOCIAL_WATCH))[0])]) is not None
    assert ChatPayload.read(ev.payload[int(np.flatnonzero(ev.of_type(EventType.CHAT))[0])]) is not None
