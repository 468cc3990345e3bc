"""Read-side SQL for the dashboard: paginated, filtered and aggregated in SQL.

Every function takes an engine and returns plain dicts/lists. Nothing here
loads a run's event log into Python: per-run aggregates come from
:class:`~recworld.storage.models.TickMetrics` / :class:`RetentionPoint`, and
event queries are bounded by ``limit`` and served by the Event indexes
``(run_id, tick)``, ``(run_id, user_id, tick)``, ``(run_id, item_id)`` and
``(run_id, type, tick)``. A user's served pages and session events of a
tick are packed in one UserTick row (:mod:`recworld.storage.pagelog`): a
user's come from the UserTick index ``(run_id, span, user_id, tick)``, session
counts and retention from ``(run_id, tick, user_id, <session counts>)``, an
item's counts and viewers from :class:`~recworld.storage.models.ItemTick`
(one row per item and tick).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Engine

from recworld.dashboard import series
from recworld.events import EventType
from recworld.kpis import KPIS
from recworld.metrics import retention_curve, retention_table
from recworld.payloads import LeavePayload, PostPayload
from recworld.storage import pagelog, summary
from recworld.storage.models import (
    Edge,
    EvalResult,
    Event,
    Item,
    ItemTick,
    LLMCall,
    MemoryRecord,
    RetentionPoint,
    Run,
    TickMetrics,
    TickSummary,
    UserProfile,
    UserSnapshot,
    UserTick,
    Validation,
)
from recworld.storage.queries import columns_or_null, interviews, llm_text_outcomes, present_columns, run_summary

TERMINAL_STATUSES = frozenset({"completed", "failed", "interrupted"})
RUN_FIELDS = [c.name for c in Run.__table__.columns if c.name not in ("config_json", "versions_json", "summary_json")]
_RUN_ALL = [*RUN_FIELDS, "config_json", "summary_json"]
PROFILE_FIELDS = [c.name for c in UserProfile.__table__.columns if c.name not in ("id", "run_id")]
ITEM_FIELDS = [c.name for c in Item.__table__.columns if c.name not in ("id", "run_id")]
SESSION_TYPES = (int(EventType.SESSION_START), int(EventType.RETURN))
WATCH_TYPES = (int(EventType.WATCH), int(EventType.SOCIAL_WATCH))
# Event types counted per item (impressions are derived from them, see item_counts_of).
ITEM_TYPES = (EventType.IMPRESSION, EventType.WATCH, EventType.SKIP, EventType.SOCIAL_WATCH, EventType.POST)
ITEM_COUNT_KEYS = ("impressions", "watches", "skips", "social_watches", "posts")


def _rows(con, q) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in con.execute(q)]


def _nx(col):
    """``col + 0``: the same value, but no index on ``col`` can serve it.

    Without ANALYZE statistics SQLite prefers ``(run_id, type, tick)`` for any
    filter or GROUP BY on ``type``, scanning a whole run's events; hiding the
    column steers it to the selective ``(run_id, user_id, tick)`` or
    ``(run_id, item_id)`` index. Harmless on other databases.
    """
    return col + 0


def _columns(engine: Engine, model: type, names: Iterable[str]) -> list:
    return columns_or_null(engine, model, names)


# --------------------------------------------------------------------- runs
def run_row(engine: Engine, run_id: int) -> dict[str, Any] | None:
    """A run's columns (with its parsed config) or None."""
    with engine.connect() as con:
        r = con.execute(select(*_columns(engine, Run, _RUN_ALL)).where(Run.id == run_id)).first()
    if r is None:
        return None
    d = dict(r._mapping)
    out = {k: d[k] for k in RUN_FIELDS}
    out["config"] = _loads(d.get("config_json")) or {}
    out["summary"] = _loads(d.get("summary_json")) or {}
    return out


def period_ticks(run: dict[str, Any]) -> int:
    """Ticks per retention period of a run (its ``world.period_ticks``, 24 by default)."""
    try:
        return max(1, int(run.get("config", {}).get("world", {}).get("period_ticks", 24)))
    except (TypeError, ValueError, AttributeError):
        return 24


def run_kpis(engine: Engine, run: dict[str, Any]) -> dict[str, Any]:
    """Headline KPIs: the stored summary of a finished run, else computed from TickMetrics."""
    if run["status"] in TERMINAL_STATUSES and run.get("summary"):
        return dict(run["summary"])
    kpis = run_summary(engine, run["id"])
    if "retention_d1" not in kpis:
        ret = retention(engine, run)
        for k in (1, 3, 7):
            if k in ret["curve"]:
                kpis[f"retention_d{k}"] = ret["curve"][k]
    return kpis


def distinct_run_values(engine: Engine) -> dict[str, list[str]]:
    """Distinct scenarios, statuses and recommenders (for the runs filter)."""
    out = {}
    with engine.connect() as con:
        for col in ("scenario", "status", "recommender", "brain"):
            c = getattr(Run, col)
            out[col] = [v for (v,) in con.execute(select(c).distinct().order_by(c)) if v]
    return out


def find_runs(
    engine: Engine,
    *,
    scenario: str | None = None,
    status: str | None = None,
    recommender: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
    order_by: str = "id",
    descending: bool = True,
) -> tuple[int, list[dict[str, Any]]]:
    """Runs matching the filters, ordered by a Run column; returns (total, rows)."""
    conds = []
    if scenario:
        conds.append(Run.scenario == scenario)
    if status:
        conds.append(Run.status == status)
    if recommender:
        conds.append(Run.recommender == recommender)
    if q:
        like = f"%{q}%"
        conds.append(or_(Run.name.like(like), Run.scenario.like(like), Run.recommender.like(like), Run.brain.like(like)))
    where = and_(*conds) if conds else True
    col = getattr(Run, order_by)
    with engine.connect() as con:
        total = con.execute(select(func.count(Run.id)).where(where)).scalar_one()
        rows = con.execute(
            select(*_columns(engine, Run, _RUN_ALL)).where(where).order_by(col.desc() if descending else col.asc(), Run.id.desc()).limit(limit).offset(offset)
        ).all()
    out = []
    for r in rows:
        d = dict(r._mapping)
        item = {k: d[k] for k in RUN_FIELDS}
        item["config"] = _loads(d.get("config_json")) or {}
        item["summary"] = _loads(d.get("summary_json")) or {}
        out.append(item)
    return int(total), out


# ------------------------------------------------------------ tick metrics
def status_and_tick(engine: Engine, run_id: int) -> tuple[str, int] | None:
    """(status, tick_done) of a run, or None."""
    with engine.connect() as con:
        r = con.execute(select(Run.status, Run.tick_done).where(Run.id == run_id)).first()
    return None if r is None else (str(r[0]), int(r[1]))


