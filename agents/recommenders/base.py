"""Shared helpers for recommenders: top-k over unseen items, instruction re-ranking."""

from __future__ import annotations

import numpy as np

from recworld.protocols import RecContext

SEEN_PENALTY = 1e6


def topk_unseen(scores: np.ndarray, seen_rows: np.ndarray, k: int) -> np.ndarray:
    """The k best-scored items per row, preferring items not yet seen, best first.

    Args:
        scores: (B, N) scores (modified in place).
        seen_rows: (B, >=N) bool.
        k: slate size (<= N).

    Returns:
        (B, k) int64 distinct item indices.
    """
    n = scores.shape[1]
    # Seen items are pushed below every unseen one but stay eligible, so a
    # user who has seen almost everything still gets k distinct items.
    scores -= SEEN_PENALTY * seen_rows[:, :n]
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def instruction_boost(scores: np.ndarray, users: np.ndarray, context: RecContext, weight: float, scale: float) -> None:
    """Add ``weight * scale * cos(instruction, item)`` to the rows of users who gave an instruction."""
    if weight <= 0 or not context.instruction_embeddings:
        return
    emb = context.item_embeddings[: scores.shape[1]]
    for row, u in enumerate(users.tolist()):
        v = context.instruction_embeddings.get(u)
        if v is not None:
            scores[row] += weight * scale * (emb @ v)


class Recommender:
    """Base class with no-op hooks; subclasses implement :meth:`recommend`."""

    name = "base"

    def setup(self, n_users: int, item_embeddings: np.ndarray, rng: np.random.Generator) -> None:
        self.n_users = n_users
        self.dim = item_embeddings.shape[1]

    def observe(self, feedback) -> None:  # noqa: ANN001
        pass

    def ensure_items(self, n_items: int) -> None:
        """Grow per-item parameters when the catalog grows (posts)."""

    def ensure_users(self, n_users: int) -> None:
        """Grow per-user parameters when users are added."""
