"""The conversation channel: turns with roles, the user model decides, accepted items count, bad agents are contained."""

import pytest
from tests_support import run_collecting

from recworld.agents.conversation.agents import PolicyAgent, make_crs
from recworld.agents.conversation.layer import ConversationConfig, ConversationLayer
from recworld.agents.search import SearchConfig, SearchLayer
from recworld.errors import ConfigError
from recworld.events import INT_NONE, EventType
from recworld.payloads import ConversationEndPayload, TurnPayload
from recworld.protocols import AgentAct
from recworld.search import title_words


@pytest.fixture
def talk_world(make_world):
    def _make(seed=3, n=60, agent=None, search=False, **cfg):
        w = make_world(n=n, recommender="popularity", seed=seed)
        w.add_layer(ConversationLayer(ConversationConfig(rate=1.0, **cfg), agent or PolicyAgent()))
        if search:
            w.add_layer(SearchLayer(SearchConfig(rate=0.5)))
        return w

    return _make


def conversations(ev):
    """conversation id -> (user, [turn payloads with text], end payload, end item)."""
    out = {}
    for i in range(len(ev)):
        t = ev.type[i]
        if t == EventType.CONVERSE:
            p = TurnPayload.read(ev.payload[i])
            out.setdefault(p.conversation, [int(ev.user[i]), [], None, None])[1].append((p, ev.text[i]))
        elif t == EventType.CONVERSATION_END:
            p = ConversationEndPayload.read(ev.payload[i])
            out[p.conversation][2] = p
            out[p.conversation][3] = int(ev.item[i])
    return out


def test_conversations_are_logged_turn_by_turn_and_accepted_items_are_watched(talk_world, collect):
    w = talk_world()
    c = collect()
    w.subscribe(c)
    w.run(24)
    total = 0
    for ev, m in zip(c.events, c.metrics):
        convs = conversations(ev)
        assert m.conversations == len(convs) and m.conversation_turns == int(ev.of_type(EventType.CONVERSE).sum())
        assert m.conversation_successes == sum(1 for v in convs.values() if v[2].outcome == "success")
        for user, turns, end, end_item in convs.values():
            total += 1
            assert end is not None and [p.turn for p, _ in turns] == list(range(len(turns)))
            assert turns[0][0].role == "user" and turns[0][0].act == "request"
            assert {p.role for p, _ in turns} == {"user", "agent"}
            assert all(text for _, text in turns)
            offered = [i for p, _ in turns if p.act == "recommend" for i in p.items]
            assert set(end.accepted) <= set(offered)
            # Accepted items were watched by that user this tick, like feed items.
            watched = set(ev.item[(ev.type == EventType.WATCH) & (ev.user == user)].tolist())
            assert set(end.accepted) <= watched
            if end.outcome == "success":
                assert end_item != INT_NONE and end_item in end.accepted
                if end.mode == "target":
                    assert end_item == end.target
            else:
                assert end_item == INT_NONE
    assert total >= 20
    outcomes = {e.outcome for ev in c.events for _, _, e, _ in conversations(ev).values()}
    assert "success" in outcomes and len(outcomes) >= 2


def test_the_user_never_names_the_target_before_it_is_offered(talk_world):
    ev = run_collecting(talk_world(mode="target", n=60, reveal_first=0.8), 24)
    checked = 0
    for _user, turns, end, _ in conversations(ev).values():
        title = " ".join(title_words(_title(ev, end.target)))
        for p, text in turns:
            if p.role == "agent" and end.target in p.items:
                break
            if p.role == "user":
                assert title not in " ".join(title_words(text)), (title, text)
                assert end.target not in p.items
                checked += 1
    assert checked > 30


_TITLES = {}


def _title(ev, item):
    return _TITLES[item]


@pytest.fixture(autouse=True)
def _titles(catalog):
    _TITLES.clear()
    _TITLES.update(enumerate(catalog.titles))


def test_accept_and_reject_come_from_the_user_models_page_kernel(talk_world, monkeypatch):
    from recworld.usermodel import kernels as UK

    decided = []  # (user, slate row) of every kernel call
    calls = []
    real = UK.decide_pages

    def spy(Pa, S, IT, X, users, slates, draws, *out):
        calls.append(slates.shape)
        decided.extend((int(u), tuple(row)) for u, row in zip(users.tolist(), slates.tolist()))
        return real(Pa, S, IT, X, users, slates, draws, *out)

    monkeypatch.setattr(UK, "decide_pages", spy)
    ev = run_collecting(talk_world(ask_about_rate=0.0), 12)
    offered = [(user, tuple(p.items)) for user, turns, _, _ in conversations(ev).values() for p, _ in turns if p.act == "recommend"]
    assert offered and all(o in decided for o in offered)
    # The conversations of a tick are decided together: one kernel call holds several users' offers.
    assert any(k <= 3 and b > 1 for b, k in calls)


def test_target_and_target_free_modes_and_answers_consistent_with_the_intent(talk_world):
    ev = run_collecting(talk_world(mode="both", n=60), 24)
    convs = conversations(ev).values()
    modes = {e.mode for _, _, e, _ in convs}
    assert modes == {"target", "target_free"}
    for _, turns, end, _ in convs:
        assert end.reference and (end.target in end.reference if end.mode == "target" else end.target is None)
        answers = {}
        for p, _ in turns:
            if p.role == "user" and p.act in ("answer", "request", "reject") and p.attribute and p.value:
                answers.setdefault(p.attribute, set()).add(p.value)
        assert all(len(v) == 1 for v in answers.values()), answers  # one value per attribute, whatever the turn