# --------------------------------------------------------------- retention
def retention(engine: Engine, run: dict[str, Any]) -> dict[str, Any]:
    """Cohort retention of a run.

    Uses the stored :class:`RetentionPoint` table when the run has one (written
    at the end of a run); while a run is going, derives it from session-start
    events grouped in SQL by (user, period) — one row per active user-period.
    """
    run_id = run["id"]
    period = period_ticks(run)
    with engine.connect() as con:
        stored = con.execute(
            select(RetentionPoint.cohort, RetentionPoint.k, RetentionPoint.cohort_size, RetentionPoint.active)
            .where(RetentionPoint.run_id == run_id)
            .order_by(RetentionPoint.cohort, RetentionPoint.k)
        ).all()
    if stored:
        rows = [tuple(int(x) for x in r) for r in stored]
        source = "stored"
    else:
        rows = live_retention_rows(engine, run_id, period, int(run.get("tick_done", -1)))
        source = "live"
    curve = retention_curve(rows)
    return {"source": source, "period_ticks": period, "rows": rows, "curve": curve}


def live_retention_rows(engine: Engine, run_id: int, period: int, tick_done: int) -> list[tuple[int, int, int, int]]:
    """Cohort retention rows (cohort, k, size, active) over the complete periods up to ``tick_done``.

    One SQL GROUP BY over the UserTick rows with a session start (their
    index ``(run_id, tick, user_id, ...)``) gives each user's active periods; the table is built in numpy with the
    kernel's :func:`recworld.metrics.retention_table`, as the world does.
    """
    n_periods = (tick_done + 1) // period
    if n_periods <= 0:
        return []
    u = UserTick
    p = u.tick // period
    q = select(u.user_id, p.label("p")).where(u.run_id == run_id, u.tick < n_periods * period, u.starts + u.returns > 0).group_by(u.user_id, p)
    with engine.connect() as con:
        pairs = np.array([(int(u), int(pp)) for u, pp in con.execute(q)], dtype=np.int64).reshape(-1, 2)
    if not len(pairs):
        return []
    _, inv = np.unique(pairs[:, 0], return_inverse=True)
    active = np.zeros((int(inv.max()) + 1, n_periods), bool)
    active[inv, pairs[:, 1]] = True
    return retention_table(active, active.argmax(axis=1), n_periods)


# ----------------------------------------------------------------- events
def event_type_counts(engine: Engine, run_id: int, user_id: int | None = None, item_id: int | None = None) -> dict[int, int]:
    """Number of events of each type (for a run, a user or an item), served pages' per-item events included."""
    scoped = user_id is not None or item_id is not None
    t = _nx(Event.type) if scoped else Event.type
    q = select(t, func.count()).where(Event.run_id == run_id)
    if user_id is not None:
        q = q.where(Event.user_id == user_id)
    if item_id is not None:
        q = q.where(Event.item_id == item_id)
    with engine.connect() as con:
        out = {int(ty): int(n) for ty, n in con.execute(q.group_by(t))}
        packed = _page_counts(con, run_id, run_logging(engine, run_id), user_id=user_id, item_id=item_id)
        if item_id is None:  # session events have no item
            packed.update(_session_counts(con, run_id, user_id=user_id))
        for ty, n in packed.items():
            if n:
                out[ty] = out.get(ty, 0) + n
    return out


def _user_tick_conds(con, run_id: int, user_id: int, tick_min: int | None = None, tick_max: int | None = None) -> list:
    """Conditions selecting a user's UserTick rows through the per-user index (one seek per span of ticks, see pagelog.user_spans)."""
    u = UserTick
    spans = pagelog.user_spans(con, run_id, tick_min=tick_min, tick_max=tick_max)
    return [u.run_id == run_id, *([] if spans is None else [u.span.in_(spans)]), u.user_id == user_id, *_tick_range(u.tick, tick_min, tick_max)]


def _session_counts(con, run_id: int, *, user_id: int | None = None, tick_min: int | None = None, tick_max: int | None = None) -> dict[int, int]:
    """SESSION_START/RETURN/LEAVE/CHURN counts of a run or a user (the UserTick count columns, summed)."""
    u = UserTick
    if user_id is not None:
        conds = _user_tick_conds(con, run_id, user_id, tick_min, tick_max)
    else:
        conds = [u.run_id == run_id, *_tick_range(u.tick, tick_min, tick_max)]
    return pagelog.session_counts(*con.execute(select(func.sum(u.starts), func.sum(u.returns), func.sum(u.leaves), func.sum(u.churns)).where(*conds)).one())


def _page_counts(con, run_id: int, logging: tuple[bool, bool], *, user_id: int | None = None, item_id: int | None = None) -> dict[int, int]:
    """IMPRESSION/WATCH/SKIP/RATE counts of served pages (UserTick rows for a user, ItemTick rows for an item or a run)."""
    if user_id is not None:
        conds = _user_tick_conds(con, run_id, user_id)
        if item_id is not None:  # both: expand that user's pages (bounded by one user's activity)
            rows = pagelog.user_log(con, run_id, user_id, types=_PAGE_TYPE_SET)
            out: dict[int, int] = {}
            for r in rows:
                if r[4] == item_id:
                    out[r[3]] = out.get(r[3], 0) + 1
            return out
        shown, watched, rated = con.execute(select(func.sum(UserTick.shown), func.sum(UserTick.watched), func.sum(UserTick.rated)).where(*conds)).one()
    else:
        conds = [ItemTick.run_id == run_id] + ([ItemTick.item_id == item_id] if item_id is not None else [])
        shown, watched, rated = con.execute(select(func.sum(ItemTick.impressions), func.sum(ItemTick.watches), func.sum(ItemTick.ratings)).where(*conds)).one()
    return _derived_counts(int(shown or 0), int(watched or 0), int(rated or 0), logging)


def _derived_counts(shown: int, watched: int, rated: int, logging: tuple[bool, bool]) -> dict[int, int]:
    # The per-item events a page log stands for: what the world would have written as rows.
    log_skips, log_impressions = logging
    return {
        int(EventType.IMPRESSION): shown if log_impressions else 0,
        int(EventType.WATCH): watched,
        int(EventType.SKIP): shown - watched if log_skips else 0,
        int(EventType.RATE): rated,
    }


