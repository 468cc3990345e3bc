"""Two ways for an env core to serve pages, behind one interface; both run the same user model.

* :class:`CompiledPages`: for brains that are the user model (``utility``,
  ``distilled``): decide, apply and end sessions in one compiled call
  (``envs/kernels.py``), no event log.
* :class:`WorldPages`: for any brain (LLM, scripted, custom): through
  ``World.serve_page``, with the world's events.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from recworld.envs import kernels as K
from recworld.usermodel.params import decision_record, dynamics_record, record
from recworld.world import World


class Pages(Protocol):
    """Serves pages to a batch of users of a core's world."""

    def start(self, users: np.ndarray) -> None:
        """Open the sessions of those ``users`` who are due now."""
        ...

    def serve(self, users: np.ndarray, slates: np.ndarray, n_focal: int) -> tuple[np.ndarray, ...]:
        """One page per row: ``(watched, ratings, leave, churn, reward)``.

        Focal rows (user id < ``n_focal``) whose session ends without churn
        start their next session at once, as if the drawn time away had passed;
        non-focal rows get reward 0.
        """
        ...


def compiled_pages_apply(world: World) -> bool:
    """Whether ``world``'s brain is the user model itself (so the compiled path is exactly it), with nothing hooked on the world."""
    from recworld.agents.brains.utility import UtilityBrain

    brain = world.brain
    same = isinstance(brain, UtilityBrain) and type(brain).decide is UtilityBrain.decide
    return same and not world.tick_hooks and not world.observers


class CompiledPages:
    """Pages on the compiled kernels, randomness from the core's stream.

    Args:
        world: the world (its brain must be the user model: :func:`compiled_pages_apply`).
        stream: the SplitMix64 state (1-element uint64 array) shared with the core.
        reward: anything with the reward fields (a FeedConfig).
    """

    def __init__(self, world: World, stream: np.ndarray, reward: object) -> None:
        self.world = world
        self.stream = stream
        self.P = decision_record(world.brain.params)
        self.W = dynamics_record(world.config)
        self.R = record(reward, K.REWARD_FIELDS)
        self.background_churned = False
        self._bundles: tuple = ()

    def bundles(self) -> tuple[tuple, tuple, tuple]:
        """The world's user state, item table and platform as plain tuples of their arrays, for the env kernels.

        Why: numba types and unboxes a plain tuple several microseconds faster
        than a named tuple of 21 arrays, on a single env's step of ~100. The
        tuples are rebuilt when the world replaces one of the named tuples
        (it caches them until an array is replaced).
        """
        w, c = self.world, self._bundles
        S, IT, X = w.state, w.items, w.platform
        if not c or c[0] is not S or c[1] is not IT or c[2] is not X:
            c = self._bundles = (S, IT, X, tuple(S), tuple(IT), tuple(X))
        return c[3], c[4], c[5]

    def start(self, users: np.ndarray) -> None:
        w = self.world
        K.start_due(self.W, self.bundles()[0], np.asarray(users, np.int64), w.tick)

    def serve(self, users: np.ndarray, slates: np.ndarray, n_focal: int) -> tuple[np.ndarray, ...]:
        w = self.world
        b, k = slates.shape
        watched, frac, ratings = np.empty((b, k), bool), np.empty((b, k)), np.empty((b, k))
        leave, churn, reward = np.empty(b, bool), np.empty(b, bool), np.empty(b)
        churned = K.serve_rows(
            self.P, self.W, self.R, *self.bundles(), users, slates, self.stream, w.tick, n_focal, watched, frac, ratings, leave, churn, reward
        )
        self.background_churned |= churned > 0
        return watched, ratings, leave, churn, reward


class WorldPages:
    """Pages through ``World.serve_page`` (any brain; the world logs events).

    Args:
        world: the world.
        reward: ``(watched, ratings, session_end, churned) -> (B,)`` rewards.
        restart_focal: focal users start their next session at once (the
            compressed clock of the Feed envs); else they come back when due.
    """

    def __init__(self, world: World, reward, restart_focal: bool = True) -> None:
        self.world = world
        self.reward = reward
        self.restart_focal = restart_focal
        self.background_churned = True

    def start(self, users: np.ndarray) -> None:
        u = self.world.users
        due = users[~u.churned[users] & ~u.in_session[users] & (u.next_return[users] <= self.world.tick)]
        self.world.start_sessions(due)

    def serve(self, users: np.ndarray, slates: np.ndarray, n_focal: int) -> tuple[np.ndarray, ...]:
        w, u = self.world, self.world.users
        page = w.serve_page(users, slates)
        watched = np.asarray(page.decision.watched, bool)
        ratings = np.asarray(page.decision.ratings, np.float64)
        leave = page.leave
        churn = u.churned[users] & leave
        focal = users < n_focal
        back = users[focal & leave & ~churn] if self.restart_focal else users[:0]
        if back.size:
            # Back at once, with the away time the world drew (fatigue recovers over it).
            u.last_session[back] = w.tick - (u.next_return[back] - w.tick)
            w.start_sessions(back)
        reward = np.where(focal, self.reward(watched, ratings, leave, churn), 0.0)
        return watched, ratings, leave, churn, reward


__all__ = ["CompiledPages", "Pages", "WorldPages", "compiled_pages_apply"]
