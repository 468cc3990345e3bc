"""The fast conversational agents: a round's batched acts are each state's own act; the dialogue-state features; ``ask_next``."""

import numpy as np
import pytest

from recworld.agents.conversation.agents import (
    N_FEATURES,
    Action,
    PolicyAgent,
    action_space,
    decode,
    default_weights,
    feature_matrix,
    features,
    make_crs,
    next_attribute,
)
from recworld.agents.conversation.layer import ConversationConfig, ConversationLayer, batches
from recworld.protocols import AgentAct, DialogueState, Message


@pytest.mark.parametrize("name", ["policy", "always_recommend", "ask_then_recommend"])
def test_a_rounds_batched_acts_are_each_states_own_act(make_world, name):
    """act_all over a round (candidate pools for all, features as a matrix, grouped by expert) answers what act answers for each state alone."""
    agent = make_crs(name)
    w = make_world(n=200, recommender="popularity", seed=3)
    w.add_layer(ConversationLayer(ConversationConfig(rate=1.0), agent))
    real = agent.act_all
    rounds = []

    def spy(states, tools):
        acts = real(states, tools)
        rounds.append(len(states))
        assert acts == [real([s], [t])[0] for s, t in zip(states, tools)]
        return acts

    agent.act_all = spy
    w.run(6)
    assert sum(rounds) > 40 and max(rounds) > 5  # many conversations, several per round


def _state(**kw):
    s = DialogueState(conversation=0, user=1, tick=2)
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def test_features_of_a_dialogue_state():
    fresh = _state(messages=[Message("user", "request", "Help me find a film?")])
    f = features(fresh, 99, 1682)
    want = np.zeros(N_FEATURES, np.float32)
    want[0] = 1.0
    want[13] = np.log1p(99) / np.log1p(1682)
    assert f.dtype == np.float32 and np.array_equal(f, want)

    later = _state(
        turn=3,
        messages=[Message("agent", "ask", "Which genre?", attribute="genre"), Message("user", "answer", "I don't mind.", attribute="genre")],
        known={"era": "1990s"},
        avoid={"popularity": {"well-known"}},
        offered=[4, 5, 6],
        accepted=[5],
    )
    g = features(later, 0, 1682)
    assert g[1] == np.float32(3 / 8) and g[2:8].tolist() == [0, 1, 0, 0, 0, 1]
    assert g[8] == np.float32(0.3) and g[9] == 1 and g[10:13].tolist() == [0, 0, 0]
    assert g[13] == 0 and g[14] == 1 and g[15] == 1 and g[16] == np.float32(1 / 3) and g[17] == 1  # the answer named no preference
    # The matrix of several states is their rows, whatever the batch.
    m = feature_matrix([fresh, later, fresh], [99, 0, 7], [1682, 1682, 1682])
    assert m.shape == (3, N_FEATURES) and np.array_equal(m[0], f) and np.array_equal(m[1], g) and np.array_equal(m[2], features(fresh, 7, 1682))


class _AlwaysAsk(PolicyAgent):
    """A PolicyAgent subclass written for one state at a time (it overrides act only)."""

    def act(self, state, tools):
        return AgentAct("ask", attribute="era")


def test_a_subclass_that_overrides_act_alone_keeps_its_act(make_world):
    from tests_support import run_collecting

    from recworld.events import EventType
    from recworld.payloads import TurnPayload

    assert batches(PolicyAgent()) and batches(make_crs("always_recommend")) and not batches(_AlwaysAsk())
    w = make_world(n=60, recommender="popularity", seed=3)
    w.add_layer(ConversationLayer(ConversationConfig(rate=1.0), _AlwaysAsk()))
    ev = run_collecting(w, 3)
    agent_turns = [TurnPayload.read(ev.payload[i]) for i in range(len(ev)) if ev.type[i] == EventType.CONVERSE]
    agent_turns = [p for p in agent_turns if p.role == "agent"]
    assert agent_turns and all(p.act == "ask" and p.attribute == "era" for p in agent_turns)


class _Tools:
    """The tools ``decode`` uses for a recommendation: a fixed ranking, every item fits."""

    experts = ("search", "popularity")
    n_items = 10

    def rank(self, expert, k, exclude=()):
        return np.array([i for i in range(self.n_items) if i not in exclude][:k])

    def search(self, query, k, exclude=()):
        return self.rank("search", k, exclude)

    def matching(self, items, attribute, value):
        return np.ones(len(items), bool)


def test_ask_next_skips_known_and_already_asked_attributes_then_recommends():
    s = DialogueState(conversation=0, user=0, tick=0)
    tools = _Tools()
    nxt = Action("ask_next")
    assert decode(nxt, s, tools, np.arange(10), []).attribute == "genre"
    s.known["genre"] = "drama"  # e.g. named in a rejection's reason
    assert next_attribute(s) == "era"
    s.messages.append(Message("agent", "ask", "Which era?", (), "era"))  # asked, the user had no preference
    assert decode(nxt, s, tools, np.arange(10), []).attribute == "popularity"
    s.known["popularity"] = "well-known"
    act = decode(nxt, s, tools, np.arange(10), ["rank:popularity"])
    assert next_attribute(s) is None and act.kind == "recommend" and len(act.items) == 5


def test_the_hand_set_default_weights_never_pick_ask_next():
    acts = action_space(("search", "popularity"))
    w = default_weights(2)
    j = next(i for i, a in enumerate(acts) if a.kind == "ask_next")
    rng = np.random.default_rng(0)
    feats = rng.uniform(0, 1.5, (500, w.shape[0]))
    feats[:, 0] = 1.0
    assert w.shape == (18, len(acts)) and not (np.argmax(feats @ w, 1) == j).any()


def test_a_policy_file_of_another_action_space_is_refused_when_loaded(tmp_path):
    from recworld.errors import ConfigError

    old = tmp_path / "old.npz"
    np.savez(old, weights=np.zeros((18, 10), np.float32))  # before ask_next: 3 asks + 2 experts x 3 + end
    with pytest.raises(ConfigError, match=r"shape \(18, 10\).*retrain"):
        PolicyAgent(path=str(old))
    ok = tmp_path / "ok.npz"
    np.savez(ok, weights=default_weights(2))
    assert PolicyAgent(path=str(ok)).weights.shape == (18, 11)