def events(
    engine: Engine,
    run_id: int,
    *,
    user_id: int | None = None,
    item_id: int | None = None,
    types: Iterable[int] | None = None,
    tick_min: int | None = None,
    tick_max: int | None = None,
    limit: int = 50,
    offset: int = 0,
    descending: bool = False,
    count: bool = True,
) -> tuple[int | None, list[dict[str, Any]]]:
    """Events filtered by user/item/type/tick range, paginated, in log order; returns (total or None, rows).

    Served pages are stored packed (:mod:`recworld.storage.pagelog`); their
    IMPRESSION/WATCH/SKIP/RATE events are expanded here, so rows read as the
    world emitted them. A user's events come from that user's rows; an item's
    from its ItemTick rows (which users were shown it, when); a whole run's
    are walked tick by tick.
    """
    tset = set(int(t) for t in types) if types is not None else None
    if tset is not None and not tset:
        return (0 if count else None), []
    with engine.connect() as con:
        total: int | None
        if user_id is not None and item_id is not None:  # rare (no endpoint asks): filter the user's log
            rows = [r for r in pagelog.user_log(con, run_id, user_id, types=tset, tick_min=tick_min, tick_max=tick_max) if r[4] == item_id]
            total = len(rows)
            rows = (rows[::-1] if descending else rows)[offset : offset + limit]
        elif user_id is not None:
            total, rows = _user_events(con, run_id, user_id, tset, tick_min, tick_max, limit, offset, descending)
        elif item_id is not None:
            total, rows = _item_events(con, engine, run_id, item_id, tset, tick_min, tick_max, limit, offset, descending, count)
        else:
            total, rows = _run_events(con, engine, run_id, tset, tick_min, tick_max, limit, offset, descending, count)
        ids = {r[4] for r in rows if r[4] is not None}
        titles = dict(con.execute(select(Item.item_id, Item.title).where(Item.run_id == run_id, Item.item_id.in_(ids))).all()) if ids else {}
    out = []
    for _seq, tick, user, ty, item, value, text, payload, eid in rows:
        out.append(
            {
                "id": eid,
                "tick": tick,
                "user_id": user,
                "type": ty,
                "item_id": item,
                "value": value,
                "text": text,
                "payload": _loads(payload),
                "item_title": titles.get(item),
                "type_name": _type_name(ty),
            }
        )
    return (None if total is None else int(total)), out


_PAGE_TYPE_SET = {int(t) for t in (EventType.IMPRESSION, EventType.WATCH, EventType.SKIP, EventType.RATE)}
_EV_COLS = (Event.id, Event.tick, Event.user_id, Event.type, Event.item_id, Event.value, Event.text, Event.payload, Event.seq)


def _tick_range(tick, tick_min: int | None, tick_max: int | None) -> list:
    """Conditions keeping a table's ``tick`` column within the bounds given (None: unbounded)."""
    return ([tick >= tick_min] if tick_min is not None else []) + ([tick <= tick_max] if tick_max is not None else [])


def _ev_conds(run_id: int, tset: set[int] | None, tick_min: int | None, tick_max: int | None, scoped: bool = False) -> list:
    conds = [Event.run_id == run_id]
    if tset is not None:
        conds.append((_nx(Event.type) if scoped else Event.type).in_(sorted(tset)))
    return conds + _tick_range(Event.tick, tick_min, tick_max)


def _total(con, engine: Engine, run_id: int, ev_conds: list, tset: set[int] | None, item_id: int | None, tick_min: int | None, tick_max: int | None) -> int:
    n = int(con.execute(select(func.count()).select_from(Event).where(*ev_conds)).scalar_one())
    if item_id is None and pagelog.wants_packed(tset):
        n += sum(v for t, v in _session_counts(con, run_id, tick_min=tick_min, tick_max=tick_max).items() if tset is None or t in tset)
    if tset is not None and not (tset & _PAGE_TYPE_SET):
        return n
    conds = [ItemTick.run_id == run_id] + ([ItemTick.item_id == item_id] if item_id is not None else []) + _tick_range(ItemTick.tick, tick_min, tick_max)
    shown, watched, rated = con.execute(select(func.sum(ItemTick.impressions), func.sum(ItemTick.watches), func.sum(ItemTick.ratings)).where(*conds)).one()
    derived = _derived_counts(int(shown or 0), int(watched or 0), int(rated or 0), run_logging(engine, run_id))
    return n + sum(v for t, v in derived.items() if tset is None or t in tset)


def _run_events(con, engine, run_id, tset, tick_min, tick_max, limit, offset, descending, count):
    """A run's events, walked a few ticks at a time from the start (or the end) until the page is full."""
    conds = _ev_conds(run_id, tset, tick_min, tick_max)
    total = _total(con, engine, run_id, conds, tset, None, tick_min, tick_max) if count else None
    bounds = pagelog.tick_bounds(con, run_id)
    if bounds is None:
        return total, []
    lo, hi = bounds
    lo = lo if tick_min is None else max(lo, tick_min)
    hi = hi if tick_max is None else min(hi, tick_max)
    want = offset + limit
    got: list = []
    step = 4
    t = hi if descending else lo
    while lo <= t <= hi and len(got) < want:
        a, z = (max(lo, t - step + 1), t) if descending else (t, min(hi, t + step - 1))
        evs = con.execute(select(*_EV_COLS).where(*conds, Event.tick >= a, Event.tick <= z).order_by(Event.id)).all()
        packed = pagelog.tick_rows(con, run_id, a, z) if pagelog.wants_packed(tset) else []
        chunk = pagelog.merge(evs, packed, tset)
        got.extend(chunk[::-1] if descending else chunk)
        t = a - 1 if descending else z + 1
    return total, got[offset:want]


def _user_events(con, run_id, user_id, tset, tick_min, tick_max, limit, offset, descending):
    """A user's events: counted per tick (Event rows from the index, UserTick rows by their count columns), then only the ticks on the page asked for are read and expanded."""
    per_tick: dict[int, int] = {}
    conds = _ev_conds(run_id, tset, tick_min, tick_max, scoped=True) + [Event.user_id == user_id]
    for t, n in con.execute(select(Event.tick, func.count()).where(*conds).group_by(Event.tick)):
        per_tick[int(t)] = int(n)
    if pagelog.wants_packed(tset):
        u = UserTick
        pc = _user_tick_conds(con, run_id, user_id, tick_min, tick_max)
        for t, *counts in con.execute(select(u.tick, *(getattr(u, c) for c in pagelog.USER_TICK_COUNTS)).where(*pc)):
            n = pagelog.event_count(*counts, types=tset)
            if n:
                per_tick[int(t)] = per_tick.get(int(t), 0) + n
    total = sum(per_tick.values())
    want, before, got, ticks = offset + limit, 0, 0, []
    for t in sorted(per_tick, reverse=descending):
        n = per_tick[t]
        if not ticks and before + n <= offset:  # wholly before the page asked for
            before += n
            continue
        ticks.append(t)
        got += n
        if before + got >= want:
            break
    if not ticks or limit <= 0:
        return total, []
    rows = pagelog.user_log(con, run_id, user_id, types=tset, ticks=ticks)
    rows = rows[::-1] if descending else rows
    return total, rows[offset - before : want - before]


