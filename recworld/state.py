"""The numeric state of all users as a structure of arrays (the hot path works on these)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np


@dataclass
class UserArrays:
    """Per-user arrays, index = user id in the world.

    Traits (fixed): ``activity`` (expected sessions per day), ``patience``,
    ``conformity``, ``diversity_seeking`` in [0, 1]; ``rating_bias`` in rating
    points and ``rating_taste`` (what makes them rate an item up, in the
    item-factor space); ``appetite`` (how much they consume, centred log
    count); ``threshold``, the user's own offset of the no-click utility (how
    choosy they are). State: ``taste`` (current interests, in the user model's
    item-factor space; ``taste0`` the core taste they drift back to),
    ``recent`` (EMA of consumed item factors, for boredom), ``satisfaction`` in
    [0, 1], ``fatigue`` >= 0, ``next_return`` tick, ``churned``.
    """

    taste: np.ndarray
    taste0: np.ndarray
    recent: np.ndarray
    activity: np.ndarray
    patience: np.ndarray
    conformity: np.ndarray
    diversity_seeking: np.ndarray
    rating_bias: np.ndarray
    rating_taste: np.ndarray
    appetite: np.ndarray
    threshold: np.ndarray
    satisfaction: np.ndarray
    fatigue: np.ndarray
    next_return: np.ndarray
    churned: np.ndarray
    in_session: np.ndarray
    first_session: np.ndarray
    last_session: np.ndarray
    sessions: np.ndarray
    watches: np.ndarray
    pages_in_session: np.ndarray

    @classmethod
    def allocate(cls, n: int, dim: int) -> UserArrays:
        """Zeroed arrays for ``n`` users with ``dim``-dimensional tastes."""
        f32 = lambda: np.zeros(n, np.float32)  # noqa: E731
        i64 = lambda: np.zeros(n, np.int64)  # noqa: E731
        return cls(
            taste=np.zeros((n, dim), np.float32),
            taste0=np.zeros((n, dim), np.float32),
            recent=np.zeros((n, dim), np.float32),
            activity=f32(),
            patience=f32(),
            conformity=f32(),
            diversity_seeking=f32(),
            rating_bias=f32(),
            rating_taste=np.zeros((n, dim), np.float32),
            appetite=f32(),
            threshold=f32(),
            satisfaction=np.full(n, 0.6, np.float32),
            fatigue=f32(),
            next_return=i64(),
            churned=np.zeros(n, bool),
            in_session=np.zeros(n, bool),
            first_session=np.full(n, -1, np.int64),
            last_session=np.full(n, -1, np.int64),
            sessions=i64(),
            watches=i64(),
            pages_in_session=i64(),
        )

    def __len__(self) -> int:
        return int(self.satisfaction.shape[0])

    def as_dict(self) -> dict[str, np.ndarray]:
        """All arrays by name (for checkpoints)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def view(self) -> UserState:
        """The same arrays as a named tuple, the form the compiled user-model kernels take (built once, until a field is replaced)."""
        v = self.__dict__.get("_view")
        if v is None:
            v = UserState(*(getattr(self, name) for name in UserState._fields))
            self.__dict__["_view"] = v
        return v

    def __setattr__(self, name: str, value: object) -> None:
        # Replacing an array (not writing into it) makes the cached view stale.
        self.__dict__.pop("_view", None)
        object.__setattr__(self, name, value)

    def __getstate__(self) -> dict[str, np.ndarray]:
        return self.as_dict()

    def __setstate__(self, state: dict[str, np.ndarray]) -> None:
        self.__dict__.update(state)


class UserState(NamedTuple):
    """:class:`UserArrays` as a named tuple (same arrays, same field order) for the compiled kernels."""

    taste: np.ndarray
    taste0: np.ndarray
    recent: np.ndarray
    activity: np.ndarray
    patience: np.ndarray
    conformity: np.ndarray
    diversity_seeking: np.ndarray
    rating_bias: np.ndarray
    rating_taste: np.ndarray
    appetite: np.ndarray
    threshold: np.ndarray
    satisfaction: np.ndarray
    fatigue: np.ndarray
    next_return: np.ndarray
    churned: np.ndarray
    in_session: np.ndarray
    first_session: np.ndarray
    last_session: np.ndarray
    sessions: np.ndarray
    watches: np.ndarray
    pages_in_session: np.ndarray
