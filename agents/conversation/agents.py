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

from collections.abc import Sequence
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
    """One discrete action of the policy: ask an attribute, ask the next attribute not known or asked yet (``ask_next``),
    recommend k items ranked by an expert, or end."""

    kind: str
    attribute: str | None = None
    k: int = 0
    expert: str = ""


def action_space(experts: tuple[str, ...]) -> list[Action]:
    """The policy's actions: ask each attribute, ask the next one (:func:`next_attribute`), recommend k of each expert's candidates, end."""
    return list(_action_space(tuple(experts)))


@lru_cache(maxsize=64)
def _action_space(experts: tuple[str, ...]) -> tuple[Action, ...]:
    # Built once per expert list: the agent asks for it every turn.
    acts = [Action("ask", attribute=a) for a in ATTRIBUTES]
    acts.append(Action("ask_next"))
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
    return feature_matrix([state], [n_matching], [n_items])[0]


def feature_matrix(states: Sequence[DialogueState], n_matching: Sequence[int], n_items: Sequence[int]) -> np.ndarray:
    """(len(states), N_FEATURES) float32: :func:`features` of several dialogue states (one row each), built at once."""
    rows = []
    for s in states:
        known, avoid, last = s.known, s.avoid, s.last
        act = last.act if last is not None else None
        rows.append(
            (
                1.0,
                min(s.turn / 8.0, 1.5),
                *(1.0 if a in known else 0.0 for a in ATTRIBUTES),
                *(1.0 if avoid.get(a) else 0.0 for a in ATTRIBUTES),
                min(len(s.offered) / 10.0, 1.5),
                act == "answer",
                act == "reject",
                act == "accept",
                act == "ask_about",
                0.0,  # the share of matching candidates: set below for all rows at once
                1.0 if s.offered else 0.0,
                1.0 if s.accepted else 0.0,
                len(known) / len(ATTRIBUTES),
                1.0 if act == "answer" and last.value is None else 0.0,  # type: ignore[union-attr]
            )
        )
    f = np.array(rows, np.float32).reshape(len(rows), N_FEATURES)
    f[:, 13] = np.log1p(np.asarray(n_matching, np.float64)) / np.log1p(np.maximum(np.asarray(n_items, np.float64), 1.0))
    return f


def candidates(state: DialogueState, tools: CRSTools, expert: str) -> tuple[np.ndarray, list[str]]:
    """Candidates from ``expert`` that fit what the user said (known values, no avoided ones), best first; and the tool calls made."""
    return candidates_all([state], [tools], expert)[0]


def candidates_all(states: Sequence[DialogueState], tools: Sequence[CRSTools], expert: str) -> list[tuple[np.ndarray, list[str]]]:
    """:func:`candidates` of several conversations (each with its own tools), best first, with the tool calls made.

    Tools that keep a ``fit_cache`` dict (the world's) share each distinct
    request's fit over the whole catalog (:func:`fits` once per distinct
    known/avoided values, not once per conversation and turn).
    """
    out = []
    for s, t in zip(states, tools):
        exclude = tuple(s.offered)
        query = " ".join(v for v in s.known.values() if v)
        k = POOL or t.n_items
        if expert == "search" and query:
            pool = t.search(query, k, exclude=exclude)
            calls = ["search"]
        else:
            name = expert if expert != "search" else t.experts[-1]
            pool = t.rank(name, k, exclude=exclude)
            calls = [f"rank:{name}"]
        out.append((pool[fit_mask(s, t)[pool]], calls))
    return out


def fit_mask(state: DialogueState, tools: CRSTools) -> np.ndarray:
    """(tools.n_items,) bool: :func:`fits` over the whole catalog, kept in the tools' ``fit_cache`` when they have one."""
    cache: dict[Any, np.ndarray] | None = getattr(tools, "fit_cache", None)
    key = (tools.n_items, tuple(state.known.items()), tuple((a, tuple(sorted(vs))) for a, vs in state.avoid.items()))
    m = cache.get(key) if cache is not None else None
    if m is None:
        m = fits(state, tools, np.arange(tools.n_items))
        if cache is not None:
            if len(cache) >= FIT_CACHE:
                cache.clear()
            cache[key] = m
    return m


