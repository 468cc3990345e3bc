"""Conversations of ``Conversation-v0``: ``n`` slots, each holding one conversation with a user of one shared world.

The single env (:class:`~recworld.envs.conversation.ConversationEnv`) is one
slot; the native vector env
(:class:`~recworld.envs.conversation_vector.ConversationVectorEnv`) is many,
advanced together: a round is one agent turn in every live slot, the users'
decisions on all the items offered in a round are one call of the user
model's page kernel per slate length (:func:`decide_offers`, as in the
world's own conversations), and the candidate pools and features of all
slots are computed together. Both envs run this code, so a vector env of one
slot is the single env, step for step.

The world's clock: a tick closes (``World.end_tick``) once as many
conversations have ended in it as there are slots, so each slot holds about
one conversation per tick, as the single env does (one conversation, one
tick). A conversation's user is in session from its first turn to its end,
when their session ends (churn and the time away come from the user model),
whatever the tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recworld.agents.brains import UtilityBrain
from recworld.agents.conversation import language as L
from recworld.agents.conversation.agents import Action, PolicyAgent, action_space, answers_asked, candidates_all, decode, feature_matrix
from recworld.agents.conversation.layer import Conversation, ConversationConfig, ConversationLayer, decide_offers, flush_all, share_ranks
from recworld.agents.population import SampledPopulation
from recworld.agents.recommenders import make_recommender
from recworld.config import WorldConfig
from recworld.events import EventType
from recworld.protocols import AgentAct
from recworld.usermodel.bundled import bundled_catalog, bundled_model
from recworld.world import World


@dataclass(frozen=True)
class RewardTerms:
    """The reward's terms (see :class:`~recworld.envs.conversation.ConversationEnv`, which holds their defaults)."""

    turn_cost: float
    success_bonus: float
    accept_weight: float
    abandon_penalty: float
    return_weight: float


@dataclass
class StepResult:
    """What one round gave the slots that acted (in the order asked)."""

    reward: np.ndarray  # (B,) float64
    done: np.ndarray  # (B,) bool: the conversation ended
    infos: list[dict[str, Any]]  # per slot: the ended conversation's outcome (empty while it goes on)


