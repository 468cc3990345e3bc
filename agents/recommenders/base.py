"""Shared helpers for recommenders: top-k over unseen items, instruction re-ranking."""

from __future__ import annotations

import numpy as np

from recworld.jit import njit
from recworld.protocols import RecContext
from recworld.seen import SeenMatrix, is_seen

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


@njit(cache=True, inline="always")
def _before(keys, a, b) -> bool:
    return keys[a] < keys[b] or (keys[a] == keys[b] and a < b)


@njit(cache=True)
def _sift_down(heap, size, i, keys) -> None:
    while True:
        c = 2 * i + 1
        if c >= size:
            return
        if c + 1 < size and _before(keys, heap[c + 1], heap[c]):
            c += 1
        if not _before(keys, heap[c], heap[i]):
            return
        heap[i], heap[c] = heap[c], heap[i]
        i = c


@njit(cache=True)
def _smallest_unseen(keys, seen, u, k, out_row) -> None:
    # Direct scan: the k smallest (key, index) among unseen items, then among seen ones if too few.
    n = keys.shape[0]
    bk = np.empty(k)
    got = 0
    for want_seen in (False, True):
        start = got
        for it in range(n):
            if is_seen(seen, u, it) != want_seen:
                continue
            key = keys[it]
            if got == k and key >= bk[k - 1]:
                continue
            p = got if got < k else k - 1
            while p > start and bk[p - 1] > key:
                if p < k:
                    bk[p] = bk[p - 1]
                    out_row[p] = out_row[p - 1]
                p -= 1
            bk[p] = key
            out_row[p] = it
            if got < k:
                got += 1
        if got == k:
            return


@njit(cache=True)
def _topk_lazy_order(keys, seen, users, k, out):
    # The ranking comes lazily from a heap, only as deep as users need it; a
    # user who needs it deeper than ``limit`` gets a direct scan instead.
    n = keys.shape[0]
    limit = min(n, 256 + 32 * k)
    heap = np.arange(n)
    for i in range(n // 2 - 1, -1, -1):
        _sift_down(heap, n, i, keys)
    size = n
    order = np.empty(limit, np.int64)
    m = 0
    for r in range(users.shape[0]):
        u = users[r]
        got = 0
        pos = 0
        while got < k and pos < limit:
            if pos == m:
                order[m] = heap[0]
                m += 1
                size -= 1
                heap[0] = heap[size]
                _sift_down(heap, size, 0, keys)
            it = order[pos]
            pos += 1
            if not is_seen(seen, u, it):
                out[r, got] = it
                got += 1
        if got < k and m == n:
            # The whole ranking is out (a caller asked for about the whole catalog): seen items follow in
            # the same order, as the direct scan would place them, without its quadratic insertion.
            for pos in range(n):
                it = order[pos]
                if is_seen(seen, u, it):
                    out[r, got] = it
                    got += 1
                    if got == k:
                        break
        elif got < k:
            _smallest_unseen(keys, seen, u, k, out[r])


def topk_shared_order(keys: np.ndarray, seen: SeenMatrix, users: np.ndarray, k: int) -> np.ndarray:
    """First k unseen items per user along one ranking shared by all users (e.g. popularity).

    The ranking is ``np.argsort(keys, kind="stable")`` (lowest key first), but
    it is never sorted in full: a heap yields it only as deep as the users
    need, and users who have seen most of the top get a direct scan of all
    items. A user who has seen nearly everything gets seen items last.

    Args:
        keys: (n_items,) sort keys.
        seen: the world's seen matrix (its bits are read in place, rows are not unpacked).
        users: (B,) user ids.
        k: slate size (<= n_items).

    Returns:
        (B, k) int64 item ids.
    """
    out = np.empty((len(users), k), np.int64)
    _topk_lazy_order(np.ascontiguousarray(keys, np.float64), seen.bits, np.asarray(users, np.int64), k, out)
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
    # Passes over the history in :meth:`pretrain` (learners by SGD want several).
    pretrain_epochs = 1

    def setup(self, n_users: int, item_embeddings: np.ndarray, rng: np.random.Generator) -> None:
        self.n_users = n_users
        self.dim = item_embeddings.shape[1]

    def observe(self, feedback) -> None:
        pass

    def ensure_items(self, n_items: int) -> None:
        """Grow per-item parameters when the catalog grows (posts)."""

    def ensure_users(self, n_users: int) -> None:
        """Grow per-user parameters when users are added."""

    def pretrain(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_items: int, rng: np.random.Generator, k: int = 10) -> None:
        """Warm start from logged interactions (after :meth:`setup`), through the recommender's own :meth:`observe`.

        Each user's logged items become pages in which they were watched (with
        their ratings), each page padded with as many items the user never
        interacted with, skipped; ``pretrain_epochs`` passes in random order.

        Args:
            users, items, ratings: (N,) the log (ratings NaN where unknown).
            n_items: catalog size (negatives are drawn from it).
            rng: for the order and the negatives.
            k: items per page.
        """
        from recworld.events import EventBatch
        from recworld.protocols import Feedback

        users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
        ratings = np.asarray(ratings, np.float64)
        half = max(k // 2, 1)
        known = set(zip(users.tolist(), items.tolist()))
        empty = EventBatch.empty()
        for _ in range(self.pretrain_epochs):
            # Each user's interactions in a random order, cut into pages of ``half`` watched items.
            keyed = np.lexsort((rng.random(users.size), users))
            starts = np.flatnonzero(np.r_[True, users[keyed][1:] != users[keyed][:-1]]) if users.size else np.zeros(0, np.int64)
            pages = [keyed[c : min(c + half, b)] for a, b in zip(starts, np.r_[starts[1:], keyed.size]) for c in range(a, b, half)]
            ordered = [pages[p] for p in rng.permutation(len(pages))]
            for s0 in range(0, len(ordered), 256):
                chunk = ordered[s0 : s0 + 256]
                b = len(chunk)
                slates = np.empty((b, 2 * half), np.int64)
                watched = np.zeros((b, 2 * half), bool)
                rts = np.full((b, 2 * half), np.nan)
                bu = users[[rows[0] for rows in chunk]]
                for r, rows in enumerate(chunk):
                    n_pos = rows.size
                    slates[r, :n_pos] = items[rows]
                    watched[r, :n_pos] = True
                    rts[r, :n_pos] = ratings[rows]
                    taken = set(slates[r, :n_pos].tolist())
                    got = n_pos
                    while got < 2 * half:
                        it = int(rng.integers(0, n_items))
                        if it not in taken and (int(bu[r]), it) not in known:
                            slates[r, got] = it
                            taken.add(it)
                            got += 1
                self.observe(Feedback(-1, bu, slates, watched, rts, np.zeros(b, bool), empty))
