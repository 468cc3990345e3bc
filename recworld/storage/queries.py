"""Read-side queries over the run database (used by the CLI summary and the dashboard).

Aggregates are computed in SQL or read from per-tick metrics; nothing here
loads a run's whole event log into Python.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import case, func, inspect, literal, select
from sqlalchemy.engine import Engine

from recworld.errors import RecWorldError
from recworld.kpis import SWEEP, TICK_KPIS
from recworld.storage.models import RetentionPoint, Run, TickMetrics


def get_run(engine: Engine, run_id: int) -> Run | None:
    """The Run row or None."""
    from sqlmodel import Session

    with Session(engine) as s:
        return s.get(Run, run_id)


def retention_curve(engine: Engine, run_id: int) -> dict[int, float]:
    """Pooled share of users active k periods after their first session."""
    q = (
        select(RetentionPoint.k, func.sum(RetentionPoint.active), func.sum(RetentionPoint.cohort_size))
        .where(RetentionPoint.run_id == run_id)
        .group_by(RetentionPoint.k)
        .order_by(RetentionPoint.k)
    )
    with engine.connect() as con:
        return {int(k): (float(a) / float(n) if n else 0.0) for k, a, n in con.execute(q)}


def run_summary(engine: Engine, run_id: int) -> dict[str, Any]:
    """Headline KPIs of a run from its per-tick metrics and retention table."""
    t = TickMetrics
    q = select(
        func.count(t.id),
        func.sum(t.sessions),
        func.sum(t.pages),
        func.sum(t.impressions),
        func.sum(t.watches),
        func.sum(t.ratings),
        func.sum(t.mean_rating * t.ratings),
        func.max(t.churned_total),
        func.avg(t.diversity),
        func.avg(t.novelty),
        func.sum(t.posts),
        func.sum(t.chats),
        func.sum(t.instructions),
        func.sum(t.searches),
        func.sum(t.search_clicks),
        func.sum(t.conversations),
        func.sum(t.conversation_turns),
        func.sum(t.conversation_successes),
        func.sum(t.llm_calls),
        func.sum(t.llm_cached),
        func.sum(t.llm_fallbacks),
        func.sum(t.llm_tokens),
    ).where(t.run_id == run_id)
    last_q = select(t.coverage, t.gini, t.alive_users, t.mean_satisfaction, t.consumption_diversity).where(t.run_id == run_id).order_by(t.tick.desc()).limit(1)
    with engine.connect() as con:
        (ticks, sessions, pages, imps, watches, ratings, rsum, churned, div, nov, posts, chats, instr, *talk, calls, cached, fb, toks) = con.execute(q).one()
        last = con.execute(last_q).first()
    run = get_run(engine, run_id)
    n_users = run.n_users if run else 0
    ret = retention_curve(engine, run_id)
    f = lambda x: float(x) if x is not None else None  # noqa: E731
    out: dict[str, Any] = {
        "ticks": int(ticks or 0),
        "users": n_users,
        "sessions": int(sessions or 0),
        "pages_per_session": (pages or 0) / sessions if sessions else 0.0,
        "watch_rate": (watches or 0) / imps if imps else 0.0,
        "mean_rating": (rsum / ratings) if ratings else None,
        "churn": (churned or 0) / n_users if n_users else 0.0,
        "coverage": f(last[0]) if last else 0.0,
        "gini": f(last[1]) if last else 0.0,
        "diversity": f(div),
        "novelty": f(nov),
        "mean_satisfaction": f(last[3]) if last else None,
        "posts": int(posts or 0),
        "chats": int(chats or 0),
        "instructions": int(instr or 0),
        **_talk_summary(*(int(x or 0) for x in talk)),
        "llm_calls": int(calls or 0),
        "llm_cached": int(cached or 0),
        "llm_fallbacks": int(fb or 0),
        "llm_tokens": int(toks or 0),
    }
    for k in (1, 3, 7):
        if k in ret:
            out[f"retention_d{k}"] = ret[k]
    return out


def _talk_summary(searches: int, clicks: int, conversations: int, turns: int, successes: int) -> dict[str, Any]:
    return {
        "searches": searches,
        "search_ctr": clicks / searches if searches else None,
        "conversations": conversations,
        "conversation_success": successes / conversations if conversations else None,
        "turns_per_conversation": turns / conversations if conversations else None,
    }


def list_runs(engine: Engine, limit: int = 100, offset: int = 0) -> list[Run]:
    """Runs, newest first."""
    from sqlmodel import Session
    from sqlmodel import select as sselect

    with Session(engine) as s:
        return list(s.exec(sselect(Run).order_by(Run.id.desc()).offset(offset).limit(limit)))


def run_config(run: Run) -> dict[str, Any]:
    """The scenario dict stored with a run."""
    return json.loads(run.config_json or "{}")


def sample_texts(engine: Engine, run_id: int, event_type: int, limit: int = 3) -> list[tuple[int, int, str]]:
    """Up to ``limit`` (tick, user, text) of one event type for summaries.

    Texts the LLM wrote (payload ``"by": "llm"``) come first, newest first;
    then the others.
    """
    from recworld.payloads import json_fragment
    from recworld.storage.models import Event

    by_llm = Event.payload.like("%" + json_fragment("by", "llm") + "%")
    q = (
        select(Event.tick, Event.user_id, Event.text)
        .where(Event.run_id == run_id, Event.type == event_type, Event.text.is_not(None))
        .order_by(by_llm.desc(), Event.id.desc())
        .limit(limit)
    )
    with engine.connect() as con:
        return [(int(t), int(u), str(x)) for t, u, x in con.execute(q)]


# ------------------------------------------------------------------ sweeps
# A sweep (``recworld sweep``) names every run it makes ``sweep:<name>``; the
# runs' own recommender and seed columns say which cell of the grid each is.
SWEEP_PREFIX = "sweep:"
# Headline KPIs compared across a sweep's recommenders, in display order (from the KPI registry).
SWEEP_KPIS = SWEEP


def sweep_run_name(name: str) -> str:
    """The Run.name under which a sweep's runs are stored."""
    return f"{SWEEP_PREFIX}{name}"