class _Liar:
    """An agent that recommends an item no tool returned, and ids outside the catalog."""

    name = "liar"

    def act(self, state, tools):
        return AgentAct("recommend", text="Watch Totally Real Movie!", items=(7, 99_999))

    def observe(self, state, outcome, reward):
        pass


class _Crasher:
    name = "crasher"

    def act(self, state, tools):
        raise RuntimeError("boom")

    def observe(self, state, outcome, reward):
        pass


def test_items_no_tool_returned_never_reach_the_user_and_faults_end_cleanly(talk_world):
    for agent in (_Liar(), _Crasher()):
        w = talk_world(agent=agent)
        ev = run_collecting(w, 12)
        convs = conversations(ev)
        assert convs and all(e.outcome == "failed" and e.errors >= 1 for _, _, e, _ in convs.values())
        assert not any(p.act == "recommend" for _, turns, _, _ in convs.values() for p, _ in turns)
        assert "Totally Real Movie" not in " ".join(ev.text.values())
        assert w.layers[0].errors >= len(convs)
        assert ev.of_type(EventType.WATCH).any()  # the feed went on


class _BatchCrasher(PolicyAgent):
    """A batched agent whose round call always fails and whose single act fails for odd users only."""

    def act_all(self, states, tools):
        raise RuntimeError("the batch broke")

    def act(self, state, tools):
        if state.user % 2:
            raise RuntimeError("boom")
        return PolicyAgent.act_all(self, [state], [tools])[0]


def test_a_batched_agents_fault_ends_only_the_conversations_it_hits(talk_world):
    w = talk_world(agent=_BatchCrasher(), n=80)
    ev = run_collecting(w, 8)
    convs = conversations(ev)
    odd = [e for user, _, e, _ in convs.values() if user % 2]
    even = [e for user, _, e, _ in convs.values() if not user % 2]
    assert odd and all(e.outcome == "failed" and e.errors == 1 for e in odd)
    assert even and all(e.errors == 0 for e in even) and any(e.outcome != "failed" for e in even)
    assert w.layers[0].errors >= len(odd)


def test_conversations_and_searches_are_deterministic_and_survive_a_checkpoint(talk_world):
    from recworld.checkpoint import dump_world, load_world

    a = talk_world(seed=5, search=True)
    b = talk_world(seed=5, search=True)
    assert run_collecting(a, 3).digest() == run_collecting(b, 3).digest()
    c = load_world(dump_world(a))
    assert run_collecting(a, 3).digest() == run_collecting(c, 3).digest()
    assert run_collecting(talk_world(seed=6, search=True), 3).digest() != run_collecting(talk_world(seed=5, search=True), 3).digest()


def test_agent_registry():
    assert make_crs("policy").name == "policy"
    assert make_crs("recworld.agents.conversation.agents:AskThenRecommendAgent", {"asks": 1}).asks == 1
    with pytest.raises(ConfigError, match="unknown conversational agent 'nope'"):
        make_crs("nope")
    with pytest.raises(ConfigError, match="bad params"):
        make_crs("policy", {"bogus": 1})
    with pytest.raises(ConfigError, match=r"unknown key 'conversation.rat'"):
        ConversationLayer.from_config({"rat": 1})


def test_the_conversations_of_a_tick_share_one_recommender_call_per_round(talk_world, monkeypatch):
    w = talk_world(agent=make_crs("always_recommend"), ask_about_rate=0.0)
    rec = w.recommender
    calls = []
    real = rec.recommend

    def spy(users, k, context):
        calls.append((len(users), k))
        return real(users, k, context)

    monkeypatch.setattr(rec, "recommend", spy)
    ev = run_collecting(w, 6)
    convs = conversations(ev)
    slate = w.config.slate_size
    ranked = [b for b, k in calls if k > slate]  # the agents' candidate pools (feed pages ask for a slate)
    turns = sum(1 for _, turns, _, _ in convs.values() for p, _ in turns if p.act == "recommend")
    assert turns > len(ranked) and max(ranked) > 1  # several conversations' pools from one call


def test_a_round_of_one_is_the_single_conversation(make_world):
    """The batched loop and the one-conversation loop (Conversation-v0's) are the same logic: for one user they log the same events."""
    import numpy as np

    a, b = make_world(n=60, recommender="popularity", seed=4), make_world(n=60, recommender="popularity", seed=4)
    for w in (a, b):
        w.add_layer(ConversationLayer(ConversationConfig(rate=0.0), PolicyAgent()))  # conversations only when the test holds them
    for tick in range(6):
        digests = []
        for w, batched in ((a, False), (b, True)):
            alive = np.flatnonzero(~w.users.churned & ~w.users.in_session)
            user = int(alive[(7 * tick) % alive.size])
            w.begin_tick(only=np.array([user]))
            layer = w.layers[0]
            left = layer.converse_all(w, np.array([user])).tolist() if batched else ([user] if layer.converse(w, user) else [])
            assert left in ([], [user])
            w.end_tick()
            digests.append(w.last_events.digest())
            assert w.last_events.of_type(EventType.CONVERSATION_END).sum() == 1
        assert digests[0] == digests[1]