class ConversationSlots:
    """``n`` conversations with users of one world (see the module docstring).

    Args:
        n: slots.
        n_users: users of the world.
        config: the conversations' settings (the user's patience, intent mode, ...).
        recommender: the platform's recommender (the second ranking expert).
        rewards: the reward's terms.
        share_ranking: the platform's recommender ranks once per round for all the slots' users, and a
            recommendation reuses the ranking its observation was computed from (as the world's own
            conversations do); ``False``: it ranks on every request (its random tie-breaking drawn each time).
    """

    def __init__(self, n: int, n_users: int, config: ConversationConfig, recommender: str, rewards: RewardTerms, share_ranking: bool = False) -> None:
        self.n = int(n)
        self.share_ranking = share_ranking
        self.n_users = int(n_users)
        self.cfg = config
        self.recommender = recommender
        self.rewards = rewards
        self.experts: tuple[str, ...] = ("search", recommender)
        self.actions: list[Action] = action_space(self.experts)
        self.world: World | None = None
        self.layer: ConversationLayer | None = None
        self.convs: list[Conversation | None] = [None] * self.n
        self.last: list[Conversation | None] = [None] * self.n  # each slot's latest conversation, open or ended (to render)
        self.pools: list[tuple[np.ndarray, list[str]] | None] = [None] * self.n
        self._tick_open = False
        self._ended_in_tick = 0

    # ----------------------------------------------------------------- world
    def build(self, seed: int) -> None:
        """A fresh world from ``seed`` (users sampled from the bundled fitted user model); no conversation open."""
        cat, _ = bundled_catalog()
        model = bundled_model()
        pop = SampledPopulation(cat, self.n_users, seed=seed, model=model)
        self.world = World(cat, pop, UtilityBrain(model.decision), make_recommender(self.recommender), WorldConfig(), seed=seed, items=model.item_table())
        self.world.set_light_metrics()
        self.layer = ConversationLayer(self.cfg, PolicyAgent())
        self.convs = [None] * self.n
        self.last = [None] * self.n
        self.pools = [None] * self.n
        self._tick_open = False
        self._ended_in_tick = 0

    def free_users(self) -> np.ndarray:
        """Users who can start a conversation: not churned, not in one already."""
        u = self.world.users  # type: ignore[union-attr]
        return np.flatnonzero(~u.churned & ~u.in_session)

    def start(self, slots: list[int], rng: np.random.Generator) -> list[dict[str, Any]]:
        """Start a conversation in each of ``slots``, each with a user drawn from :meth:`free_users` (there must be enough);
        returns their infos (user, intent mode)."""
        w, layer = self.world, self.layer
        assert w is not None and layer is not None
        if not slots:
            return []
        free = self.free_users()
        users = []
        for _ in slots:  # distinct users, one draw each
            j = int(rng.integers(free.size))
            users.append(int(free[j]))
            free = np.delete(free, j)
        ids = np.array(users, np.int64)
        if self._tick_open:
            w.start_sessions(ids)
        else:
            w.begin_tick(only=ids)
            self._tick_open = True
        # The conversations started together share a generator (their language, asks and intents), drawn from the env's.
        layer.bind(w, np.random.default_rng(rng.integers(2**63 - 1)))
        out = []
        for s, u, intent in zip(slots, users, layer.new_intents(w, ids)):
            c = Conversation(layer, w, u, intent)
            c.begin()
            self.convs[s] = self.last[s] = c
            out.append({"user": u, "mode": intent.mode})
        return out

    # ------------------------------------------------------------ observation
    def observe(self, slots: list[int]) -> np.ndarray:
        """The dialogue-state features of ``slots`` (open conversations), ``(len(slots), N_FEATURES)``; keeps their candidate pools."""
        convs: list[Conversation] = [self.convs[s] for s in slots]  # type: ignore[misc]
        if self.share_ranking:
            share_ranks(self.world, convs)  # type: ignore[arg-type]
        states, tools = [c.state for c in convs], [c.tools for c in convs]
        # The first expert's fitting candidates: a feature now, the items recommended if the policy recommends.
        pools = candidates_all(states, tools, self.experts[0])
        for s, p in zip(slots, pools):
            self.pools[s] = p
        return feature_matrix(states, [p.size for p, _ in pools], [t.n_items for t in tools]).astype(np.float32)

    # ------------------------------------------------------------------ round
    def step(self, slots: list[int], actions: list[int]) -> StepResult:
        """One agent turn in each of ``slots`` (action indices into :attr:`actions`) and the users' replies; ended conversations are closed."""
        w, layer = self.world, self.layer
        assert w is not None and layer is not None
        convs: list[Conversation] = [self.convs[s] for s in slots]  # type: ignore[misc]
        n_acc = [len(c.state.accepted) for c in convs]
        mark = w.event_mark()
        acts = []
        for s, c, a in zip(slots, convs, actions):
            pool, calls = self.pools[s]  # type: ignore[misc]
            acts.append(decode(self.actions[int(a)], c.state, c.tools, pool, calls))
        self._round(convs, acts)
        # A user's question about an offered item is answered from the item's facts, not by the policy.
        while asking := [(c, a) for c, a in zip(convs, answers_asked([c.state for c in convs])) if a is not None and c.outcome is None]:
            self._round([c for c, _ in asking], [a for _, a in asking])
        rated = self._ratings(w.tick_events(since=mark))
        r = self.rewards
        reward = np.array([-r.turn_cost + r.accept_weight * self._accept_value(rated, c, n) for c, n in zip(convs, n_acc)])
        done = np.array([c.outcome is not None for c in convs], bool)
        infos: list[dict[str, Any]] = [{} for _ in slots]
        ended = [j for j in range(len(slots)) if done[j]]
        if ended:
            reward[ended] += self._end([slots[j] for j in ended], [infos[j] for j in ended])
        return StepResult(reward, done, infos)

    def truncate(self, slots: list[int]) -> list[dict[str, Any]]:
        """End the open conversations of ``slots`` early (a time limit): the user leaves; returns their infos (rewards are not given)."""
        for s in slots:
            c = self.convs[s]
            c.say("user", "leave", L.pick(c.rng, L.LEAVE))  # type: ignore[union-attr]
            c.outcome = "abandoned"  # type: ignore[union-attr]
        infos: list[dict[str, Any]] = [{} for _ in slots]
        self._end(slots, infos)
        return infos

    def _round(self, convs: list[Conversation], acts: list[AgentAct]) -> None:
        """Each conversation's agent turn, then the users decide on all the items offered (one page per slate length)."""
        offers = [(c, c.offer(a)) for c, a in zip(convs, acts)]
        for c in convs:
            c.tools.ranks = None  # pages are served next: the ranking is stale
        decide_offers(self.layer, self.world, [(c, items) for c, items in offers if items])  # type: ignore[arg-type]
        for c in convs:
            c.close_turn()

    @staticmethod
    def _ratings(ev: Any) -> dict[tuple[int, int], float]:
        m = ev.type == int(EventType.RATE)
        return {(int(u), int(i)): float(v) for u, i, v in zip(ev.user[m], ev.item[m], ev.value[m])}

    @staticmethod
    def _accept_value(rated: dict[tuple[int, int], float], c: Conversation, n_before: int) -> float:
        """Each item accepted this round: its rating / 5 (0.6 when not rated)."""
        return float(sum(rated.get((c.user, i), 3.0) / 5.0 for i in c.state.accepted[n_before:]))

    def _end(self, slots: list[int], infos: list[dict[str, Any]]) -> np.ndarray:
        """Close the ended conversations of ``slots`` (freed): log their ends, end the users' sessions; returns the
        end-of-conversation rewards and fills ``infos``."""
        w = self.world
        assert w is not None
        r = self.rewards
        convs: list[Conversation] = [self.convs[s] for s in slots]  # type: ignore[misc]
        for s in slots:
            self.convs[s] = self.pools[s] = None
        for c in convs:
            c.finish(log=False)
        flush_all(w, convs)
        users = np.array([c.user for c in convs], np.int64)
        w.end_sessions(users)  # churn and the time away come from the user model
        out = np.zeros(len(convs))
        for j, (c, info) in enumerate(zip(convs, infos)):
            success = c.outcome == "success"
            # The user goes away without what they came for, whoever ended it (ending early is no way out).
            out[j] = r.success_bonus if success else -r.abandon_penalty
            # Back within a day: in the 24 ticks after the one the session ended in.
            back = (not w.users.churned[c.user]) and (w.users.next_return[c.user] - (w.tick + 1)) <= 24
            out[j] += r.return_weight * float(back)
            offered = [i for turn in c.recommended for i in turn]
            ref = c.intent.reference
            info.update(
                outcome=c.outcome,
                success=success,
                turns=c.agent_turns,
                mode=c.intent.mode,
                hit=bool(set(ref) & set(offered)),
                recall=len(set(ref) & set(offered)) / max(len(ref), 1),
                recommended=[list(t) for t in c.recommended],
                reference=list(ref),
            )
        self._ended_in_tick += len(convs)
        if self._ended_in_tick >= self.n:
            w.end_tick(close_sessions=False)
            self._tick_open = False
            self._ended_in_tick = 0
        return out


def transcript(c: Conversation) -> str:
    """A conversation's messages so far, one line each (the envs' ``ansi`` render)."""
    return "\n".join(f"{m.role:>5}: {m.text}" for m in c.state.messages)


__all__ = ["ConversationSlots", "RewardTerms", "StepResult", "transcript"]
