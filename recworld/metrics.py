"""Engagement, exposure and retention metrics, vectorised over batches."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from recworld.jit import njit

# Two-sided 95% (0.975 quantile) Student-t critical values by degrees of freedom;
# between listed values the next smaller df is used, which errs on the wide side.
_T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
    11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086,
    21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042,
    40: 2.021, 60: 2.000, 120: 1.980,
}  # fmt: skip


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (table; conservative between entries)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return _T975.get(df) or next(v for d, v in sorted(_T975.items(), reverse=True) if d <= df)


def mean_ci(values: Iterable[float]) -> tuple[float, float, float]:
    """Mean and two-sided 95% Student-t confidence interval ``(mean, low, high)``.

    One value gives a zero-width interval; an empty input is a ``ValueError``.
    """
    x = np.asarray(list(values), np.float64)
    if x.size == 0:
        raise ValueError("mean_ci needs at least one value")
    m = float(x.mean())
    if x.size < 2:
        return m, m, m
    h = t975(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return m, m - h, m + h


@njit(cache=True)
def _sum_vectors(emb, it, total) -> None:
    for t in range(emb.shape[1]):
        total[t] += np.float64(emb[it, t])


@njit(cache=True)
def _mean_distance(total, norms, cnt) -> float:
    n = cnt * cnt - cnt
    if n == 0:
        return np.nan
    similar = -norms
    for t in range(total.shape[0]):
        similar += total[t] * total[t]
    return (n - similar) / n


@njit(cache=True)
def _pairwise_diversity(emb, sq_norms, slates, mask, out_all, out_masked) -> None:
    # out_all of size 0: the masked diversity only. The squared norms come per item (a slate's sum of them is then
    # k additions, where summing v * v inside the pass made one serial chain of k * d additions that blocked SIMD).
    both = out_all.shape[0] > 0
    total_a = np.empty(emb.shape[1], np.float64)
    total_m = np.empty(emb.shape[1], np.float64)
    for b in range(slates.shape[0]):
        total_a[:] = 0.0
        total_m[:] = 0.0
        norms_a = norms_m = 0.0
        cnt_a = cnt_m = 0
        for i in range(slates.shape[1]):
            it = slates[b, i]
            if both:
                _sum_vectors(emb, it, total_a)
                norms_a += sq_norms[it]
                cnt_a += 1
            if mask[b, i]:
                _sum_vectors(emb, it, total_m)
                norms_m += sq_norms[it]
                cnt_m += 1
        out_masked[b] = _mean_distance(total_m, norms_m, cnt_m)
        if both:
            out_all[b] = _mean_distance(total_a, norms_a, cnt_a)


def _diversity(emb: np.ndarray, slates: np.ndarray, mask: np.ndarray | None, both: bool, sq_norms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    keep = np.ones(slates.shape, np.bool_) if mask is None else np.ascontiguousarray(mask, np.bool_)
    out_all = np.empty(slates.shape[0] if both else 0, np.float64)
    out = np.empty(slates.shape[0], np.float64)
    emb = np.ascontiguousarray(emb)
    sq_norms = squared_norms(emb) if sq_norms is None else sq_norms
    _pairwise_diversity(emb, sq_norms, np.ascontiguousarray(slates, np.int64), keep, out_all, out)
    return out_all, out


def pairwise_diversity(emb: np.ndarray, slates: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean pairwise cosine distance (1 - cos) within each row of ``slates``.

    The sum of a slate's pairwise similarities is ``|sum of its vectors|^2``
    less their squared norms: one compiled pass over the slate's vectors
    instead of its (k x k) Gram matrix (which took a fifth of an unlogged
    tick at 10,000 users).

    Args:
        emb: (n_items, d) unit vectors.
        slates: (B, k) item indices.
        mask: optional (B, k) bool; only masked items count.

    Returns:
        (B,) diversities; NaN for rows with fewer than two counted items.
    """
    if slates.size == 0:
        return np.zeros(0)
    return _diversity(emb, slates, mask, False)[1]


def slate_diversity(emb: np.ndarray, slates: np.ndarray, watched: np.ndarray, sq_norms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pairwise_diversity` of each whole slate and of its watched items, in one pass over the vectors (the same values).

    ``sq_norms``: :func:`squared_norms` of ``emb``, when the caller keeps them.
    """
    if slates.size == 0:
        return np.zeros(0), np.zeros(0)
    return _diversity(emb, slates, watched, True, sq_norms)


def squared_norms(emb: np.ndarray) -> np.ndarray:
    """Each row's squared norm, summed in float64 (what the diversity kernel takes)."""
    return np.einsum("ij,ij->i", emb, emb, dtype=np.float64)


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of a non-negative count vector (0 = equal exposure, 1 = all on one item)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = x.shape[0]
    if n == 0 or x.sum() <= 0:
        return 0.0
    cum = np.cumsum(x)
    return float((n + 1 - 2 * (cum / cum[-1]).sum()) / n)


def novelty(items: np.ndarray, popularity: np.ndarray) -> float | None:
    """Mean self-information -log2 p(item) of ``items`` under smoothed ``popularity`` counts."""
    if items.size == 0:
        return None
    p = (popularity[items] + 1.0) / (popularity.sum() + popularity.shape[0])
    return float(np.mean(-np.log2(p)))


def retention_table(active: np.ndarray, first_period: np.ndarray, n_periods: int) -> list[tuple[int, int, int, int]]:
    """Cohort retention from an activity matrix.

    Args:
        active: (n_users, P) bool, user had a session in period p.
        first_period: (n_users,) period of first session, -1 if never.
        n_periods: periods elapsed so far (only complete ones are reported).

    Returns:
        Rows (cohort, k, cohort_size, active_count) for every cohort c and
        k >= 0 with c + k < n_periods.
    """
    rows = []
    for c in range(n_periods):
        members = np.flatnonzero(first_period == c)
        if members.size == 0:
            continue
        sub = active[members]
        for k in range(0, n_periods - c):
            rows.append((c, k, int(members.size), int(sub[:, c + k].sum())))
    return rows


def retention_curve(rows: list[tuple[int, int, int, int]]) -> dict[int, float]:
    """Pooled share of users active k periods after their first, over all cohorts."""
    size: dict[int, int] = {}
    act: dict[int, int] = {}
    for _c, k, n, a in rows:
        size[k] = size.get(k, 0) + n
        act[k] = act.get(k, 0) + a
    return {k: act[k] / size[k] for k in sorted(size) if size[k] > 0}


def spread(vectors: np.ndarray, rows: np.ndarray | None = None) -> float | None:
    """1 - mean pairwise cosine of the non-zero rows (self-pairs included): how different users' consumption is.

    Uses mean pairwise cosine = ||mean of unit vectors||^2, so it is O(n d);
    the mean is one matrix-vector product (no normalised copy of the rows).
    ``rows``: an optional bool mask of the rows to count (the world's living users).
    """
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    ok = norms > 1e-8
    if rows is not None:
        ok &= rows
    n = int(ok.sum())
    if n < 2:
        return None
    m = (np.where(ok, 1.0 / np.where(ok, norms, 1.0), 0.0) @ vectors) / n
    return float(1.0 - m @ m)
