"""The fast conversational agents: a round's batched acts are each state's own act; the dialogue-state features."""

import numpy as np
import pytest

from recworld.agents.conversation.agents import N_FEATURES, PolicyAgent, feature_matrix, features, make_crs
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