#: Distinct fits kept per world (each a bool per item).
FIT_CACHE = 4096


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


def next_attribute(state: DialogueState) -> str | None:
    """The first attribute (in :data:`ATTRIBUTES` order) neither known nor asked yet in this conversation; ``None`` when none is left.

    One action that means "ask what we do not know yet" lets a linear policy express "ask until n attributes are
    known" with one weight column instead of three that must agree (a plateau a policy search rarely crosses).
    """
    asked = {m.attribute for m in state.messages if m.role == "agent" and m.act == "ask"}
    return next((a for a in ATTRIBUTES if a not in state.known and a not in asked), None)


def default_weights(n_experts: int) -> np.ndarray:
    """Hand-set starting weights: ask the genre, then the era, then recommend three search results (what training improves on)."""
    acts = action_space(tuple(f"e{i}" for i in range(n_experts)))
    w = np.zeros((N_FEATURES, len(acts)), np.float32)
    for j, a in enumerate(acts):
        if a.kind == "ask_next":
            w[0, j] = -10.0  # not used by the hand-set policy
        elif a.kind == "ask":
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
            n_fixed = len(action_space(()))  # the asks, ask_next and end: the rest is K_CHOICES per expert
            shape = self.weights.shape
            if len(shape) != 2 or shape[0] != N_FEATURES or shape[1] <= n_fixed or (shape[1] - n_fixed) % len(K_CHOICES):
                # Checked here, not at the first turn: a turn's error ends the conversation quietly, and every one would fail.
                raise ConfigError(
                    f"crs.params.path: {path} holds weights of shape {shape}; this version's policy needs ({N_FEATURES}, {n_fixed} + "
                    f"{len(K_CHOICES)} per expert) (a file from before the ask_next action?); retrain with `recworld train --env conversation`"
                )
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
        return self.choose_all(np.asarray(feats)[None, :], experts)[0]

    def choose_all(self, feats: np.ndarray, experts: tuple[str, ...]) -> list[int]:
        """The action index for each row of ``feats`` ((B, N_FEATURES)).

        One product per row, not one matrix product: a row's logits are then
        bit for bit those of a single state, whatever the batch (a BLAS matrix
        product may sum in another order and flip near-ties).
        """
        w = self.policy_weights(experts)
        out = []
        for f in feats:
            logits = f @ w
            if self.greedy:
                out.append(int(np.argmax(logits)))
            else:
                p = np.exp(logits - logits.max())
                out.append(int(self.rng.choice(p.size, p=p / p.sum())))
        return out

    def act(self, state: DialogueState, tools: CRSTools) -> AgentAct:
        """One turn: answer a question about an item, else the policy's action."""
        return self.act_all([state], [tools])[0]

    def act_all(self, states: Sequence[DialogueState], tools: Sequence[CRSTools]) -> list[AgentAct]:
        """:meth:`act` for several conversations at once (one round of the world's conversations): candidate pools
        for all (:func:`candidates_all`), features as a matrix (:func:`feature_matrix`), then each state's action."""
        out = answers_asked(states)
        for experts, rows in _by_key([r for r, a in enumerate(out) if a is None], lambda r: tools[r].experts):
            st, tl = [states[r] for r in rows], [tools[r] for r in rows]
            pools = candidates_all(st, tl, experts[0])
            feats = feature_matrix(st, [p.size for p, _ in pools], [t.n_items for t in tl])
            acts = action_space(experts)
            for r, s, t, (pool, calls), j in zip(rows, st, tl, pools, self.choose_all(feats, experts)):
                out[r] = decode(acts[j], s, t, pool, calls)
        return out  # type: ignore[return-value]

    def observe(self, state: DialogueState, outcome: str, reward: float) -> None:
        """Tally outcomes (the policy itself is trained in ``Conversation-v0``)."""
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def answers_asked(states: Sequence[DialogueState]) -> list[AgentAct | None]:
    """Per state, the answer to the user's question about an item (``facts``) when they just asked one, else ``None``."""
    out: list[AgentAct | None] = []
    for s in states:
        last = s.last
        out.append(AgentAct("answer_item", items=last.items[:1], tools=("facts",)) if last is not None and last.act == "ask_about" and last.items else None)
    return out


