"""Conversational agents behind one Protocol (:class:`recworld.protocols.ConversationalAgent`), and their registry.

Built-ins are looked up by name (``crs: {name: policy}``); any other agent by
a ``"package.module:ClassName"`` string.

:class:`PolicyAgent` is the fast agent: templated language, and every
decision — which attribute to ask, which ranking expert, how many items,
when to stop — is one action of a learnable linear-softmax policy over the
dialogue state's features (:func:`features`). The same features and actions
make ``RecWorld/Conversation-v0``, so a policy trained there is used here
unchanged (``crs: {name: policy, params: {path: policy.npz}}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from recworld.agents.conversation.intent import ATTRIBUTES
from recworld.errors import ConfigError
from recworld.plugins import make_plugin
from recworld.protocols import AgentAct, CRSTools, DialogueState

BUILTIN_CRS: dict[str, str] = {
    "policy": "recworld.agents.conversation.agents:PolicyAgent",
    "always_recommend": "recworld.agents.conversation.agents:AlwaysRecommendAgent",
    "ask_then_recommend": "recworld.agents.conversation.agents:AskThenRecommendAgent",
    "llm": "recworld.agents.conversation.llm_agent:LLMAgent",
}

#: Items a recommendation may hold at most (more are cut).
MAX_ITEMS = 5
#: Candidates an expert is asked for before the known attributes filter them: the whole catalog, so that
#: every answer narrows what is recommended (a top-100 pool filtered by genre and era is often empty,
#: and the fallback ignores the answers).
POOL: int | None = None
K_CHOICES: tuple[int, ...] = (1, 3, 5)


@dataclass(frozen=True)
class Action:
    """One discrete action of the policy: ask an attribute, recommend k items ranked by an expert, or end."""

    kind: str
    attribute: str | None = None
    k: int = 0
    expert: str = ""


def action_space(experts: tuple[str, ...]) -> list[Action]:
    """The policy's actions: ask each attribute, recommend k of each expert's candidates, end."""
    return list(_action_space(tuple(experts)))


@lru_cache(maxsize=64)
def _action_space(experts: tuple[str, ...]) -> tuple[Action, ...]:
    # Built once per expert list: the agent asks for it every turn.
    acts = [Action("ask", attribute=a) for a in ATTRIBUTES]
    acts += [Action("recommend", k=k, expert=e) for e in experts for k in K_CHOICES]
    return (*acts, Action("end"))


N_FEATURES = 18


def features(state: DialogueState, n_matching: int, n_items: int) -> np.ndarray:
    """The dialogue state as the policy sees it (also ``Conversation-v0``'s observation).

    Bias; turn; which attributes are known; which were rejected; items offered;
    the last user act (answer, reject, partial accept, ask about); how many candidates match what is known;
    whether anything was recommended yet; whether the user watched an offered item and stayed (they are
    after something else: a hidden target); how many attributes are known; whether the last answer
    named no preference (asking that gave nothing).
    """
    f = np.zeros(N_FEATURES, np.float32)
    f[0] = 1.0
    f[1] = min(state.turn / 8.0, 1.5)
    for j, a in enumerate(ATTRIBUTES):
        f[2 + j] = 1.0 if a in state.known else 0.0
        f[5 + j] = 1.0 if state.avoid.get(a) else 0.0
    f[8] = min(len(state.offered) / 10.0, 1.5)
    last = state.last
    if last is not None:
        f[9] = last.act == "answer"
        f[10] = last.act == "reject"
        f[11] = last.act == "accept"
        f[12] = last.act == "ask_about"
    f[13] = np.log1p(n_matching) / np.log1p(max(n_items, 1))
    f[14] = 1.0 if state.offered else 0.0
    f[15] = 1.0 if state.accepted else 0.0
    f[16] = len(state.known) / len(ATTRIBUTES)
    f[17] = 1.0 if last is not None and last.act == "answer" and last.value is None else 0.0
    return f


def candidates(state: DialogueState, tools: CRSTools, expert: str) -> tuple[np.ndarray, list[str]]:
    """Candidates from ``expert`` that fit what the user said (known values, no avoided ones), best first; and the tool calls made."""
    exclude = tuple(state.offered)
    query = " ".join(v for v in state.known.values() if v)
    k = POOL or tools.n_items
    if expert == "search" and query:
        pool = tools.search(query, k, exclude=exclude)
        calls = ["search"]
    else:
        name = expert if expert != "search" else tools.experts[-1]
        pool = tools.rank(name, k, exclude=exclude)
        calls = [f"rank:{name}"]
    return pool[fits(state, tools, pool)], calls


def fits(state: DialogueState, tools: CRSTools, items: np.ndarray) -> np.ndarray:
    """(len(items),) bool: the items have every value the user asked for and none they turned down."""
    ok = np.ones(len(items), bool)
    for a, v in state.known.items():
        if v:
            ok &= tools.matching(items, a, v)
    for a, vs in state.avoid.items():
        for v in vs:
            if v and v != state.known.get(a):
                ok &= ~tools.matching(items, a, v)
    return ok


def default_weights(n_experts: int) -> np.ndarray:
    """Hand-set starting weights: ask the genre, then the era, then recommend three search results (what training improves on)."""
    acts = action_space(tuple(f"e{i}" for i in range(n_experts)))
    w = np.zeros((N_FEATURES, len(acts)), np.float32)
    for j, a in enumerate(acts):
        if a.kind == "ask":
            idx = ATTRIBUTES.index(a.attribute)
            w[0, j] = {"genre": 1.0, "era": 0.8, "popularity": -1.0}[a.attribute]
            w[2 + idx, j] = -3.0
        elif a.kind == "recommend":
            first = a.expert == "e0"
            w[0, j] = 0.2 if (first and a.k == 3) else -0.5
            w[2, j] = w[3, j] = 0.5
        else:
            w[0, j] = -5.0
            w[1, j] = 2.0
    return w


class PolicyAgent:
    """The fast conversational agent: templated language, decisions from a learnable linear-softmax policy.

    Args:
        path: weights saved by ``recworld train --env conversation`` (``.npz``);
            default: :func:`default_weights`.
        greedy: take the best action (else sample with ``seed``).
        seed: the sampling seed when not greedy.
    """

    name = "policy"

    def __init__(self, path: str | None = None, greedy: bool = True, seed: int = 0) -> None:
        self.path = path
        self.greedy = bool(greedy)
        self.rng = np.random.default_rng(seed)
        self.weights: np.ndarray | None = None
        if path is not None:
            p = Path(path)
            if not p.exists():
                raise ConfigError(f"crs.params.path: {path} does not exist; train one with `recworld train --env conversation --out {path}`")
            try:
                self.weights = np.load(p)["weights"].astype(np.float32)
            except (OSError, KeyError, ValueError):
                raise ConfigError(
                    f"crs.params.path: {path} is not a conversation policy (.npz with 'weights'); train one with `recworld train --env conversation`"
                ) from None
        self.outcomes: dict[str, int] = {}

    def policy_weights(self, experts: tuple[str, ...]) -> np.ndarray:
        """The weights for this action space (checked against it)."""
        acts = action_space(experts)
        if self.weights is None:
            self.weights = default_weights(len(experts))
        if self.weights.shape != (N_FEATURES, len(acts)):
            raise ConfigError(
                f"crs policy weights have shape {self.weights.shape}; this world's action space needs {(N_FEATURES, len(acts))} (experts: {', '.join(experts)})"
            )
        return self.weights

    def choose(self, feats: np.ndarray, experts: tuple[str, ...]) -> int:
        """The action index for ``feats``."""
        logits = feats @ self.policy_weights(experts)
        if self.greedy:
            return int(np.argmax(logits))
        p = np.exp(logits - logits.max())
        return int(self.rng.choice(p.size, p=p / p.sum()))

    def act(self, state: DialogueState, tools: CRSTools) -> AgentAct:
        """One turn: answer a question about an item, else the policy's action."""
        last = state.last
        if last is not None and last.act == "ask_about" and last.items:
            return AgentAct("answer_item", items=last.items[:1], tools=("facts",))
        experts = tools.experts
        pool, calls = candidates(state, tools, experts[0])
        a = action_space(experts)[self.choose(features(state, pool.size, tools.n_items), experts)]
        return decode(a, state, tools, pool, calls)

    def observe(self, state: DialogueState, outcome: str, reward: float) -> None:
        """Tally outcomes (the policy itself is trained in ``Conversation-v0``)."""
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def decode(a: Action, state: DialogueState, tools: CRSTools, pool: np.ndarray, calls: list[str]) -> AgentAct:
    """The :class:`AgentAct` of a policy action (recommend: the expert's best fitting candidates)."""
    if a.kind == "ask":
        return AgentAct("ask", attribute=a.attribute)
    if a.kind == "end":
        return AgentAct("end")
    if a.expert != tools.experts[0] or pool.size == 0:
        pool, calls = candidates(state, tools, a.expert)
        if pool.size == 0:  # nothing fits everything said: the expert's best, unfiltered
            pool = tools.rank(tools.experts[-1], POOL or tools.n_items, exclude=tuple(state.offered))
            calls = [*calls, f"rank:{tools.experts[-1]}"]
    return AgentAct("recommend", items=tuple(int(i) for i in pool[: a.k]), tools=tuple(calls), reason=a.expert)


class AlwaysRecommendAgent(PolicyAgent):
    """Baseline: recommend the platform recommender's top 3 fitting items every turn, never ask."""

    name = "always_recommend"

    def act(self, state: DialogueState, tools: CRSTools) -> AgentAct:
        last = state.last
        if last is not None and last.act == "ask_about" and last.items:
            return AgentAct("answer_item", items=last.items[:1], tools=("facts",))
        pool, calls = candidates(state, tools, tools.experts[-1])
        return decode(Action("recommend", k=3, expert=tools.experts[-1]), state, tools, pool, calls)


class AskThenRecommendAgent(PolicyAgent):
    """Baseline: ask ``asks`` attributes (genre, then era, ...), then recommend 3 search results every turn."""

    name = "ask_then_recommend"

    def __init__(self, asks: int = 2, **kw: Any) -> None:
        super().__init__(**kw)
        self.asks = int(asks)

    def act(self, state: DialogueState, tools: CRSTools) -> AgentAct:
        last = state.last
        if last is not None and last.act == "ask_about" and last.items:
            return AgentAct("answer_item", items=last.items[:1], tools=("facts",))
        asked = sum(1 for m in state.messages if m.role == "agent" and m.act == "ask")
        if asked < self.asks:
            for a in ATTRIBUTES:
                if a not in state.known:
                    return AgentAct("ask", attribute=a)
        pool, calls = candidates(state, tools, "search")
        return decode(Action("recommend", k=3, expert="search"), state, tools, pool, calls)


def crs_names() -> list[str]:
    """Names of the built-in conversational agents."""
    return sorted(BUILTIN_CRS)


def make_crs(name: str, params: dict[str, Any] | None = None) -> Any:
    """Instantiate a conversational agent by built-in name or ``module:Class`` path.

    Raises:
        ConfigError: unknown name, unimportable path or bad parameters.
    """
    return make_plugin("conversational agent", BUILTIN_CRS, name, params)


__all__ = [
    "BUILTIN_CRS",
    "K_CHOICES",
    "MAX_ITEMS",
    "N_FEATURES",
    "Action",
    "AlwaysRecommendAgent",
    "AskThenRecommendAgent",
    "PolicyAgent",
    "action_space",
    "candidates",
    "crs_names",
    "decode",
    "default_weights",
    "features",
    "fits",
    "make_crs",
]