def sweep_runs(engine: Engine, name: str) -> list[dict[str, Any]]:
    """The runs of sweep ``name`` in creation order: id, recommender, seed, status, scenario, summary."""
    q = select(Run.id, Run.recommender, Run.seed, Run.status, Run.scenario, Run.summary_json).where(Run.name == sweep_run_name(name)).order_by(Run.id)
    with engine.connect() as con:
        rows = con.execute(q).all()
    return [
        {"id": int(i), "recommender": rec, "seed": int(seed), "status": st, "scenario": sc, "summary": json.loads(summ or "{}")}
        for i, rec, seed, st, sc, summ in rows
    ]


def sweep_comparison(engine: Engine, name: str, kpis: tuple[str, ...] = SWEEP_KPIS) -> dict[str, Any] | None:
    """A sweep's recommenders compared: per KPI, the mean over seeds with a 95% Student-t interval.

    Only completed runs count. Returns None when no run carries the sweep's name.

    Returns:
        ``{name, scenario, recommenders, seeds, metrics, status, runs, rows}``; each row is
        ``{recommender, metric, mean, ci_low, ci_high, n_seeds, values, seeds}`` (values in seed order).
    """
    from recworld.metrics import mean_ci

    runs = sweep_runs(engine, name)
    if not runs:
        return None
    recommenders = list(dict.fromkeys(r["recommender"] for r in runs))
    done = sorted((r for r in runs if r["status"] == "completed"), key=lambda r: (r["seed"], r["id"]))
    status: dict[str, int] = {}
    for r in runs:
        status[r["status"]] = status.get(r["status"], 0) + 1
    metrics = [k for k in kpis if any(r["summary"].get(k) is not None for r in done)]
    rows = []
    for rec in recommenders:
        mine = [r for r in done if r["recommender"] == rec]
        for k in metrics:
            pairs = [(r["seed"], float(r["summary"][k])) for r in mine if r["summary"].get(k) is not None]
            if not pairs:
                rows.append({"recommender": rec, "metric": k, "mean": None, "ci_low": None, "ci_high": None, "n_seeds": 0, "values": [], "seeds": []})
                continue
            mean, lo, hi = mean_ci(v for _, v in pairs)
            rows.append(
                {
                    "recommender": rec,
                    "metric": k,
                    "mean": mean,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n_seeds": len(pairs),
                    "values": [v for _, v in pairs],
                    "seeds": [s for s, _ in pairs],
                }
            )
    return {
        "name": name,
        "scenario": runs[0]["scenario"],
        "recommenders": recommenders,
        "seeds": sorted({r["seed"] for r in runs}),
        "metrics": metrics,
        "status": status,
        "runs": [{k: r[k] for k in ("id", "recommender", "seed", "status")} for r in runs],
        "rows": rows,
    }