def _item_events(con, engine, run_id, item_id, tset, tick_min, tick_max, limit, offset, descending, count):
    """An item's events: its Event rows (index (run_id, item_id)) and, per tick it was shown (ItemTick), the UserTick rows of those users."""
    conds = _ev_conds(run_id, tset, tick_min, tick_max, scoped=True) + [Event.item_id == item_id]
    total = _total(con, engine, run_id, conds, tset, item_id, tick_min, tick_max) if count else None
    evs = con.execute(select(*_EV_COLS).where(*conds).order_by(Event.id)).all()
    by_tick: dict[int, list] = {}
    for r in evs:
        by_tick.setdefault(int(r[1]), []).append(r)
    shown: dict[int, bytes] = {}
    if tset is None or tset & _PAGE_TYPE_SET:
        it = [ItemTick.run_id == run_id, ItemTick.item_id == item_id, *_tick_range(ItemTick.tick, tick_min, tick_max)]
        shown = {int(t): u for t, u in con.execute(select(ItemTick.tick, ItemTick.users).where(*it))}
    want = offset + limit
    got: list = []
    for t in sorted(set(by_tick) | set(shown), reverse=descending):
        pgs = []
        if t in shown:
            users = sorted(set(np.frombuffer(shown[t], "<i4").tolist()))
            for i in range(0, len(users), 500):
                part = ",".join(str(u) for u in users[i : i + 500])
                pgs.extend(
                    con.execute(
                        sql_text(f"SELECT {pagelog.USER_TICK_SELECT} FROM usertick WHERE run_id = :r AND tick = :t AND user_id IN ({part}) ORDER BY id"),
                        {"r": run_id, "t": t},
                    )
                )
        chunk = pagelog.merge(by_tick.get(t, []), pgs, tset, item=item_id)
        got.extend(chunk[::-1] if descending else chunk)
        if len(got) >= want:
            break
    return total, got[offset:want]


def _type_name(t: int) -> str:
    try:
        return EventType(int(t)).name.lower()
    except ValueError:
        return f"type_{t}"


def _loads(s: str | None) -> Any:
    if not s:
        return None
    try:
        return json.loads(s)
    except (ValueError, TypeError):
        return {"raw": s}


# ------------------------------------------------------------ impressions
_LOGGING: dict[tuple[int, int], tuple[bool, bool]] = {}


def run_logging(engine: Engine, run_id: int) -> tuple[bool, bool]:
    """``(log_skips, log_impressions)`` of a run, from its stored scenario (the world's defaults when absent)."""
    key = (id(engine), run_id)
    if key not in _LOGGING:
        with engine.connect() as con:
            cfg = _loads(con.execute(select(Run.config_json).where(Run.id == run_id)).scalar())
        world = (cfg or {}).get("world") if isinstance(cfg, dict) else None
        world = world if isinstance(world, dict) else {}
        _LOGGING[key] = (bool(world.get("log_skips", True)), bool(world.get("log_impressions", False)))
    return _LOGGING[key]


def item_counts_of(by_type: dict[int, int], logging: tuple[bool, bool]) -> dict[str, int | None]:
    """Impressions, page watches, skips, social watches and posts from event counts by type.

    Every item shown on a page is either watched (WATCH) or skipped (SKIP), so
    impressions = watches + skips when skips are logged (the default); with
    ``log_skips: false`` they come from IMPRESSION events when those are
    logged, else they are unknown (None).
    """
    log_skips, log_impressions = logging
    watches = by_type.get(int(EventType.WATCH), 0)
    if log_skips:
        skips: int | None = by_type.get(int(EventType.SKIP), 0)
        impressions: int | None = watches + skips
    elif log_impressions:
        impressions = by_type.get(int(EventType.IMPRESSION), 0)
        skips = impressions - watches
    else:
        impressions = skips = None
    return {
        "impressions": impressions,
        "watches": watches,
        "skips": skips,
        "social_watches": by_type.get(int(EventType.SOCIAL_WATCH), 0),
        "posts": by_type.get(int(EventType.POST), 0),
    }


def _type_sums(e, types=ITEM_TYPES) -> list:
    return [func.sum(case((e.type == int(t), 1), else_=0)).label(f"n{int(t)}") for t in types]


def _by_type(row: dict[str, Any], types=ITEM_TYPES) -> dict[int, int]:
    return {int(t): int(row.pop(f"n{int(t)}") or 0) for t in types}


# ------------------------------------------------------------------ users
def user_filter_values(engine: Engine, run_id: int) -> dict[str, list[str]]:
    """Distinct roles and occupations of a run's users."""
    out = {}
    with engine.connect() as con:
        for col in ("role", "occupation"):
            c = getattr(UserProfile, col)
            out[col] = [v for (v,) in con.execute(select(c).where(UserProfile.run_id == run_id).distinct().order_by(c).limit(200)) if v]
    return out


def find_users(
    engine: Engine,
    run_id: int,
    *,
    q: str | None = None,
    role: str | None = None,
    occupation: str | None = None,
    limit: int = 50,
    offset: int = 0,
    order_by: str = "user_id",
    descending: bool = False,
) -> tuple[int, list[dict[str, Any]]]:
    """User profiles matching text/role/occupation, with their latest snapshot; returns (total, rows)."""
    conds = [UserProfile.run_id == run_id]
    if q:
        like = f"%{q}%"
        conds.append(or_(UserProfile.profile_text.like(like), UserProfile.external_id == q, UserProfile.occupation.like(like)))
    if role:
        conds.append(UserProfile.role == role)
    if occupation:
        conds.append(UserProfile.occupation == occupation)
    col = getattr(UserProfile, order_by)
    cols = _columns(engine, UserProfile, PROFILE_FIELDS)
    with engine.connect() as con:
        total = con.execute(select(func.count()).select_from(UserProfile).where(*conds)).scalar_one()
        rows = _rows(con, select(*cols).where(*conds).order_by(col.desc() if descending else col.asc(), UserProfile.user_id).limit(limit).offset(offset))
    snaps = latest_snapshots(engine, run_id, [r["user_id"] for r in rows])
    for r in rows:
        r["latest"] = snaps.get(r["user_id"])
    return int(total), rows


