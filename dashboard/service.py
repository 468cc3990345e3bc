"""What the pages and the JSON API show, as plain dicts (one place for both)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
from fastapi import HTTPException
from sqlalchemy.engine import Engine

from recworld.dashboard import queries as Q
from recworld.dashboard.series import MAX_POINTS, TICK_RULES, Rule, bucket_rows, downsample, step_for
from recworld.events import EventType
from recworld.export import conversation_records
from recworld.kpis import COMPARE, RUN_KPIS
from recworld.storage.queries import list_sweeps, sweep_comparison, tick_rows
from recworld.usermodel.report import ValidationReport

# Run columns the runs list sorts in SQL (KPIs, recworld.kpis.SORTABLE, are sorted in Python).
RUN_COLUMNS_SORTABLE = ("id", "name", "created_at", "scenario", "recommender", "status", "n_users", "ticks_total")
# Rows of the run overview's "last ticks" table, sent unbucketed.
LAST_TICKS = 10
# An item's per-tick counts: every one summed over a bucket of ticks.
ITEM_RULES: dict[str, Rule] = {f: ("sum", None) for f in ("impressions", "watches", "skips", "social_watches", "ratings", "posts")}


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def get_run(engine: Engine, run_id: int) -> dict[str, Any]:
    """The run or a 404."""
    run = Q.run_row(engine, run_id)
    if run is None:
        raise HTTPException(404, f"no run with id {run_id}")
    return run


def run_out(engine: Engine, run: dict[str, Any]) -> dict[str, Any]:
    """A run as :class:`~recworld.dashboard.schemas.RunOut` data."""
    kpis = Q.run_kpis(engine, run)
    out = {
        k: run[k]
        for k in (
            "id",
            "name",
            "scenario",
            "recommender",
            "brain",
            "seed",
            "status",
            "n_users",
            "n_items",
            "ticks_total",
            "tick_done",
            "created_at",
            "finished_at",
            "error",
        )
    }
    out["kpis"] = {k: _clean(kpis.get(k)) for k in RUN_KPIS}
    return out


#: The cohort table sent with a run: its first this many cohorts, each up to this many periods on (the curve has them all).
MAX_COHORT_PERIODS = 60


def retention_out(engine: Engine, run: dict[str, Any], max_periods: int = MAX_COHORT_PERIODS) -> dict[str, Any]:
    """Retention as :class:`~recworld.dashboard.schemas.RetentionOut` data.

    The cohort table grows with the square of a run's periods (a 4,200-tick
    run: 175 periods, 15k cells, 170 kB of every overview): the first
    ``max_periods`` cohorts and periods are sent, and ``cohorts_truncated`` says so.
    """
    r = Q.retention(engine, run)
    first = min((c for c, *_ in r["rows"]), default=0)
    cells = [(c, k, n, a) for c, k, n, a in r["rows"] if c - first < max_periods and k < max_periods]
    return {
        "source": r["source"],
        "period_ticks": r["period_ticks"],
        "curve": {int(k): float(v) for k, v in r["curve"].items()},
        "cohorts": [{"cohort": c, "k": k, "cohort_size": n, "active": a, "share": (a / n if n else 0.0)} for c, k, n, a in cells],
        "cohorts_truncated": len(cells) < len(r["rows"]),
    }


def ticks_out(engine: Engine, run_id: int, after: int = -1, limit: int = 100_000) -> list[dict[str, Any]]:
    """Per-tick metrics (``tick > after``, at most ``limit`` rows) with non-finite floats as None."""
    rows = tick_rows(engine, run_id, after=after, limit=limit)
    for row in rows:  # in place: a long run has thousands of ticks of ~40 columns
        for k in [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]:
            row[k] = None
    return rows


def tick_series(engine: Engine, run_id: int, points: int = MAX_POINTS) -> tuple[list[dict[str, Any]], int]:
    """A run's per-tick metrics cut into at most ``points`` buckets (:mod:`recworld.dashboard.series`); returns (rows, ticks per bucket).

    A run that fits is sent tick by tick; a longer one is bucketed by the database (:func:`~recworld.dashboard.queries.tick_buckets`).
    """
    span = Q.tick_span(engine, run_id)
    step = 1 if span is None else step_for(*span, points)
    if step == 1:
        return ticks_out(engine, run_id), 1
    return bucket_rows(Q.tick_buckets(engine, run_id, span[0], step), TICK_RULES), step


def overview(engine: Engine, run_id: int, points: int = MAX_POINTS) -> dict[str, Any]:
    """Everything the run overview shows; the per-tick metrics cut into at most ``points`` buckets (:mod:`recworld.dashboard.series`)."""
    run = get_run(engine, run_id)
    ticks, step = tick_series(engine, run_id, points)
    last = ticks[-1]["tick"] if ticks else -1
    return {
        "run": run_out(engine, run),
        "ticks": ticks,
        "tick_step": step,
        "last_ticks": ticks_out(engine, run_id, after=last - LAST_TICKS) if step > 1 else ticks[-LAST_TICKS:],
        "retention": retention_out(engine, run),
        "llm_by_purpose": Q.llm_by_purpose(engine, run_id),
        "llm_by_endpoint": Q.llm_by_endpoint(engine, run_id),
        "cascades": Q.cascade_summary(engine, run_id),
        "leave_reasons": Q.leave_reasons(engine, run_id),
    }


def runs_list(engine: Engine, *, scenario, status, recommender, q, sort, order, limit, offset) -> dict[str, Any]:
    """A page of runs with KPIs; KPI sorts are done over the (filtered) runs in Python."""
    desc = order == "desc"
    if sort in RUN_COLUMNS_SORTABLE:
        total, rows = Q.find_runs(
            engine, scenario=scenario, status=status, recommender=recommender, q=q, order_by=sort, descending=desc, limit=limit, offset=offset
        )
        items = [run_out(engine, r) for r in rows]
    else:  # a KPI: runs are few (hundreds), their KPIs are stored summaries
        total, rows = Q.find_runs(engine, scenario=scenario, status=status, recommender=recommender, q=q, limit=2000, offset=0)
        all_items = [run_out(engine, r) for r in rows]
        have = [r for r in all_items if r["kpis"].get(sort) is not None]
        missing = [r for r in all_items if r["kpis"].get(sort) is None]
        have.sort(key=lambda r: r["kpis"][sort], reverse=desc)
        items = (have + missing)[offset : offset + limit]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def compare(engine: Engine, run_ids: list[int], points: int = MAX_POINTS) -> dict[str, Any]:
    """Runs overlaid: their ticks (each run's cut into at most ``points`` buckets), retention curves and KPI deltas vs the first."""
    runs = [get_run(engine, i) for i in run_ids]
    outs = [run_out(engine, r) for r in runs]
    deltas = []
    for m in COMPARE:
        vals = [o["kpis"].get(m) for o in outs]
        base = vals[0]
        ds = [None if v is None or base is None else v - base for v in vals]
        rel = [None if d is None or not base else d / abs(base) for d in ds]
        deltas.append({"metric": m, "values": vals, "deltas": ds, "relative": rel})
    return {
        "runs": outs,
        "ticks": {r["id"]: tick_series(engine, r["id"], points)[0] for r in runs},
        "retention": {r["id"]: retention_out(engine, r)["curve"] for r in runs},
        "deltas": deltas,
    }


def _page(total: int | None, limit: int, offset: int, items: list) -> dict[str, Any]:
    return {"total": int(total or 0), "limit": limit, "offset": offset, "items": items}


def get_user(engine: Engine, run_id: int, user_id: int) -> dict[str, Any]:
    """A user's profile with latest snapshot, or a 404."""
    get_run(engine, run_id)
    prof = Q.user_profile(engine, run_id, user_id)
    if prof is None:
        raise HTTPException(404, f"run {run_id} has no user {user_id}")
    prof["latest"] = Q.latest_snapshots(engine, run_id, [user_id]).get(user_id)
    return prof


def user_events_page(engine: Engine, run_id: int, user_id: int, types: list[int] | None, limit: int, offset: int, descending: bool = True) -> dict[str, Any]:
    """A page of a user's events (newest first by default)."""
    total, rows = Q.events(engine, run_id, user_id=user_id, types=types, limit=limit, offset=offset, descending=descending)
    return _page(total, limit, offset, rows)


def user_sessions_page(engine: Engine, run_id: int, user_id: int, limit: int, offset: int) -> dict[str, Any]:
    total, rows = Q.user_sessions(engine, run_id, user_id, limit=limit, offset=offset)
    for r in rows:
        r["session"] = bool(r["session"])
    return _page(total, limit, offset, rows)


def user_memory_page(engine: Engine, run_id: int, user_id: int, limit: int, offset: int) -> dict[str, Any]:
    total, rows = Q.user_memory(engine, run_id, user_id, limit=limit, offset=offset)
    return _page(total, limit, offset, rows)


def user_detail(engine: Engine, run_id: int, user_id: int, limit: int = 20) -> dict[str, Any]:
    """Everything the user page shows on first load."""
    user = get_user(engine, run_id, user_id)
    counts = Q.event_type_counts(engine, run_id, user_id=user_id)
    return {
        "run_id": run_id,
        "user": user,
        "event_counts": {Q._type_name(t): n for t, n in sorted(counts.items())},
        "snapshots": Q.user_snapshots(engine, run_id, user_id),
        "sessions": user_sessions_page(engine, run_id, user_id, limit, 0),
        "memory": user_memory_page(engine, run_id, user_id, limit, 0),
        "chats": user_events_page(engine, run_id, user_id, [int(EventType.CHAT)], limit, 0),
        "posts": user_events_page(engine, run_id, user_id, [int(EventType.POST)], limit, 0),
        "instructions": user_events_page(engine, run_id, user_id, [int(EventType.INSTRUCTION)], limit, 0),
        "interviews": Q.user_interviews(engine, run_id, user_id),
        "conversations": conversations_page(engine, run_id, user_id=user_id, limit=limit),
    }


def conversations_page(engine: Engine, run_id: int, outcome: str | None = None, user_id: int | None = None, limit: int = 20, offset: int = 0) -> dict[str, Any]:
    """Conversations with the platform's agent, newest last, filtered by outcome (``open``: not ended) and user."""
    with engine.connect() as con:
        recs = conversation_records(con, run_id, user_id)
    counts = Counter(r.get("outcome") or "open" for r in recs)
    if outcome is not None:
        recs = [r for r in recs if (r.get("outcome") or "open") == outcome]
    return {"total": len(recs), "limit": limit, "offset": offset, "items": recs[offset : offset + limit], "outcomes": dict(counts)}


def get_item(engine: Engine, run_id: int, item_id: int) -> dict[str, Any]:
    """An item with its counts, or a 404."""
    get_run(engine, run_id)
    item = Q.item_row(engine, run_id, item_id)
    if item is None:
        raise HTTPException(404, f"run {run_id} has no item {item_id}")
    item.update(Q.item_counts(engine, run_id, [item_id]).get(item_id) or Q.item_counts_of({}, Q.run_logging(engine, run_id)))
    return item


def item_detail(engine: Engine, run_id: int, item_id: int, limit: int = 50, offset: int = 0, points: int = MAX_POINTS) -> dict[str, Any]:
    """Everything the item page shows on first load; its timeseries cut into at most ``points`` buckets (counts summed)."""
    item = get_item(engine, run_id, item_id)
    total, watchers = Q.item_watchers(engine, run_id, item_id, limit=limit, offset=offset)
    series, step = downsample(*Q.item_series(engine, run_id, item_id), ITEM_RULES, points)
    return {
        "run_id": run_id,
        "item": item,
        "timeseries": series,
        "timeseries_step": step,
        "watchers": _page(total, limit, offset, watchers),
        "cascades": Q.item_cascades(engine, run_id, item_id),
    }


def spring_layout(n: int, edges: np.ndarray, iterations: int = 60, seed: int = 0) -> np.ndarray:
    """A deterministic Fruchterman-Reingold layout of ``n`` nodes in [0, 1]^2.

    Args:
        n: number of nodes.
        edges: (m, 2) node indices.
        iterations: cooling steps (O(n^2) each; n is a few hundred).
        seed: seed of the initial positions (same seed, same picture).
    """
    if n == 0:
        return np.zeros((0, 2))
    if n == 1:
        return np.array([[0.5, 0.5]])
    rng = np.random.default_rng(seed)
    pos = rng.random((n, 2))
    adj = np.zeros((n, n))
    if len(edges):
        adj[edges[:, 0], edges[:, 1]] = 1.0
        adj[edges[:, 1], edges[:, 0]] = 1.0
    k = 1.0 / math.sqrt(n)
    t = 0.1
    dt = t / (iterations + 1)
    for _ in range(iterations):
        delta = pos[:, None, :] - pos[None, :, :]
        dist = np.maximum(np.linalg.norm(delta, axis=-1), 0.01)
        force = k * k / dist**2 - adj * dist / k  # repulsion minus attraction, per unit vector
        disp = (delta * force[:, :, None]).sum(axis=1)
        length = np.maximum(np.linalg.norm(disp, axis=-1), 0.01)
        pos += disp * (np.minimum(length, t) / length)[:, None]
        t -= dt
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    return (pos - lo) / np.where(hi - lo > 0, hi - lo, 1.0)


def graph(engine: Engine, run_id: int, max_nodes: int = 300) -> dict[str, Any]:
    """A laid-out sample of a run's follow graph."""
    get_run(engine, run_id)
    g = Q.graph_sample(engine, run_id, max_nodes=max_nodes)
    nodes = g["nodes"]
    index = {u: i for i, u in enumerate(nodes)}
    e = np.array([(index[s], index[d]) for s, d in g["edges"] if s in index and d in index], dtype=np.int64).reshape(-1, 2)
    pos = spring_layout(len(nodes), e, seed=run_id)
    profs = Q.profiles_of(engine, run_id, nodes)
    out_nodes = [
        {
            "user_id": u,
            "x": float(pos[i, 0]),
            "y": float(pos[i, 1]),
            "degree": g["degree"][i],
            "role": profs.get(u, {}).get("role"),
            "activity": profs.get(u, {}).get("activity"),
        }
        for i, u in enumerate(nodes)
    ]
    return {"run_id": run_id, "total_nodes": g["total_nodes"], "total_edges": g["total_edges"], "nodes": out_nodes, "edges": g["edges"]}


def evals(engine: Engine) -> list[dict[str, Any]]:
    """Stored evaluations, newest first."""
    return Q.eval_summaries(engine)


def eval_detail(engine: Engine, name: str) -> dict[str, Any]:
    """An evaluation as :class:`~recworld.dashboard.schemas.EvalOut` data, or a 404."""
    rows = Q.eval_rows(engine, name)
    if not rows:
        raise HTTPException(404, f"no evaluation named {name!r}")
    for r in rows:
        for k in ("mean", "ci_low", "ci_high"):
            r[k] = _clean(r[k])
        r["values"] = [v for v in r["values"] if math.isfinite(v)]
    return {
        "name": name,
        "created_at": max(r.pop("created_at") for r in rows),
        "policies": list(dict.fromkeys(r["policy"] for r in rows)),
        "metrics": list(dict.fromkeys(r["metric"] for r in rows)),
        "rows": rows,
    }


def sweeps(engine: Engine) -> list[dict[str, Any]]:
    """Stored sweeps, newest first."""
    return list_sweeps(engine)


def sweep_detail(engine: Engine, name: str) -> dict[str, Any]:
    """A sweep's comparison as :class:`~recworld.dashboard.schemas.SweepOut` data, or a 404."""
    data = sweep_comparison(engine, name)
    if data is None:
        raise HTTPException(404, f"no sweep named {name!r}")
    for r in data["rows"]:
        for k in ("mean", "ci_low", "ci_high"):
            r[k] = _clean(r[k])
        keep = [i for i, v in enumerate(r["values"]) if math.isfinite(v)]
        r["values"] = [r["values"][i] for i in keep]
        r["seeds"] = [r["seeds"][i] for i in keep]
    return data


def _report(row: dict[str, Any]) -> ValidationReport | None:
    """A stored report parsed with the writer's model; ``None`` for one this version cannot read."""
    try:
        return ValidationReport.model_validate_json(row["report_json"] or "{}")
    except ValueError:
        return None


def validations(engine: Engine) -> list[dict[str, Any]]:
    """Stored fidelity reports with their headline figures, newest first (unreadable reports are left out)."""
    out = []
    for row in Q.validation_summaries(engine):
        rep = _report(row)
        if rep is None:
            continue
        one = rep.taste_alignment.get("1:1")
        headline = (one.most_likely or one.sampled) if one else None  # the llm brain has sampled decisions only
        measured = [t for t in rep.targets.values() if t.met is not None]
        out.append(
            {
                **{k: row[k] for k in ("name", "scenario", "brain", "seed", "holdout", "created_at")},
                "accuracy_1_1": _clean(headline.accuracy) if headline else None,
                "f1_1_1": _clean(headline.f1) if headline else None,
                "auc": _clean(rep.auc.model) if rep.auc else None,
                "rating_rmse": _clean(rep.ratings.rmse) if rep.ratings else None,
                "spearman": _clean(rep.agreement.spearman_recall) if rep.agreement and rep.agreement.spearman_recall is not None else None,
                "targets_met": sum(bool(t.met) for t in measured),
                "targets_measured": len(measured),
            }
        )
    return out


def validation_detail(engine: Engine, name: str) -> dict[str, Any]:
    """A stored fidelity report as :class:`~recworld.dashboard.schemas.ValidationOut` data, or a 404."""
    row = Q.validation_by_name(engine, name)
    if row is None:
        raise HTTPException(404, f"no validation named {name!r}")
    rep = _report(row)
    if rep is None:
        raise HTTPException(422, f"validation {name!r} was stored in a format this dashboard cannot read; run recworld validate again")
    return {"name": row["name"], "created_at": row["created_at"], "report": rep}
