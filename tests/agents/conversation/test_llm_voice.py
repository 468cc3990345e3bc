"""Conversation turns worded by an LLM brain (hybrid) against a scripted OpenAI-compatible server on 127.0.0.1."""

import json

import numpy as np
from tests_support import run_collecting

from recworld.agents.brains.llm import build_brain_from_config
from recworld.agents.conversation.layer import ConversationConfig, ConversationLayer
from recworld.events import EventType
from recworld.llm.testing import ScriptedLLMServer
from recworld.payloads import TurnPayload
from recworld.search import title_words

DECISION = {"watch": [1], "ratings": [4], "feeling": "Fine.", "leave": False, "instruction": ""}


def _draft(req):
    return next(ln for ln in req.prompt_text.splitlines()[::-1] if ln.startswith("Draft:"))[len("Draft:") :].strip()


def _world(make_world, srv):
    llm = {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None, "backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 2.0}
    brain = build_brain_from_config("hybrid", {"max_conversation_calls_per_tick": None}, llm, seed=3)
    w = make_world(n=40, brain=brain, recommender="popularity", seed=2)
    w.add_layer(brain)
    w.add_layer(ConversationLayer(ConversationConfig(rate=1.0, mode="target")))
    return w


def _user_turns(ev):
    for i in np.flatnonzero(ev.of_type(EventType.CONVERSE)):
        p = TurnPayload.read(ev.payload[int(i)])
        if p.role == "user":
            yield p, ev.text[int(i)]


def test_the_llm_words_user_turns_keeping_their_meaning(make_world):
    def answer(req):
        if req.json_schema is not None:
            return json.dumps(DECISION)
        if req.prompt_text.rstrip().endswith('Reply: "'):
            return f'Well, in my own words: {_draft(req)}"'
        return 'Nice."'

    with ScriptedLLMServer(answer) as srv:
        w = _world(make_world, srv)
        ev = run_collecting(w, 12)
        w.close()
    turns = list(_user_turns(ev))
    llm = [(p, t) for p, t in turns if p.by == "llm"]
    assert llm and all(t.startswith("Well, in my own words") for _, t in llm)
    assert all(p.act in ("request", "answer", "reject", "leave") for p, _ in llm)
    assert all(p.value.lower() in t.lower() for p, t in llm if p.value)  # an answer keeps the value it gives
    assert any(p.by == "template" for p, _ in turns)  # accept turns name items: templated


def test_text_that_names_the_target_or_drops_the_answer_falls_back_to_the_template(make_world, catalog):
    said = {}

    def answer(req):
        if req.json_schema is not None:
            return json.dumps(DECISION)
        if req.prompt_text.rstrip().endswith('Reply: "'):
            return 'The one I have in mind, nothing else"'
        return 'Nice."'

    # The scripted model names each conversation's target; the layer must refuse it.
    with ScriptedLLMServer(answer) as srv:
        w = _world(make_world, srv)
        layer = w.layers[-1]
        real = layer.new_intent

        def spy(world, user):
            it = real(world, user)
            said["title"] = " ".join(title_words(catalog.titles[it.target]))
            srv.script = lambda req: (
                json.dumps(DECISION)
                if req.json_schema is not None
                else (f'I want {said["title"]}, nothing else"' if req.prompt_text.rstrip().endswith('Reply: "') else 'Nice."')
            )
            return it

        layer.new_intent = spy
        ev = run_collecting(w, 12)
        w.close()
    turns = list(_user_turns(ev))
    assert turns and all(p.by == "template" for p, _ in turns)
    assert not any("nothing else" in t for _, t in turns)