def _by_key(rows: list[int], key: Any) -> list[tuple[Any, list[int]]]:
    """``rows`` grouped by ``key(row)``, groups in order of first appearance, rows in order."""
    groups: dict[Any, list[int]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return list(groups.items())


def decode(a: Action, state: DialogueState, tools: CRSTools, pool: np.ndarray, calls: list[str]) -> AgentAct:
    """The :class:`AgentAct` of a policy action (recommend: the expert's best fitting candidates; ``ask_next`` with
    every attribute known or asked: recommend :data:`MAX_ITEMS` of the platform recommender's, as there is nothing left to ask)."""
    if a.kind == "ask_next":
        attr = next_attribute(state)
        a = Action("ask", attribute=attr) if attr is not None else Action("recommend", k=MAX_ITEMS, expert=tools.experts[-1])
    if a.kind == "ask":
        return AgentAct("ask", attribute=a.attribute)
    if a.kind == "end":
        return AgentAct("end")
    if a.expert != tools.experts[0] or pool.size == 0:
        pool, calls = candidates(state, tools, a.expert)
        if pool.size == 0:  # nothing fits everything said: the expert's best, unfiltered
            pool = tools.rank(tools.experts[-1], POOL or tools.n_items, exclude=tuple(state.offered))
            calls = [*calls, f"rank:{tools.experts[-1]}"]
    return AgentAct("recommend", items=tuple(pool[: a.k].tolist()), tools=tuple(calls), reason=a.expert)


class AlwaysRecommendAgent(PolicyAgent):
    """Baseline: recommend the platform recommender's top 3 fitting items every turn, never ask."""

    name = "always_recommend"

    def act_all(self, states: Sequence[DialogueState], tools: Sequence[CRSTools]) -> list[AgentAct]:
        out = answers_asked(states)
        for expert, rows in _by_key([r for r, a in enumerate(out) if a is None], lambda r: tools[r].experts[-1]):
            st, tl = [states[r] for r in rows], [tools[r] for r in rows]
            for r, s, t, (pool, calls) in zip(rows, st, tl, candidates_all(st, tl, expert)):
                out[r] = decode(Action("recommend", k=3, expert=expert), s, t, pool, calls)
        return out  # type: ignore[return-value]


class AskThenRecommendAgent(PolicyAgent):
    """Baseline: ask ``asks`` attributes (genre, then era, ...), then recommend 3 search results every turn."""

    name = "ask_then_recommend"

    def __init__(self, asks: int = 2, **kw: Any) -> None:
        super().__init__(**kw)
        self.asks = int(asks)

    def act_all(self, states: Sequence[DialogueState], tools: Sequence[CRSTools]) -> list[AgentAct]:
        out = answers_asked(states)
        rows = []
        for r, s in enumerate(states):
            if out[r] is not None:
                continue
            asked = sum(1 for m in s.messages if m.role == "agent" and m.act == "ask")
            ask = next((a for a in ATTRIBUTES if a not in s.known), None) if asked < self.asks else None
            if ask is not None:
                out[r] = AgentAct("ask", attribute=ask)
            else:
                rows.append(r)
        st, tl = [states[r] for r in rows], [tools[r] for r in rows]
        for r, s, t, (pool, calls) in zip(rows, st, tl, candidates_all(st, tl, "search")):
            out[r] = decode(Action("recommend", k=3, expert="search"), s, t, pool, calls)
        return out  # type: ignore[return-value]


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
    "answers_asked",
    "candidates",
    "candidates_all",
    "crs_names",
    "decode",
    "default_weights",
    "feature_matrix",
    "features",
    "fit_mask",
    "fits",
    "make_crs",
    "next_attribute",
]
