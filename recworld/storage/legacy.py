"""Event logs of older schemas, brought to the current layout by the migrations (:mod:`recworld.storage.migrations`).

Schema 5-7 stored each served page as a ``page`` row (the page data of
:mod:`recworld.storage.pagelog` without its head) and every session event as
an ``Event`` row: :func:`backfill_marks` (6 -> 7) rewrites ``ItemTick``
marks from those pages, :func:`pack_legacy` (7 -> 8) packs pages and
session events into ``UserTick`` rows — both with the recorder's own
functions, so a migrated run reads exactly as one recorded now.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from recworld.events import INT_NONE, PageBlock
from recworld.storage.bulk import insert_rows, placeholders
from recworld.storage.pagelog import (
    IMPRESSIONS,
    PAGE_HEAD,
    SESSION_TYPES,
    SKIPS,
    USER_TICK_COLUMNS,
    _event_records,
    _group,
    _Records,
    _sparse,
    decode,
    item_tick_rows,
)


def page_blocks(rows: Iterable[tuple]) -> list[PageBlock]:
    """Page rows ``(user_id, k, n_watched, n_rated, flags, data)`` of one tick, in log (id) order, as the blocks they were cut from.

    Consecutive pages of one ``k`` and ``flags`` share a block; what
    :func:`item_tick_rows` reads (users, slates, watched, ratings, in log
    order) is as the world emitted it. ``start`` and ``n_events`` are 0.
    """
    out: list[PageBlock] = []
    group: list[tuple] = []

    def close() -> None:
        if not group:
            return
        k, flags = group[0][1], group[0][4]
        users, slates, watched, frac, ratings = [], [], [], [], []
        for user, _k, n_w, n_r, _f, data in group:
            items, w, fr, rt = decode(k, n_w, n_r, flags, bytes(data))
            users.append(user)
            slates.append(items)
            watched.append(w)
            frac.extend(fr)
            ratings.extend(rt)
        w = np.array(watched, bool).reshape(-1, k)
        f, r = np.ones(w.shape), np.full(w.shape, np.nan)
        f[w], r[w] = frac, ratings  # decode lists the watched items' values page by page, as row-major order does
        out.append(
            PageBlock(0, 0, np.array(users, np.int64), np.array(slates, np.int64).reshape(-1, k), w, f, r, bool(flags & IMPRESSIONS), bool(flags & SKIPS))
        )
        group.clear()

    for r in rows:
        if group and (r[1], r[4]) != (group[0][1], group[0][4]):
            close()
        group.append(tuple(r))
    close()
    return out


def _has_table(engine_or_con: Any, name: str) -> bool:
    from sqlalchemy import inspect

    return name in inspect(engine_or_con).get_table_names()


def backfill_marks(engine: Any, run_ids: Iterable[int] | None = None, ticks_per_chunk: int = 64) -> int:
    """Rewrite the ItemTick ``marks`` of runs from their Page rows with :func:`item_tick_rows`; returns the rows rewritten.

    Used by the schema 6 -> 7 migration: ratings moved into ``marks`` (before,
    a rated user was marked 2 and the rating was only in the page). Only rows
    with ratings change; each run is one transaction, and running it again
    (an interrupted migration) writes the same marks.
    """
    from sqlalchemy import text

    if not _has_table(engine, "page"):  # a database made at schema 8 or later: nothing to rewrite
        return 0
    with engine.connect() as con:
        ids = list(run_ids) if run_ids is not None else [int(r) for (r,) in con.execute(text("SELECT DISTINCT run_id FROM page ORDER BY run_id"))]

    written = 0
    for run_id in ids:
        with engine.begin() as con:
            lo, hi = con.execute(text("SELECT min(tick), max(tick) FROM page WHERE run_id = :r"), {"r": run_id}).one()
            for a in range(lo if lo is not None else 0, (hi if hi is not None else -1) + 1, ticks_per_chunk):
                q = "SELECT tick, user_id, k, n_watched, n_rated, flags, data FROM page WHERE run_id = :r AND tick BETWEEN :a AND :z ORDER BY id"
                by_tick: dict[int, list[tuple]] = {}
                for t, *rest in con.execute(text(q), {"r": run_id, "a": a, "z": a + ticks_per_chunk - 1}):
                    by_tick.setdefault(int(t), []).append(tuple(rest))
                params = [
                    (r[8], run_id, r[2], t)
                    for t, pages in by_tick.items()
                    for r in item_tick_rows(run_id, t, page_blocks(pages))
                    if r[5] > 0  # a row without ratings has the same marks in both versions
                ]
                if params:
                    m = placeholders(con, 4)
                    con.exec_driver_sql(f"UPDATE itemtick SET marks = {m[0]} WHERE run_id = {m[1]} AND item_id = {m[2]} AND tick = {m[3]}", params)
                    written += len(params)
    return written


def pack_legacy(engine: Any, ticks_per_chunk: int = 64) -> int:
    """Move schema 5-7 logs into UserTick rows: their ``page`` rows and session Event rows, packed per user and tick; returns the rows written.

    Used by the schema 7 -> 8 migration. Each run is one transaction; a run
    converted is left without page rows and session Event rows, so running
    it again (an interrupted migration) converts only what is left. Events
    of logs older than schema 5 have no seq: their place in the log is
    their id, which the packed record keeps as its seq. The ``page`` table
    is dropped once empty.
    """
    from sqlalchemy import text

    has_page = _has_table(engine, "page")
    sess = ",".join(str(t) for t in SESSION_TYPES)
    with engine.connect() as con:
        q = f"SELECT DISTINCT run_id FROM event WHERE type IN ({sess})" + (" UNION SELECT DISTINCT run_id FROM page" if has_page else "")
        ids = sorted(int(r) for (r,) in con.execute(text(q)))
    written = 0
    for run_id in ids:
        with engine.begin() as con:
            p = {"r": run_id}
            bounds = [con.execute(text(f"SELECT min(tick), max(tick) FROM event WHERE run_id = :r AND type IN ({sess})"), p).one()]
            if has_page:
                bounds.append(con.execute(text("SELECT min(tick), max(tick) FROM page WHERE run_id = :r"), p).one())
            lo = min(b[0] for b in bounds if b[0] is not None)
            hi = max(b[1] for b in bounds if b[1] is not None)
            for a in range(lo, hi + 1, ticks_per_chunk):
                p = {"r": run_id, "a": a, "z": a + ticks_per_chunk - 1}
                pages: dict[int, list[tuple]] = {}
                if has_page:
                    q = "SELECT tick, user_id, k, n_watched, n_rated, flags, seq_i, seq_w, seq_r, data FROM page WHERE run_id = :r AND tick BETWEEN :a AND :z ORDER BY id"
                    for t, *rest in con.execute(text(q), p):
                        pages.setdefault(int(t), []).append(tuple(rest))
                evs: dict[int, list[tuple]] = {}
                q = f"SELECT id, tick, user_id, type, item_id, value, text, payload, seq FROM event WHERE run_id = :r AND tick BETWEEN :a AND :z AND type IN ({sess}) ORDER BY id"
                for i, t, *rest in con.execute(text(q), p):
                    evs.setdefault(int(t), []).append((i, *rest))
                rows: list[tuple] = []
                for t in sorted(set(pages) | set(evs)):
                    pg = pages.get(t, [])
                    recs = [PAGE_HEAD.pack(k, w, r, f, si, sw, sr) + bytes(d) for _u, k, w, r, f, si, sw, sr, d in pg]
                    page_recs = _Records(
                        np.frombuffer(b"".join(recs), np.uint8),
                        np.array([len(x) for x in recs], np.int64),
                        np.array([x[0] for x in pg], np.int64),
                        shown=np.array([x[1] for x in pg], np.int64),
                        watched=np.array([x[2] for x in pg], np.int64),
                        rated=np.array([x[3] for x in pg], np.int64),
                        flags=np.array([x[4] for x in pg], np.int64),
                    )
                    ev = evs.get(t, [])
                    cols = list(zip(*ev)) if ev else [()] * 8  # id, user, type, item, value, text, payload, seq
                    event_recs = _event_records(
                        np.array(cols[1], np.int64),
                        np.array([i if s is None else s for i, s in zip(cols[0], cols[7])], np.int64),
                        np.array(cols[2], np.int64),
                        np.array([INT_NONE if x is None else x for x in cols[3]], np.int64),
                        np.array([math.nan if x is None else x for x in cols[4]], np.float64),
                        _sparse(cols[5]),
                        _sparse(cols[6]),
                    )
                    rows.extend(_group(run_id, t, page_recs, event_recs))
                insert_rows(con, "usertick", USER_TICK_COLUMNS, rows)
                written += len(rows)
                con.execute(text(f"DELETE FROM event WHERE run_id = :r AND tick BETWEEN :a AND :z AND type IN ({sess})"), p)
                if has_page:
                    con.execute(text("DELETE FROM page WHERE run_id = :r AND tick BETWEEN :a AND :z"), p)
    if has_page:
        with engine.begin() as con:
            if con.execute(text("SELECT count(*) FROM page")).scalar() == 0:
                con.execute(text("DROP TABLE page"))
    return written


__all__ = ["backfill_marks", "pack_legacy", "page_blocks"]