def list_sweeps(engine: Engine, limit: int = 100) -> list[dict[str, Any]]:
    """Sweeps in the database, newest first: name, scenario, runs, completed runs, recommenders, seeds, created."""
    is_sweep = Run.name.like(f"{SWEEP_PREFIX}%")
    completed = func.sum(case((Run.status == "completed", 1), else_=0))
    q = (
        select(
            Run.name,
            func.min(Run.scenario),
            func.count(Run.id),
            completed,
            func.count(func.distinct(Run.recommender)),
            func.count(func.distinct(Run.seed)),
            func.min(Run.created_at),
            func.max(Run.id),
        )
        .where(is_sweep)
        .group_by(Run.name)
        .order_by(func.max(Run.id).desc())
        .limit(limit)
    )
    with engine.connect() as con:
        rows = con.execute(q).all()
    return [
        {
            "name": str(n)[len(SWEEP_PREFIX) :],
            "scenario": sc,
            "n_runs": int(nr),
            "n_completed": int(nc or 0),
            "n_recommenders": int(nrec),
            "n_seeds": int(ns),
            "created_at": created,
        }
        for n, sc, nr, nc, nrec, ns, created, _ in rows
    ]


def tick_rows(engine: Engine, run_id: int, after: int = -1, limit: int = 100_000) -> list[dict[str, Any]]:
    """Per-tick metrics of a run with ``tick > after``, in tick order (the columns of :data:`recworld.kpis.TICK_KPIS`).

    A database written by an older RecWorld may lack columns added since; they read as None.
    """
    cols = columns_or_null(engine, TickMetrics, ("tick", *TICK_KPIS))
    q = select(*cols).where(TickMetrics.run_id == run_id, TickMetrics.tick > after).order_by(TickMetrics.tick).limit(limit)
    with engine.connect() as con:
        return [dict(r._mapping) for r in con.execute(q)]


# Per engine object (weakly: an id() key could be reused by a later engine of another database and answer stale).
_PRESENT: weakref.WeakKeyDictionary[Engine, dict[str, frozenset[str]]] = weakref.WeakKeyDictionary()


def present_columns(engine: Engine, model: type) -> frozenset[str]:
    """Columns of ``model``'s table that exist in this database (cached per engine).

    A database written by an older RecWorld may lack columns added since;
    readers read what is there and report the rest as None.
    """
    known = _PRESENT.setdefault(engine, {})
    name = model.__tablename__
    if name not in known:
        try:
            known[name] = frozenset(c["name"] for c in inspect(engine).get_columns(name))
        except Exception:  # noqa: BLE001 - a missing table reads as "no columns"
            return frozenset()
    return known[name]


def columns_or_null(engine: Engine, model: type, names: Iterable[str]) -> list:
    """Column expressions for ``names``: the real column where present, else a NULL labelled with the name."""
    have = present_columns(engine, model)
    return [getattr(model, n) if n in have else literal(None).label(n) for n in names]