def latest_snapshots(engine: Engine, run_id: int, user_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The newest UserSnapshot of each of ``user_ids`` (index (run_id, user_id, tick))."""
    if not user_ids:
        return {}
    s = UserSnapshot
    sub = select(s.user_id, func.max(s.tick).label("mt")).where(s.run_id == run_id, s.user_id.in_(user_ids)).group_by(s.user_id).subquery()
    q = (
        select(s.user_id, s.tick, s.satisfaction, s.fatigue, s.churned, s.sessions, s.watches)
        .join(sub, and_(s.user_id == sub.c.user_id, s.tick == sub.c.mt))
        .where(s.run_id == run_id)
    )
    with engine.connect() as con:
        return {r["user_id"]: r for r in _rows(con, q)}


def user_profile(engine: Engine, run_id: int, user_id: int) -> dict[str, Any] | None:
    """A user's profile row or None."""
    cols = _columns(engine, UserProfile, PROFILE_FIELDS)
    with engine.connect() as con:
        r = con.execute(select(*cols).where(UserProfile.run_id == run_id, UserProfile.user_id == user_id)).first()
    return None if r is None else dict(r._mapping)


def user_snapshots(engine: Engine, run_id: int, user_id: int, limit: int = 5000) -> list[dict[str, Any]]:
    """A user's state over time."""
    s = UserSnapshot
    q = (
        select(s.tick, s.satisfaction, s.fatigue, s.churned, s.sessions, s.watches)
        .where(s.run_id == run_id, s.user_id == user_id)
        .order_by(s.tick)
        .limit(limit)
    )
    with engine.connect() as con:
        return _rows(con, q)


def user_memory(engine: Engine, run_id: int, user_id: int, limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """A user's memory records, newest first."""
    m = MemoryRecord
    conds = (m.run_id == run_id, m.user_id == user_id)
    with engine.connect() as con:
        total = con.execute(select(func.count()).select_from(m).where(*conds)).scalar_one()
        rows = _rows(con, select(m.tick, m.kind, m.importance, m.text).where(*conds).order_by(m.tick.desc(), m.id.desc()).limit(limit).offset(offset))
    return int(total), rows


def user_sessions(engine: Engine, run_id: int, user_id: int, limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """A user's activity per tick (a session lives within a tick), newest first: counts per kind of event, why they left.

    The ticks come from the indexes (the user's Event and UserTick rows);
    only the ticks of the page asked for are read, expanded and counted.
    """
    p = {"r": run_id, "u": user_id}
    with engine.connect() as con:
        ticks = {int(t) for (t,) in con.execute(sql_text("SELECT DISTINCT tick FROM event WHERE run_id = :r AND user_id = :u"), p)}
        ticks.update(int(t) for (t,) in con.execute(select(UserTick.tick).where(*_user_tick_conds(con, run_id, user_id))))
        order = sorted(ticks, reverse=True)
        page = order[offset : offset + limit] if limit > 0 else []
        log = pagelog.user_log(con, run_id, user_id, ticks=page) if page else []
    by_tick: dict[int, list] = {}
    for r in log:
        by_tick.setdefault(r[1], []).append(r)
    logging = run_logging(engine, run_id)
    leave, rate, chat, churn = int(EventType.LEAVE), int(EventType.RATE), int(EventType.CHAT), int(EventType.CHURN)
    rows = []
    for t in page:
        evs = by_tick.get(t, [])
        by_type: dict[int, int] = {}
        for x in evs:
            by_type[x[3]] = by_type.get(x[3], 0) + 1
        ratings = [x[5] for x in evs if x[3] == rate]
        leaves = [x for x in evs if x[3] == leave]
        payloads = [x[7] for x in leaves if x[7] is not None]
        lp = LeavePayload.read(max(payloads)) if payloads else None
        rows.append(
            {
                "tick": t,
                "ratings": len(ratings),
                "mean_rating": sum(ratings) / len(ratings) if ratings else None,
                "pages": max((x[5] for x in leaves if x[5] is not None), default=None),
                "session": int(any(x[3] in SESSION_TYPES for x in evs)),
                "chats": by_type.get(chat, 0),
                "churn": by_type.get(churn, 0),
                "events": len(evs),
                **item_counts_of(by_type, logging),
                "leave_reason": None if lp is None else lp.reason,
            }
        )
    return len(order), rows


# ------------------------------------------------------------------ items
def find_items(
    engine: Engine,
    run_id: int,
    *,
    q: str | None = None,
    tag: str | None = None,
    limit: int = 50,
    offset: int = 0,
    order_by: str = "item_id",
    descending: bool = False,
) -> tuple[int, list[dict[str, Any]]]:
    """Catalog items matching title/tag text with their watch and impression counts."""
    conds = [Item.run_id == run_id]
    if q:
        conds.append(or_(Item.title.like(f"%{q}%"), Item.external_id == q))
    if tag:
        conds.append(Item.tags.like(f"%{tag}%"))
    cols = _columns(engine, Item, ITEM_FIELDS)
    with engine.connect() as con:
        total = int(con.execute(select(func.count()).select_from(Item).where(*conds)).scalar_one())
        stats = item_stats(engine, run_id)
        if order_by in ("watches", "impressions"):
            # Rank by popularity from the cached per-item counts.
            pop = {i: c[order_by] or 0 for i, c in stats.items()}
            ids = [int(i) for (i,) in con.execute(select(Item.item_id).where(*conds))]
            ids.sort(key=lambda i: (-pop.get(i, 0), i) if descending else (pop.get(i, 0), i))
            page = ids[offset : offset + limit]
            by_id = {r["item_id"]: r for r in _rows(con, select(*cols).where(Item.run_id == run_id, Item.item_id.in_(page)))} if page else {}
            rows = [by_id[i] for i in page if i in by_id]
        else:
            col = getattr(Item, order_by)
            rows = _rows(con, select(*cols).where(*conds).order_by(col.desc() if descending else col.asc(), Item.item_id).limit(limit).offset(offset))
    for r in rows:
        r.update(stats.get(r["item_id"]) or item_counts_of({}, run_logging(engine, run_id)))
    return total, rows


_STATS: dict[tuple[int, int], tuple[Any, float, dict[int, dict[str, int]]]] = {}
STATS_TTL_S = 30.0  # a running run's item counts are reused this long before recounting


def item_stats(engine: Engine, run_id: int) -> dict[int, dict[str, int | None]]:
    """Impressions, watches, skips, social watches and posts of every item of a run (see :func:`item_counts_of`).

    One GROUP BY (item, type) over the ``(run_id, type, tick)`` index; cached
    per run until it writes another tick, and at most :data:`STATS_TTL_S`
    seconds for a run still being written.
    """
    import time

    state = status_and_tick(engine, run_id)
    key = (id(engine), run_id)
    hit = _STATS.get(key)
    now = time.monotonic()
    if hit is not None and (hit[0] == state or (state is not None and state[0] not in TERMINAL_STATUSES and now - hit[1] < STATS_TTL_S)):
        return hit[2]
    raw: dict[int, dict[int, int]] = {}
    logging = run_logging(engine, run_id)
    with engine.connect() as con:
        # item_id + 0 (and no "IS NOT NULL"): keep SQLite on the type index, not a whole-run item scan.
        iid = _nx(Event.item_id)
        q = select(iid, Event.type, func.count()).where(Event.run_id == run_id, Event.type.in_([int(t) for t in ITEM_TYPES])).group_by(iid, Event.type)
        for item, typ, n in con.execute(q):
            if item is not None:
                raw.setdefault(int(item), {})[int(typ)] = int(n)
        # Pages: per-item sums of the ItemTick rows (one per item and tick).
        q = select(ItemTick.item_id, func.sum(ItemTick.impressions), func.sum(ItemTick.watches), func.sum(ItemTick.ratings))
        for item, shown, watched, rated in con.execute(q.where(ItemTick.run_id == run_id).group_by(ItemTick.item_id)):
            d = raw.setdefault(int(item), {})
            for t, n in _derived_counts(int(shown), int(watched), int(rated), logging).items():
                d[t] = d.get(t, 0) + n
    stats = {i: item_counts_of(c, logging) for i, c in raw.items()}
    if len(_STATS) > 32:
        _STATS.clear()
    _STATS[key] = (state, now, stats)
    return stats


def item_counts(engine: Engine, run_id: int, item_ids: list[int]) -> dict[int, dict[str, int | None]]:
    """Impressions, watches, skips, social watches and posts of some items (index (run_id, item_id))."""
    if not item_ids:
        return {}
    e = Event
    q = select(e.item_id, *_type_sums(e)).where(e.run_id == run_id, e.item_id.in_(item_ids)).group_by(e.item_id)
    logging = run_logging(engine, run_id)
    raw: dict[int, dict[int, int]] = {}
    with engine.connect() as con:
        for r in _rows(con, q):
            raw[r["item_id"]] = _by_type(r)
        q2 = select(ItemTick.item_id, func.sum(ItemTick.impressions), func.sum(ItemTick.watches), func.sum(ItemTick.ratings))
        for item, shown, watched, rated in con.execute(q2.where(ItemTick.run_id == run_id, ItemTick.item_id.in_(item_ids)).group_by(ItemTick.item_id)):
            d = raw.setdefault(int(item), {})
            for t, n in _derived_counts(int(shown), int(watched), int(rated), logging).items():
                d[t] = d.get(t, 0) + n
    return {i: item_counts_of(c, logging) for i, c in raw.items()}


def tick_span(engine: Engine, run_id: int) -> tuple[int, int] | None:
    """First and last tick of a run's per-tick metrics (None: none yet)."""
    with engine.connect() as con:
        lo, hi = con.execute(select(func.min(TickMetrics.tick), func.max(TickMetrics.tick)).where(TickMetrics.run_id == run_id)).one()
    return None if lo is None else (int(lo), int(hi))


def tick_buckets(engine: Engine, run_id: int, first: int, step: int) -> series.Buckets:
    """The :class:`~recworld.dashboard.series.Buckets` of a run's per-tick metrics (buckets of ``step`` ticks from ``first``), aggregated by the database.

    A long run's thousands of ticks are summed in SQL (one GROUP BY over the
    run's rows, then its buckets' last rows for the ``last`` fields), not
    read into Python: reading every row was most of the run overview's time.
    """
    have = present_columns(engine, TickMetrics)
    col = {f: f if f in have else "NULL" for f in series.TICK_RULES}
    # A metric that is never NULL (KPI not optional, column present) has a value in every row: COUNT(*) and SUM(weight)
    # say as much, and each aggregate left out is ~1/60 of the query's time.
    always = {f for f in col if col[f] != "NULL" and not KPIS[f].optional}
    exprs: list[str] = []
    for f, (how, weight) in series.TICK_RULES.items():
        if how == "last":
            continue
        exprs += [f"SUM({col[f]})", "COUNT(*)" if f in always else f"COUNT({col[f]})"]
        if how == "mean" and weight is not None:
            exprs += [
                f"SUM({col[f]} * {col[weight]})",
                f"SUM({col[weight]})" if f in always else f"SUM(CASE WHEN {col[f]} IS NULL THEN 0 ELSE {col[weight]} END)",
            ]
    b = "(tick - :first) / :step"  # integers: integer division in SQLite and PostgreSQL
    q = f"SELECT MAX(tick), MIN(tick), COUNT(*), {', '.join(exprs)} FROM tickmetrics WHERE run_id = :r GROUP BY {b} ORDER BY {b}"
    lasts = [f for f, (how, _w) in series.TICK_RULES.items() if how == "last"]
    with engine.connect() as con:
        rows = con.execute(sql_text(q), {"r": run_id, "first": first, "step": step}).all()
        ends = [int(r[0]) for r in rows]
        at_end = con.execute(
            sql_text(f"SELECT {', '.join(col[f] for f in lasts)} FROM tickmetrics WHERE run_id = :r AND tick IN ({','.join(map(str, ends))}) ORDER BY tick"),
            {"r": run_id},
        ).all()
    m = np.array([r[3:] for r in rows], np.float64).reshape(len(rows), len(exprs))  # NULL -> NaN (a bucket without values: count 0)
    out = series.Buckets(ends, [int(r[1]) for r in rows], [int(r[2]) for r in rows], {}, {})
    j = 0
    for f, (how, weight) in series.TICK_RULES.items():
        if how == "last":
            continue
        out.total[f], out.count[f] = np.nan_to_num(m[:, j]), m[:, j + 1].astype(np.int64)
        j += 2
        if how == "mean" and weight is not None:
            out.weighted[f], out.weights[f] = np.nan_to_num(m[:, j]), np.nan_to_num(m[:, j + 1])
            j += 2
    for i, f in enumerate(lasts):
        out.last[f] = [r[i] for r in at_end]
    return out


def item_row(engine: Engine, run_id: int, item_id: int) -> dict[str, Any] | None:
    """An item's catalog row or None."""
    cols = _columns(engine, Item, ITEM_FIELDS)
    with engine.connect() as con:
        r = con.execute(select(*cols).where(Item.run_id == run_id, Item.item_id == item_id)).first()
    return None if r is None else dict(r._mapping)


def item_timeseries(engine: Engine, run_id: int, item_id: int) -> list[dict[str, Any]]:
    """Per-tick impressions, watches, skips, social watches, ratings and posts of an item (the ticks it had any)."""
    ticks, cols = item_series(engine, run_id, item_id)
    return [{"tick": t, **{k: c[i] for k, c in cols.items()}} for i, t in enumerate(ticks)]


def item_series(engine: Engine, run_id: int, item_id: int) -> tuple[list[int], dict[str, list]]:
    """:func:`item_timeseries` as columns: (ticks, name -> one value per tick)."""
    e = Event
    q = (
        select(_nx(e.tick).label("tick"), *_type_sums(e), func.sum(case((e.type == int(EventType.RATE), 1), else_=0)).label("ratings"))
        .where(e.run_id == run_id, e.item_id == item_id)
        .group_by(_nx(e.tick))
        .order_by(_nx(e.tick))
    )
    logging = run_logging(engine, run_id)
    with engine.connect() as con:
        ev = _rows(con, q)
        q2 = select(ItemTick.tick, ItemTick.impressions, ItemTick.watches, ItemTick.ratings).where(ItemTick.run_id == run_id, ItemTick.item_id == item_id)
        pages = np.array([tuple(r) for r in con.execute(q2)], np.int64).reshape(-1, 4)  # tuples: numpy probes a Row as a mapping, slowly
    # Column-wise, one entry per tick (an item can be shown in thousands of ticks): the
    # same helpers as for one item's totals, on arrays.
    ticks = np.union1d(np.array([r["tick"] for r in ev], np.int64), pages[:, 0])
    by_type = {int(t): np.zeros(ticks.size, np.int64) for t in (*ITEM_TYPES, EventType.RATE)}
    for r in ev:
        i = int(np.searchsorted(ticks, r["tick"]))
        for t, n in _by_type(r).items():
            by_type[t][i] += n
        by_type[int(EventType.RATE)][i] += int(r["ratings"] or 0)
    at = np.searchsorted(ticks, pages[:, 0])
    for t, n in _derived_counts(pages[:, 1], pages[:, 2], pages[:, 3], logging).items():
        np.add.at(by_type[t], at, n)
    cols = {"ratings": by_type[int(EventType.RATE)].tolist()}
    cols.update({k: (v.tolist() if isinstance(v, np.ndarray) else [v] * ticks.size) for k, v in item_counts_of(by_type, logging).items()})
    return ticks.tolist(), cols


def item_watchers(engine: Engine, run_id: int, item_id: int, limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Users who watched an item: watches (page and social), first tick, mean rating.

    Page watches and their ratings come from the item's ItemTick rows (who
    was shown it, what they did, the rating: see
    :func:`recworld.storage.pagelog.item_tick_rows`), social watches from its
    Event rows; no page is decoded.
    """
    with engine.connect() as con:
        q = select(ItemTick.tick, ItemTick.impressions, ItemTick.users, ItemTick.marks)
        shown_rows = con.execute(q.where(ItemTick.run_id == run_id, ItemTick.item_id == item_id).order_by(ItemTick.tick)).all()
        q = select(Event.user_id, Event.tick).where(Event.run_id == run_id, Event.item_id == item_id, _nx(Event.type) == int(EventType.SOCIAL_WATCH))
        social = np.array([tuple(r) for r in con.execute(q)], np.int64).reshape(-1, 2)
    # Every page watch as (user, tick, rating), in one array (an item can be shown in thousands of ticks).
    users = np.frombuffer(b"".join(r[2] for r in shown_rows), "<i4").astype(np.int64)
    state, rating = pagelog.read_marks((r[1], r[3]) for r in shown_rows)
    ticks = np.repeat(np.array([int(r[0]) for r in shown_rows], np.int64), [int(r[1]) for r in shown_rows])
    w = state > 0
    users, rating, ticks = users[w], rating[w], ticks[w]
    who, inv = np.unique(np.concatenate([users, social[:, 0]]), return_inverse=True)
    watches = np.bincount(inv, minlength=who.size)
    social_watches = np.bincount(inv[users.size :], minlength=who.size)
    first = np.full(who.size, np.iinfo(np.int64).max)
    np.minimum.at(first, inv, np.concatenate([ticks, social[:, 1]]))
    rated = ~np.isnan(rating)
    page_inv = inv[: users.size][rated]
    n_rated = np.bincount(page_inv, minlength=who.size)
    rating_sum = np.bincount(page_inv, rating[rated], minlength=who.size)
    out = []
    for i in np.lexsort((who, first))[offset : offset + limit].tolist():
        out.append(
            {
                "user_id": int(who[i]),
                "watches": int(watches[i]),
                "social_watches": int(social_watches[i]),
                "first_tick": int(first[i]),
                "rating": float(rating_sum[i] / n_rated[i]) if n_rated[i] else None,
            }
        )
    return int(who.size), out


def item_cascades(engine: Engine, run_id: int, item_id: int, limit: int = 500) -> dict[str, Any]:
    """Share cascades of an item: its POST events linked into trees by their payloads.

    Each post names its parent post (:class:`~recworld.payloads.PostPayload`
    ``parent_post``); a post without one is the root of a cascade. A post
    whose parent is not among the item's first ``limit`` posts, or whose
    payload does not parse, is shown as a root of its own.
    """
    _, posts = events(engine, run_id, item_id=item_id, types=[int(EventType.POST)], limit=limit, count=False)
    nodes = []
    index_of: dict[int, int] = {}
    for i, p in enumerate(posts):
        pl = PostPayload.read(p.get("payload"))
        nodes.append(
            {
                "index": i,
                "event_id": p["id"],
                "tick": p["tick"],
                "user_id": p["user_id"],
                "text": p.get("text"),
                "post": None if pl is None else pl.post,
                "parent_post": None if pl is None else pl.parent_post,
                "cascade": None if pl is None else pl.cascade,
                "parent_user": None,
                "parent": None,
                "children": [],
            }
        )
        if pl is not None:
            index_of[pl.post] = i
    roots = []
    for nd in nodes:
        parent = index_of.get(nd["parent_post"]) if nd["parent_post"] is not None else None
        if parent is None or parent == nd["index"]:
            roots.append(nd["index"])
        else:
            nd["parent"] = parent
            nd["parent_user"] = nodes[parent]["user_id"]
            nodes[parent]["children"].append(nd["index"])
    cascades = []
    for r in roots:
        depth, size = _tree_depth_size(nodes, r)
        cascades.append({"root": r, "cascade": nodes[r]["cascade"], "depth": depth, "size": size})
    cascades.sort(key=lambda c: (-c["size"], c["root"]))
    return {"posts": nodes, "cascades": cascades, "truncated": len(posts) >= limit}


def _tree_depth_size(nodes: list[dict[str, Any]], root: int) -> tuple[int, int]:
    stack, size, depth = [(root, 0)], 0, 0
    while stack:
        j, d = stack.pop()
        size += 1
        depth = max(depth, d)
        stack.extend((c, d + 1) for c in nodes[j]["children"])
    return depth, size


def cascade_summary(engine: Engine, run_id: int) -> dict[str, Any]:
    """Share cascades of a whole run: count, sizes, depths.

    Summed in SQL from the run's per-tick :class:`~recworld.storage.models.TickSummary`
    rows (POST events per cascade, written with each tick; see
    :mod:`recworld.storage.summary`), not from the POST payloads themselves.

    Returns:
        ``{"posts", "cascades", "max_cascade_size", "mean_cascade_size",
        "share_spreading", "max_depth", "size_distribution"}`` with the same
        meaning as the social layer's ``cascade_stats()``.
    """
    ts = TickSummary
    per = select(func.sum(ts.n).label("size")).where(ts.run_id == run_id, ts.kind == summary.CASCADE).group_by(ts.key).subquery()
    with engine.connect() as con:
        n = con.execute(select(func.sum(ts.n)).where(ts.run_id == run_id, ts.kind == summary.POST)).scalar()
        depth = con.execute(select(func.max(ts.depth)).where(ts.run_id == run_id, ts.kind == summary.CASCADE)).scalar()
        # Cascade sizes as a distribution (size -> cascades), summed by the database: a long run has tens of thousands.
        dist = {int(k): int(v) for k, v in con.execute(select(per.c.size, func.count()).group_by(per.c.size).order_by(per.c.size))}
    sizes = np.array(list(dist), np.int64)
    counts = np.array(list(dist.values()), np.int64)
    total = int(counts.sum())
    return {
        "posts": int(n or 0),
        "cascades": total,
        "max_cascade_size": int(sizes.max()) if total else 0,
        "mean_cascade_size": float((sizes * counts).sum() / total) if total else 0.0,
        "share_spreading": float(counts[sizes > 1].sum() / total) if total else 0.0,
        "max_depth": int(depth or 0),
        "size_distribution": dist,
    }


# ------------------------------------------------------------------ leaving
def leave_reasons(engine: Engine, run_id: int) -> dict[str, int]:
    """How many sessions of a run ended for each reason (:data:`~recworld.payloads.LEAVE_REASONS`; ``"unknown"``: unreadable payload).

    Summed in SQL from the run's per-tick :class:`~recworld.storage.models.TickSummary` rows.
    """
    ts = TickSummary
    q = select(ts.key, func.sum(ts.n)).where(ts.run_id == run_id, ts.kind == summary.LEAVE).group_by(ts.key).order_by(ts.key)
    with engine.connect() as con:
        return {str(k): int(n) for k, n in con.execute(q)}


# ------------------------------------------------------------------ graph
def graph_sample(engine: Engine, run_id: int, max_nodes: int = 300) -> dict[str, Any]:
    """The current follow graph restricted to its ``max_nodes`` highest-degree users.

    Returns:
        ``{"nodes": [user ids], "degree": [...], "edges": [(src, dst)], "total_edges": n, "total_nodes": m}``.
    """
    live = (Edge.run_id == run_id, Edge.removed_tick.is_(None))
    with engine.connect() as con:
        total_edges = int(con.execute(select(func.count()).select_from(Edge).where(*live)).scalar_one())
        if total_edges == 0:
            return {"nodes": [], "degree": [], "edges": [], "total_edges": 0, "total_nodes": 0}
        ends = select(Edge.src.label("u")).where(*live).union_all(select(Edge.dst.label("u")).where(*live)).subquery()
        deg = con.execute(select(ends.c.u, func.count().label("d")).group_by(ends.c.u).order_by(func.count().desc(), ends.c.u).limit(max_nodes)).all()
        total_nodes = int(con.execute(select(func.count(func.distinct(ends.c.u)))).scalar_one())
        nodes = [int(u) for u, _ in deg]
        degree = [int(d) for _, d in deg]
        edges = [(int(s), int(d)) for s, d in con.execute(select(Edge.src, Edge.dst).where(*live, Edge.src.in_(nodes), Edge.dst.in_(nodes)).limit(20_000))]
    return {"nodes": nodes, "degree": degree, "edges": edges, "total_edges": total_edges, "total_nodes": total_nodes}


def profiles_of(engine: Engine, run_id: int, user_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Role and activity of some users."""
    out: dict[int, dict[str, Any]] = {}
    with engine.connect() as con:
        for i in range(0, len(user_ids), 500):
            chunk = user_ids[i : i + 500]
            q = select(UserProfile.user_id, UserProfile.role, UserProfile.activity).where(UserProfile.run_id == run_id, UserProfile.user_id.in_(chunk))
            out.update({r["user_id"]: r for r in _rows(con, q)})
    return out


# -------------------------------------------------------------------- llm
def llm_by_purpose(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    """LLM calls of a run grouped by purpose: count, cached, fallbacks, tokens, mean latency, and what became of their text.

    ``kept``, ``rejected`` (with ``reasons``) and ``failed``: see
    :func:`recworld.storage.queries.llm_text_outcomes`.
    """
    c = LLMCall
    q = (
        select(
            c.purpose,
            func.count().label("calls"),
            func.sum(case((c.cached, 1), else_=0)).label("cached"),
            func.sum(case((c.fell_back, 1), else_=0)).label("fallbacks"),
            func.sum(c.tokens_in + c.tokens_out).label("tokens"),
            func.avg(c.latency_ms).label("mean_latency_ms"),
        )
        .where(c.run_id == run_id)
        .group_by(c.purpose)
        .order_by(func.count().desc())
    )
    with engine.connect() as con:
        rows = _rows(con, q)
    outcomes = llm_text_outcomes(engine, run_id)
    for r in rows:
        o = outcomes.get(r["purpose"], {})
        r.update({k: o.get(k, 0) for k in ("kept", "rejected", "failed")}, reasons=o.get("reasons", {}))
    return rows


def user_interviews(engine: Engine, run_id: int, user_id: int) -> list[dict[str, Any]]:
    """A user's stored interviews (``recworld interview``), newest first."""
    return interviews(engine, run_id, user_id)


def llm_by_endpoint(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    """LLM calls of a run grouped by the server that answered (``llm.base_urls``).

    Calls that made no request (cache hits, every breaker open) and rows
    written before the ``endpoint`` column existed are left out.
    """
    c = LLMCall
    q = (
        select(
            c.endpoint,
            func.count().label("calls"),
            func.sum(case((c.fell_back, 1), else_=0)).label("fallbacks"),
            func.sum(c.retries).label("retries"),
            func.sum(c.tokens_in + c.tokens_out).label("tokens"),
            func.avg(c.latency_ms).label("mean_latency_ms"),
        )
        .where(c.run_id == run_id, c.endpoint.is_not(None))
        .group_by(c.endpoint)
        .order_by(c.endpoint)
    )
    with engine.connect() as con:
        return _rows(con, q)


# -------------------------------------------------------------------- evaluations
def eval_summaries(engine: Engine) -> list[dict[str, Any]]:
    """One row per evaluation name (``recworld eval --name``), newest first."""
    e = EvalResult
    q = (
        select(
            e.name,
            func.max(e.created_at).label("created_at"),
            func.count(func.distinct(e.policy)).label("n_policies"),
            func.count(func.distinct(e.metric)).label("n_metrics"),
            func.max(e.n_seeds).label("n_seeds"),
        )
        .group_by(e.name)
        .order_by(func.max(e.id).desc())
    )
    with engine.connect() as con:
        return _rows(con, q)


def eval_rows(engine: Engine, name: str) -> list[dict[str, Any]]:
    """The latest result per (policy, metric) of an evaluation, in the order they were written."""
    e = EvalResult
    latest = select(func.max(e.id)).where(e.name == name).group_by(e.policy, e.metric)
    q = select(e.policy, e.metric, e.mean, e.ci_low, e.ci_high, e.n_seeds, e.created_at, e.detail_json).where(e.id.in_(latest)).order_by(e.id)
    with engine.connect() as con:
        rows = _rows(con, q)
    for r in rows:
        detail = _loads(r.pop("detail_json")) or {}
        r["values"] = [float(v) for v in detail.get("values", []) if isinstance(v, (int, float))]
    return rows


def validation_summaries(engine: Engine) -> list[dict[str, Any]]:
    """Stored fidelity reports (``recworld validate``), newest first, with their stored JSON."""
    v = Validation
    q = select(v.id, v.name, v.scenario, v.brain, v.seed, v.holdout, v.created_at, v.report_json).order_by(v.id.desc())
    with engine.connect() as con:
        return _rows(con, q)


def validation_by_name(engine: Engine, name: str) -> dict[str, Any] | None:
    """The latest fidelity report stored under ``name``."""
    v = Validation
    q = select(v.id, v.name, v.scenario, v.brain, v.seed, v.holdout, v.created_at, v.report_json).where(v.name == name).order_by(v.id.desc()).limit(1)
    with engine.connect() as con:
        rows = _rows(con, q)
    return rows[0] if rows else None
