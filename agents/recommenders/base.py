"""Shared helpers for recommenders: top-k over unseen items, instruction re-ranking."""

from __future__ import annotations

import numpy as np

from recworld.protocols import RecContext

# Pushes seen items below every unseen one while keeping scores finite (LinUCB ranks candidates by it).
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
    # Seen items drop to -inf but stay eligible (argpartition still returns k
    # distinct indices), so a user who has seen almost everything gets k items.
    np.putmask(scores, seen_rows[:, :n], -np.inf)
    np.negative(scores, out=scores)
    part = np.argpartition(scores, k - 1, axis=1)[:, :k]
    np.negative(scores, out=scores)
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def scatter_add_rows(target: np.ndarray, idx: np.ndarray, rows: np.ndarray) -> None:
    """``target[idx] += rows`` with repeated indices summed (a fast ``np.add.at`` for 2-D rows)."""
    if idx.size == 0:
        return
    order = np.argsort(idx, kind="stable")
    sidx = idx[order]
    starts = np.flatnonzero(np.r_[True, sidx[1:] != sidx[:-1]])
    target[sidx[starts]] += np.add.reduceat(rows[order], starts, axis=0)


def topk_shared_order(order: np.ndarray, seen_rows: np.ndarray, k: int) -> np.ndarray:
    """First k unseen items of one ranking ``order`` shared by all rows (e.g. popularity).

    Looks at a short prefix of the ranking first and falls back to the full
    ranking only for rows that have seen most of that prefix.
    """
    b = seen_rows.shape[0]
    out = np.empty((b, k), dtype=np.int64)
    todo = np.arange(b)
    for m in (4 * k, 32 * k, order.size):
        pre = order[: min(m, order.size)]
        unseen = ~seen_rows[todo][:, pre]
        ok = unseen.sum(axis=1) >= k
        if m >= order.size:
            ok[:] = True
        rows = todo[ok]
        if rows.size:
            u = unseen[ok]
            if m >= order.size and (u.sum(axis=1) < k).any():
                # Some users have seen nearly everything: seen items fill the rest.
                rank = np.where(u, 0, 1) * order.size + np.arange(pre.size)
                idx = np.argsort(rank, axis=1, kind="stable")[:, :k]
            else:
                idx = np.argsort(~u, axis=1, kind="stable")[:, :k]
            out[rows] = pre[idx]
        todo = todo[~ok]
        if not todo.size:
            break
    return out


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