# ------------------------------------------------------------------ interviews
class StoredCheckpoint(NamedTuple):
    """A run's checkpoint as stored: ``recworld.checkpoint.load_world(state, base)`` makes the world again."""

    tick: int
    state: bytes
    base: bytes | None  # the complete checkpoint an incremental one applies to


def last_checkpoint(engine: Engine, run_id: int) -> StoredCheckpoint | None:
    """The newest checkpoint of a run (with the complete one it applies to, when incremental), or None."""
    from recworld.storage.models import Checkpoint

    q = select(Checkpoint.tick, Checkpoint.state, Checkpoint.base_tick).where(Checkpoint.run_id == run_id).order_by(Checkpoint.tick.desc()).limit(1)
    with engine.connect() as con:
        row = con.execute(q).first()
        if row is None:
            return None
        base = None
        if row[2] is not None:
            base = con.execute(select(Checkpoint.state).where(Checkpoint.run_id == run_id, Checkpoint.tick == row[2], Checkpoint.base_tick.is_(None))).scalar()
            if base is None:
                raise RecWorldError(f"run {run_id}'s checkpoint of tick {row[0]} applies to a complete checkpoint of tick {row[2]} that is missing")
    return StoredCheckpoint(int(row[0]), bytes(row[1]), None if base is None else bytes(base))


def user_story(engine: Engine, run_id: int, user_id: int, limit: int = 6) -> dict[str, Any]:
    """What a user did in a run, for an interview: best-rated and latest watches, and what they wrote.

    Returns:
        ``profile`` (text), ``watched`` [(item, title, year, rating or None)]: their top-rated
        watches first, then the latest unrated ones; ``said`` [(type, text)]: their newest
        posts, chat lines, instructions and feelings; ``memories`` [text]: their newest long-term memories.
    """
    from recworld.events import EventType
    from recworld.storage.models import Event, Item, MemoryRecord, UserProfile
    from recworld.storage.pagelog import user_log

    e = Event
    with engine.connect() as con:
        prof = con.execute(select(UserProfile.profile_text).where(UserProfile.run_id == run_id, UserProfile.user_id == user_id)).scalar()
        # Watches and ratings live in the packed log (UserTick rows expanded) and, for older logs and social watches, in Event rows.
        log = user_log(con, run_id, user_id, types={int(EventType.RATE), int(EventType.WATCH), int(EventType.SOCIAL_WATCH)})
        best: dict[int, tuple[float, int]] = {}  # item -> (highest rating, last tick it was rated)
        for r in log:
            if r[3] == int(EventType.RATE) and r[4] is not None:
                v, t = best.get(int(r[4]), (float("-inf"), -1))
                best[int(r[4])] = (max(v, float(r[5])), max(t, int(r[1])))
        rated = sorted(best.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))[:limit]
        rated = [(i, v) for i, (v, _t) in rated]
        latest = [r[4] for r in reversed(log) if r[3] != int(EventType.RATE)][: limit * 3]
        items: list[tuple[int, float | None]] = [(int(i), float(v)) for i, v in rated]
        seen = {i for i, _ in items}
        for i in latest:
            if len(items) >= limit:
                break
            if i is not None and int(i) not in seen:
                items.append((int(i), None))
                seen.add(int(i))
        titles = {
            int(i): (t, y)
            for i, t, y in con.execute(select(Item.item_id, Item.title, Item.year).where(Item.run_id == run_id, Item.item_id.in_([i for i, _ in items])))
        }
        said = con.execute(
            select(e.type, e.text)
            .where(
                e.run_id == run_id,
                e.user_id == user_id,
                e.type.in_([int(EventType.POST), int(EventType.CHAT), int(EventType.INSTRUCTION), int(EventType.FEELING)]),
                e.text.is_not(None),
            )
            .order_by(e.id.desc())
            .limit(limit)
        ).all()
        mems = con.execute(
            select(MemoryRecord.text)
            .where(MemoryRecord.run_id == run_id, MemoryRecord.user_id == user_id)
            .order_by(MemoryRecord.importance.desc(), MemoryRecord.tick.desc())
            .limit(3)
        ).scalars()
        mem_texts = [str(m) for m in mems]
    watched = [(i, *titles.get(i, (f"item {i}", None)), r) for i, r in items]
    return {"profile": prof or "", "watched": watched, "said": [(EventType(int(t)).name.lower(), str(x)) for t, x in said], "memories": mem_texts}


