"""The arithmetic of the fidelity protocols the field reports (held-out data against simulated users).

- Agent4Rec's taste alignment: per user a set of items at ratio 1:m between
  held-out items the user really rated and items they never rated; each item
  is shown alone and the simulated user decides whether to watch it;
  accuracy, precision, recall and F1 of those decisions, pooled over users.
- AUC of a score between held-out items and never-interacted items (per user, averaged).
- Rating errors (RMSE, MAE) and the total-variation distance of rating histograms.
- Distribution shapes: interactions per user, share of consumption on the top items.
- Rank agreement of two orderings (Spearman's rho, Kendall's tau).

Pure functions over arrays; the orchestration lives in ``recworld.scenarios.validate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ProtocolSet:
    """The (user, item, label) triples shown in one run of the taste-alignment protocol (label 1 = held-out positive)."""

    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray
    ratio: int


def holdout_split(users: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask holding out ``round(share * n_u)`` random interactions of each user (True = held out)."""
    users = np.asarray(users, np.int64)
    key = rng.random(users.size)
    order = np.lexsort((key, users))
    n_u = np.bincount(users)
    start = np.concatenate([[0], np.cumsum(n_u)[:-1]])
    rank = np.empty(users.size, np.int64)
    rank[order] = np.arange(users.size) - start[users[order]]
    return rank < np.rint(share * n_u)[users]


def protocol_set(
    held_out: list[np.ndarray], interacted: list[np.ndarray], n_items: int, ratio: int, rng: np.random.Generator, per_user: int = 20
) -> ProtocolSet:
    """Items to show at ratio 1:``ratio``: ``per_user // (1 + ratio)`` held-out positives and ``ratio`` times as many negatives.

    Args:
        held_out: per user, the held-out items they rated.
        interacted: per user, every item they rated (train and held out); negatives come from the rest.
        n_items: catalog size.
        ratio: m in 1:m.
        per_user: items per user (Agent4Rec uses 20). A user with fewer held-out
            items than wanted shows all of them and ``ratio`` times as many negatives.
    """
    want = max(per_user // (1 + ratio), 1)
    us, its, ys = [], [], []
    for u, (pos, seen) in enumerate(zip(held_out, interacted)):
        k = min(want, pos.size)
        if k == 0:
            continue
        p = rng.choice(pos, k, replace=False)
        free = np.setdiff1d(np.arange(n_items), seen, assume_unique=False)
        n = rng.choice(free, min(ratio * k, free.size), replace=False)
        us.append(np.full(k + n.size, u))
        its.append(np.concatenate([p, n]))
        ys.append(np.concatenate([np.ones(k, np.int8), np.zeros(n.size, np.int8)]))
    return ProtocolSet(np.concatenate(us).astype(np.int64), np.concatenate(its).astype(np.int64), np.concatenate(ys), ratio)


def decision_metrics(decisions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of binary ``decisions`` (watch = 1) against ``labels``, pooled."""
    d = np.asarray(decisions, bool)
    y = np.asarray(labels, bool)
    tp, fp = float((d & y).sum()), float((d & ~y).sum())
    fn, tn = float((~d & y).sum()), float((~d & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / max(d.size, 1), "precision": precision, "recall": recall, "f1": f1}


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN without both classes."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size)
    sorted_s = s[order]
    # Average ranks over runs of ties.
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mean_user_auc(score_rows, held_out: list[np.ndarray], interacted: list[np.ndarray], n_items: int) -> float:
    """Mean over users of the AUC of ``score_rows(u)`` ((n_items,) scores) between held-out and never-interacted items."""
    vals = []
    for u, (pos, seen) in enumerate(zip(held_out, interacted)):
        if pos.size == 0:
            continue
        neg = np.ones(n_items, bool)
        neg[seen] = False
        cand = neg.copy()
        cand[pos] = True
        lab = np.zeros(n_items, bool)
        lab[pos] = True
        a = auc(score_rows(u)[cand], lab[cand])
        if a == a:
            vals.append(a)
    return float(np.mean(vals)) if vals else float("nan")


def rating_errors(predicted: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """RMSE and MAE of predicted ratings."""
    e = np.asarray(predicted, np.float64) - np.asarray(real, np.float64)
    return {"rmse": float(np.sqrt(np.mean(e**2))), "mae": float(np.mean(np.abs(e)))}


def histogram(ratings: np.ndarray, levels: int = 5) -> np.ndarray:
    """Share of each rating 1..levels."""
    r = np.rint(np.asarray(ratings, np.float64)).astype(np.int64)
    return np.bincount(np.clip(r, 1, levels) - 1, minlength=levels) / max(r.size, 1)


def tv_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance between two histograms (shares)."""
    return float(0.5 * np.abs(np.asarray(a) - np.asarray(b)).sum())


def top_share(item_counts: np.ndarray, top: float = 0.1) -> float:
    """Share of all consumption that goes to the ``top`` fraction of items."""
    c = np.sort(np.asarray(item_counts, np.float64))[::-1]
    n = max(int(np.ceil(top * c.size)), 1)
    return float(c[:n].sum() / max(c.sum(), 1e-12))


def quantiles(x: np.ndarray, qs: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)) -> list[float]:
    """Quantiles of ``x`` (e.g. interactions per user)."""
    return [float(v) for v in np.quantile(np.asarray(x, np.float64), qs)]


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance (largest gap between the empirical CDFs)."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    grid = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, grid, side="right") / a.size - np.searchsorted(b, grid, side="right") / b.size).max())


def _ranks(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(x.size)
    sx = x[order]
    starts = np.flatnonzero(np.r_[True, sx[1:] != sx[:-1]])
    ends = np.r_[starts[1:], x.size]
    r[order] = np.repeat((starts + ends - 1) / 2.0, ends - starts)
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson on average ranks)."""
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / den) if den else float("nan")


def kendall(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n = a.size
    conc = disc = ties_a = ties_b = 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif da == db:
                conc += 1
            else:
                disc += 1
    den = np.sqrt((conc + disc + ties_a) * (conc + disc + ties_b))
    return float((conc - disc) / den) if den else float("nan")


def recall_ndcg_at_k(ranked: np.ndarray, held_out: list[np.ndarray], k: int = 10) -> tuple[float, float]:
    """Mean recall@k and NDCG@k of ``ranked`` (U, >=k) item lists against each user's held-out items."""
    recalls, ndcgs = [], []
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    for u, pos in enumerate(held_out):
        if pos.size == 0:
            continue
        hit = np.isin(ranked[u, :k], pos)
        recalls.append(hit.sum() / pos.size)
        ndcgs.append(float((hit * disc).sum() / disc[: min(pos.size, k)].sum()))
    return float(np.mean(recalls)), float(np.mean(ndcgs))


__all__ = [
    "ProtocolSet",
    "auc",
    "decision_metrics",
    "histogram",
    "holdout_split",
    "kendall",
    "ks_distance",
    "mean_user_auc",
    "protocol_set",
    "quantiles",
    "rating_errors",
    "recall_ndcg_at_k",
    "spearman",
    "top_share",
    "tv_distance",
]
