"""Long per-tick series cut into a bounded number of buckets (the run overview's and an item page's charts).

A real run of 10M events has thousands of ticks; sending each one made the
run overview 3 MB and the top item's page 385 kB, far more points than a
chart a thousand pixels wide can show. :func:`downsample` keeps at most
``max_points`` rows: ticks ``first .. last`` are cut into buckets of
``step`` consecutive ticks (``step`` the smallest width that fits, counted
from the series' first tick), and each bucket with data becomes one row:

- ``tick``: the bucket's last tick with a row, ``first_tick`` its first,
  ``n_ticks`` how many rows it merged (a series may skip ticks);
- a field summed (``sum``: counts per tick) is the bucket's total, so totals
  over the series are unchanged and integers stay integers;
- ``last`` (a level or running total: users not churned, coverage) is its
  value at the bucket's last row;
- ``mean`` is the mean over the bucket's rows that have a value; with a
  weight (the per-tick count a rate divides by: ``watch_rate`` by
  ``impressions``) the weighted mean, i.e. the rate of the bucket's summed
  counts; the plain mean where the weights sum to 0; None where no row has a
  value.

With ``step`` 1 the rows come back as they were (no bucket fields added).
The rules of the run's metrics come from :mod:`recworld.kpis`
(``KPI.bucket``, ``KPI.weight``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from recworld.kpis import KPIS, TICK_KPIS

Rule = tuple[Literal["sum", "last", "mean"], str | None]

#: Rows a chart series gets by default: about one per two pixels of a chart on the run overview (half a page wide).
MAX_POINTS = 300
#: The per-tick metrics' rules (recworld.kpis).
TICK_RULES: dict[str, Rule] = {n: (KPIS[n].bucket, KPIS[n].weight) for n in TICK_KPIS}


def _finite(v: Any) -> Any:
    # JSON has no NaN or infinity: a non-finite float reads as missing.
    return None if isinstance(v, float) and not math.isfinite(v) else v


def step_for(first: int, last: int, max_points: int = MAX_POINTS) -> int:
    """Ticks per bucket: the smallest width that cuts ticks ``first .. last`` into at most ``max_points`` buckets."""
    return max(1, math.ceil((last - first + 1) / max(1, max_points)))


@dataclass(frozen=True)
class Buckets:
    """A series' raw per-bucket aggregates, which :func:`bucket_rows` finishes by the rules.

    Made from columns in memory (:func:`bucket_columns`) or by the database
    (the run's per-tick metrics: ``recworld.dashboard.queries.tick_buckets``).

    Attributes:
        tick: per bucket, its last tick with a row; ``first_tick`` its
            first; ``n_ticks`` its rows.
        total: per field, the sum over the bucket's rows that have a value;
            ``count`` how many have one.
        weighted: per weighted mean, the sum of value x weight over those
            rows; ``weights`` the sum of their weights.
        last: per ``last`` field, its value at the bucket's last row.
    """

    tick: list[int]
    first_tick: list[int]
    n_ticks: list[int]
    total: dict[str, np.ndarray]
    count: dict[str, np.ndarray]
    weighted: dict[str, np.ndarray] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    last: dict[str, list] = field(default_factory=dict)


def bucket_rows(b: Buckets, rules: Mapping[str, Rule]) -> list[dict[str, Any]]:
    """One row per bucket: ``tick``, ``first_tick``, ``n_ticks`` and each field by its rule (module docstring)."""
    cols: dict[str, list] = {"tick": list(b.tick), "first_tick": list(b.first_tick), "n_ticks": list(b.n_ticks)}
    for f, (how, weight) in rules.items():
        if how == "last":
            cols[f] = [_finite(v) for v in b.last[f]]
            continue
        total, n = np.asarray(b.total[f], np.float64), np.asarray(b.count[f], np.int64)
        if how == "sum":
            out = total.astype(np.int64) if np.array_equal(total, np.round(total)) else total
        else:
            out = total / np.maximum(n, 1)
            if weight is not None:
                ws = np.asarray(b.weights[f], np.float64)
                out = np.where(ws > 0, np.asarray(b.weighted[f], np.float64) / np.where(ws > 0, ws, 1.0), out)
        cols[f] = [_finite(v) if k else None for v, k in zip(out.tolist(), n.tolist())]
    names = list(cols)
    return [dict(zip(names, vals)) for vals in zip(*(cols[k] for k in names))]


def bucket_columns(ticks: Sequence[int], columns: Mapping[str, Sequence[Any]], rules: Mapping[str, Rule], step: int) -> Buckets:
    """The :class:`Buckets` of a series held as columns (``columns[f][i]``: field ``f`` at ``ticks[i]``, in tick order)."""
    t = np.asarray(ticks, np.int64)
    bucket = (t - t[0]) // step
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], t.size] - 1
    out = Buckets(t[ends].tolist(), t[starts].tolist(), (ends - starts + 1).tolist(), {}, {})
    for f, (how, weight) in rules.items():
        if how == "last":
            col = columns[f]
            out.last[f] = [col[i] for i in ends.tolist()]
            continue
        x = np.array(columns[f], np.float64)  # None -> NaN
        have = np.isfinite(x)
        x = np.where(have, x, 0.0)
        out.total[f], out.count[f] = np.add.reduceat(x, starts), np.add.reduceat(have.astype(np.int64), starts)
        if how == "mean" and weight is not None:
            w = np.where(have, np.nan_to_num(np.array(columns[weight], np.float64)), 0.0)
            out.weighted[f], out.weights[f] = np.add.reduceat(x * w, starts), np.add.reduceat(w, starts)
    return out


def downsample(
    ticks: Sequence[int], columns: Mapping[str, Sequence[Any]], rules: Mapping[str, Rule], max_points: int = MAX_POINTS
) -> tuple[list[dict[str, Any]], int]:
    """A series held as columns as rows, cut into at most ``max_points`` buckets; returns (rows, step).

    A series that fits comes back one row per tick with every column (no
    bucket fields); non-finite floats read as None.
    """
    if len(ticks) == 0:
        return [], 1
    step = step_for(int(ticks[0]), int(ticks[-1]), max_points)
    if step == 1:
        names = ["tick", *columns]
        return [dict(zip(names, v)) for v in zip(list(ticks), *([_finite(x) for x in c] for c in columns.values()))], 1
    return bucket_rows(bucket_columns(ticks, columns, rules, step), rules), step


__all__ = ["MAX_POINTS", "TICK_RULES", "Buckets", "Rule", "bucket_columns", "bucket_rows", "downsample", "step_for"]