def llm_text_outcomes(engine: Engine, run_id: int) -> dict[str, dict[str, Any]]:
    """What became of the text of a run's LLM calls, per purpose.

    Returns:
        purpose -> ``{calls, tokens, kept, rejected, failed, reasons}``: ``kept``, the
        model's text was used; ``rejected``, the answer came back but failed the
        grounding check (``reasons``: count per reason, sorted by name); ``failed``,
        no usable answer (timeout, HTTP error, invalid JSON).
    """
    from sqlalchemy import and_

    from recworld.storage.models import LLMCall

    c = LLMCall
    q = (
        select(
            c.purpose,
            func.count(),
            func.sum(c.tokens_in + c.tokens_out),
            func.sum(case((c.rejected.is_not(None), 1), else_=0)),
            func.sum(case((and_(c.rejected.is_(None), c.fell_back), 1), else_=0)),
        )
        .where(c.run_id == run_id)
        .group_by(c.purpose)
    )
    reasons_q = select(c.purpose, c.rejected, func.count()).where(c.run_id == run_id, c.rejected.is_not(None)).group_by(c.purpose, c.rejected)
    out: dict[str, dict[str, Any]] = {}
    with engine.connect() as con:
        for purpose, calls, tokens, rejected, failed in con.execute(q):
            rejected, failed = int(rejected or 0), int(failed or 0)
            out[purpose] = {
                "calls": int(calls),
                "tokens": int(tokens or 0),
                "kept": int(calls) - rejected - failed,
                "rejected": rejected,
                "failed": failed,
                "reasons": {},
            }
        for purpose, reason, n in con.execute(reasons_q.order_by(c.purpose, c.rejected)):
            out[purpose]["reasons"][reason] = int(n)
    return out


def add_interviews(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Store interview answers (``Interview`` fields)."""
    from sqlalchemy import insert

    from recworld.storage.models import Interview, utcnow

    if rows:
        with engine.begin() as con:
            con.execute(insert(Interview.__table__), [{"created_at": utcnow(), **r} for r in rows])


def interviews(engine: Engine, run_id: int, user_id: int | None = None) -> list[dict[str, Any]]:
    """Stored interviews of a run (or of one user), newest first."""
    from recworld.storage.models import Interview

    i = Interview
    q = select(i.id, i.user_id, i.question, i.answer, i.by, i.rejected, i.model, i.created_at).where(i.run_id == run_id)
    if user_id is not None:
        q = q.where(i.user_id == user_id)
    with engine.connect() as con:
        return [dict(r._mapping) for r in con.execute(q.order_by(i.id.desc()))]


def most_vocal_user(engine: Engine, run_id: int) -> int | None:
    """The user with the most model-written texts in a run (ties: the lowest id), else the most active one (most ticks with pages or sessions, then most events)."""
    from recworld.storage.models import Event, UserTick

    e, u = Event, UserTick
    q = (
        select(e.user_id, func.count())
        .where(e.run_id == run_id, e.text.is_not(None), e.payload.like('%"by": "llm"%'))
        .group_by(e.user_id)
        .order_by(func.count().desc(), e.user_id)
        .limit(1)
    )
    with engine.connect() as con:
        row = con.execute(q).first()
        for t in (u, e):
            if row is None:
                row = con.execute(
                    select(t.user_id, func.count()).where(t.run_id == run_id).group_by(t.user_id).order_by(func.count().desc(), t.user_id).limit(1)
                ).first()
    return None if row is None else int(row[0])
