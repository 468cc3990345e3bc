"""Small array helpers shared by the world, recommenders and environments."""

from __future__ import annotations

import numpy as np

from recworld.jit import njit

# Up to this many indices the compiled scan beats bincount's full-length temporary (the Feed env's pages).
_SMALL = 64


@njit(cache=True)
def _add_counts_small(target, idx) -> bool:
    # Each distinct index gets its whole count in one addition, as the bincount path adds it.
    n = target.shape[0]
    for j in range(idx.shape[0]):
        if idx[j] < 0 or idx[j] >= n:
            return False
    for j in range(idx.shape[0]):
        i = idx[j]
        first = True
        for q in range(j):
            if idx[q] == i:
                first = False
                break
        if first:
            c = 0
            for q in range(j, idx.shape[0]):
                if idx[q] == i:
                    c += 1
            target[i] += c
    return True


def add_counts(target: np.ndarray, idx: np.ndarray) -> None:
    """``target[i] += 1`` for every occurrence of ``i`` in ``idx`` (repeats counted).

    Same result as ``np.add.at(target, idx, 1)``, several times faster on the
    page-sized batches of the hot path.
    """
    if not idx.size:
        return
    flat = np.ravel(idx)
    if flat.size <= _SMALL and flat.dtype.kind in "iu":
        if not _add_counts_small(target, flat.astype(np.int64, copy=False)):
            raise ValueError(f"add_counts: an index is outside 0..{target.shape[0] - 1}")
        return
    # An index past the end makes the shapes differ and raises, as np.add.at would.
    target += np.bincount(flat, minlength=target.shape[0]).astype(target.dtype, copy=False)


@njit(cache=True)
def _dot_rows(vectors, items_t, out) -> None:
    for r in range(vectors.shape[0]):
        for j in range(items_t.shape[1]):
            out[r, j] = 0.0
        for d in range(items_t.shape[0]):
            v = vectors[r, d]
            for j in range(items_t.shape[1]):  # vectorised across items; each score still sums d in order
                out[r, j] += v * items_t[d, j]


def dot_rows(vectors: np.ndarray, items_t: np.ndarray) -> np.ndarray:
    """``vectors @ items_t`` (float32) with each score summed over the dimensions in order, so a row's scores
    are the same bits in a batch of any size (BLAS's are not: its blocking depends on the batch)."""
    vectors = np.ascontiguousarray(vectors, np.float32)
    items_t = np.ascontiguousarray(items_t, np.float32)
    out = np.empty((vectors.shape[0], items_t.shape[1]), np.float32)
    _dot_rows(vectors, items_t, out)
    return out


@njit(cache=True)
def _smallest_rows(keys, sign, out_idx, out_val) -> None:
    # Per row, the m smallest (sign * key, column) in order, by insertion while scanning the row once.
    m = out_idx.shape[1]
    for r in range(keys.shape[0]):
        cnt = 0
        for j in range(keys.shape[1]):
            key = sign * keys[r, j]
            if cnt < m:
                p = cnt
                cnt += 1
            elif key < out_val[r, m - 1]:
                p = m - 1
            else:
                continue
            while p > 0 and out_val[r, p - 1] > key:
                out_val[r, p] = out_val[r, p - 1]
                out_idx[r, p] = out_idx[r, p - 1]
                p -= 1
            out_val[r, p] = key
            out_idx[r, p] = j


def smallest_rows(keys: np.ndarray, k: int, negate: bool = False) -> np.ndarray:
    """Per row of ``keys`` (rows x columns), ``np.argsort(row)[:k]`` (of ``-row`` with ``negate``): one pass per row
    keeps its k+1 smallest; the row's full sort only when a tie among them makes the order ambiguous. Without such
    a tie the first j < k of the answer are the row's j smallest in order (a caller may rank 30 and use 3)."""
    keys = np.ascontiguousarray(keys)
    b, n = keys.shape
    sign = -1.0 if negate else 1.0
    if n <= k + 1:
        return np.argsort(sign * keys, axis=1)[:, :k]
    idx = np.empty((b, k + 1), np.int64)
    val = np.empty((b, k + 1), keys.dtype)
    _smallest_rows(keys, keys.dtype.type(sign), idx, val)
    out = idx[:, :k]
    for r in np.flatnonzero((val[:, 1:] == val[:, :-1]).any(axis=1)).tolist():
        out[r] = np.argsort(sign * keys[r])[:k]  # a tie inside the top k or at its edge: the sort's own order decides
    return out
