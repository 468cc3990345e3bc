"""Engagement, exposure and retention metrics, vectorised over batches."""

from __future__ import annotations

import numpy as np


def pairwise_diversity(emb: np.ndarray, slates: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean pairwise cosine distance (1 - cos) within each row of ``slates``.

    Args:
        emb: (n_items, d) unit vectors.
        slates: (B, k) item indices.
        mask: optional (B, k) bool; only masked items count.

    Returns:
        (B,) diversities; NaN for rows with fewer than two counted items.
    """
    if slates.size == 0:
        return np.zeros(0)
    e = emb[slates]  # (B, k, d)
    g = np.einsum("bid,bjd->bij", e, e)
    w = np.ones(slates.shape, np.float32) if mask is None else mask.astype(np.float32)
    pair = w[:, :, None] * w[:, None, :]
    idx = np.arange(slates.shape[1])
    pair[:, idx, idx] = 0.0
    n = pair.sum(axis=(1, 2))
    total = (pair * (1.0 - g)).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


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


def spread(vectors: np.ndarray) -> float | None:
    """1 - mean pairwise cosine of the non-zero rows (self-pairs included): how different users' consumption is.

    Uses mean pairwise cosine = ||mean of unit vectors||^2, so it is O(n d).
    """
    norms = np.linalg.norm(vectors, axis=1)
    ok = norms > 1e-8
    if ok.sum() < 2:
        return None
    unit = vectors[ok] / norms[ok, None]
    m = unit.mean(axis=0)
    return float(1.0 - m @ m)
