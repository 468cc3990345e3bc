"""The page log: served pages packed one row each, and the per-item events expanded back on read.

A page shows k items and the user decides on each: logged one event per item
(IMPRESSION, WATCH/SKIP, RATE), a page is most of the event log and writing
those rows was most of a logged world's time. The log stores instead one
:class:`~recworld.storage.models.Page` row per page (slate, watched bits,
watched shares, ratings in one blob) plus one
:class:`~recworld.storage.models.ItemTick` row per item shown in a tick
(counts, and who was shown it), and expands pages back into exactly the
events the world emitted, in the same order (``seq``: the position in the
tick's event stream, which ``Event`` rows carry too).

Blob layout of ``Page.data`` (little-endian): items ``int32[k]``; watched
bits (``numpy.packbits``, ``ceil(k/8)`` bytes); the watched items' shares
``float64[n_watched]`` when ``flags & FRAC`` (else every watched share is
1.0); when ``n_rated > 0``, one rating per watched item: ``int8`` (0 = not
rated) or, with ``flags & FLOAT_RATINGS``, ``float64`` (NaN = not rated).

``ItemTick.marks`` (schema 7) holds per user shown what they did with the
item and their rating (see :func:`item_tick_rows`), so an item page reads
its watchers' ratings without decoding a page.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from recworld.events import EventBatch, EventType, PageBlock
from recworld.storage.bulk import placeholders

IMPRESSIONS = 1  # IMPRESSION events were logged for the page
SKIPS = 2  # SKIP events were logged
FRAC = 4  # watched shares stored (else all 1.0)
FLOAT_RATINGS = 8  # ratings stored as float64 (else int8)
_MAX_MARK_RATING = 126  # ItemTick marks hold 1 + rating in an int8

_IMP, _WATCH, _SKIP, _RATE = int(EventType.IMPRESSION), int(EventType.WATCH), int(EventType.SKIP), int(EventType.RATE)
#: Page-derived events get ids above this (page id x 512 + index in the page), apart from Event row ids.
PAGE_EVENT_ID_BASE = 1 << 40
PAGE_COLUMNS = ("run_id", "tick", "user_id", "k", "n_watched", "n_rated", "flags", "seq_i", "seq_w", "seq_r", "data")
ITEM_TICK_COLUMNS = ("run_id", "tick", "item_id", "impressions", "watches", "ratings", "rating_sum", "users", "marks")

# An event as readers get it: (seq, tick, user, type, item, value, text, payload, id)
Row = tuple[int, int, int, int, int | None, float | None, str | None, str | None, int]


def page_rows(run_id: int, tick: int, block: PageBlock, start: int) -> list[tuple]:
    """Page table rows (in :data:`PAGE_COLUMNS` order) of one block whose first event is at ``start`` of its tick."""
    b, k = block.slates.shape
    if b == 0:
        return []
    watched = np.ascontiguousarray(block.watched, bool)
    n_w = watched.sum(axis=1)
    rated = watched & ~np.isnan(block.ratings)
    n_r = rated.sum(axis=1)
    n_imp = b * k if block.impressions else 0
    ws = np.full(b, k) if block.skips else n_w
    seq_i = start + np.arange(b) * k if block.impressions else np.full(b, start)
    seq_w = start + n_imp + np.concatenate(([0], np.cumsum(ws)[:-1]))
    seq_r = start + n_imp + int(ws.sum()) + np.concatenate(([0], np.cumsum(n_r)[:-1]))
    prefix = np.hstack([block.slates.astype("<i4").view(np.uint8).reshape(b, 4 * k), np.packbits(watched, axis=1)])
    fr = np.ascontiguousarray(block.frac[watched], "<f8")
    rt = block.ratings[watched]
    flags = (IMPRESSIONS if block.impressions else 0) | (SKIPS if block.skips else 0)
    has_frac = bool((fr != 1.0).any())
    if has_frac:
        flags |= FRAC
    got = rt[~np.isnan(rt)]
    if got.size and ((got != np.round(got)).any() or got.min() < 1 or got.max() > 127):
        flags |= FLOAT_RATINGS
        rbytes, rsize = np.ascontiguousarray(rt, "<f8").tobytes(), 8
    else:
        rbytes, rsize = np.nan_to_num(rt, nan=0.0).astype(np.int8).tobytes(), 1
    # Every page's blob laid out in one buffer (prefix, shares, ratings), then cut: no per-page byte joins.
    f_len = 8 * n_w if has_frac else np.zeros(b, np.int64)
    r_len = np.where(n_r > 0, rsize * n_w, 0)
    p_len = prefix.shape[1]
    ends = np.cumsum(p_len + f_len + r_len)
    starts = ends - (p_len + f_len + r_len)
    buf = np.empty(int(ends[-1]), np.uint8)
    buf[(starts[:, None] + np.arange(p_len)).ravel()] = prefix.ravel()
    if has_frac:
        buf[_runs(starts + p_len, f_len)] = np.frombuffer(fr.tobytes(), np.uint8)
    if r_len.any():
        keep = np.repeat(n_r > 0, n_w)  # a page with no rating stores none of its watched items' slots
        rb = np.frombuffer(rbytes, np.uint8).reshape(-1, rsize)[keep].ravel()
        buf[_runs(starts + p_len + f_len, r_len)] = rb
    raw = buf.tobytes()
    data = [raw[a:z] for a, z in zip(starts.tolist(), ends.tolist())]
    nr = n_r.tolist()
    return list(
        zip(
            [run_id] * b,
            [tick] * b,
            block.users.tolist(),
            [k] * b,
            n_w.tolist(),
            nr,
            [flags] * b,
            seq_i.tolist(),
            seq_w.tolist(),
            seq_r.tolist(),
            data,
        )
    )


def _runs(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Positions ``starts[i] .. starts[i] + lengths[i]`` of every run, concatenated."""
    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    offs = np.repeat(np.asarray(starts, np.int64) - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return offs + np.arange(total)


def item_tick_rows(run_id: int, tick: int, blocks: Iterable[PageBlock]) -> list[tuple]:
    """ItemTick rows (in :data:`ITEM_TICK_COLUMNS` order) of one tick's pages.

    ``marks`` holds one int8 per user shown (log order): 0 skipped, 1 watched
    and not rated, ``1 + r`` watched and rated ``r`` (an integer 1..126, as
    the shipped brains rate). A row whose ratings are not all such integers
    (possible in the page log: ``FLOAT_RATINGS``) marks its rated users 2 and
    appends their ratings as float64 (log order): its blob is then longer
    than ``impressions`` bytes. :func:`read_marks` reads both.
    """
    blocks = [bl for bl in blocks if bl.slates.size]
    if not blocks:
        return []
    items = np.concatenate([bl.slates.ravel() for bl in blocks])
    users = np.concatenate([np.repeat(bl.users, bl.slates.shape[1]) for bl in blocks]).astype("<i4")
    watched = np.concatenate([bl.watched.ravel() for bl in blocks])
    ratings = np.concatenate([bl.ratings.ravel() for bl in blocks])
    rated = watched & ~np.isnan(ratings)
    rv = np.where(rated, ratings, 0.0)
    with np.errstate(invalid="ignore"):  # whole arrays, no masks: a masked write costs more than the rest of this function
        rvi = rv.astype(np.int8)
    odd = (rvi != rv) | (rv > _MAX_MARK_RATING) | (rated & (rv < 1))  # a rating an int8 mark cannot hold
    marks = watched.astype(np.int8) + rvi
    if odd.any():
        marks[odd] = 2  # rare: rated, the value follows as float64 (below)
    order = np.argsort(items, kind="stable")  # per item, users in log order
    items, users, marks, rv = items[order], users[order], marks[order], rv[order]
    uniq, first, counts = np.unique(items, return_index=True, return_counts=True)
    ends = first + counts
    w = np.add.reduceat((marks > 0).astype(np.int64), first)
    nr = np.add.reduceat((marks >= 2).astype(np.int64), first)
    rs = np.add.reduceat(rv, first)
    ub, mb = users.tobytes(), marks.tobytes()
    rows = [
        (run_id, tick, it, n, ww, rr, s, ub[a * 4 : z * 4], mb[a:z])
        for it, n, ww, rr, s, a, z in zip(uniq.tolist(), counts.tolist(), w.tolist(), nr.tolist(), rs.tolist(), first.tolist(), ends.tolist())
    ]
    if odd.any():  # rare: the rows holding such a rating carry all their ratings as float64 instead
        rated, odd = rated[order], odd[order]
        for i in np.flatnonzero(np.add.reduceat(odd.astype(np.int64), first)).tolist():
            a, z = int(first[i]), int(ends[i])
            m = np.where(rated[a:z], 2, marks[a:z]).astype(np.int8)
            rows[i] = (*rows[i][:8], m.tobytes() + np.ascontiguousarray(rv[a:z][rated[a:z]], "<f8").tobytes())
    return rows


def read_marks(rows: Iterable[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """ItemTick ``(impressions, marks)`` rows as one array per user shown: (0 skipped / 1 watched / 2 rated, the rating or NaN).

    Concatenated in the order given (see :func:`item_tick_rows` for the layout).
    """
    rows = [(int(n), bytes(m)) for n, m in rows]
    raw = np.frombuffer(b"".join(m for _n, m in rows), np.int8)
    if raw.size == sum(n for n, _m in rows):  # every row inline (the rule for integer ratings)
        return np.minimum(raw, 2), np.where(raw >= 2, raw - 1.0, np.nan)
    state, value = [], []
    for n, m in rows:
        mk = np.frombuffer(m, np.int8, n)
        v = np.where(mk >= 2, mk - 1.0, np.nan)
        if len(m) > n:
            v[mk >= 2] = np.frombuffer(m, "<f8", offset=n)
        state.append(np.minimum(mk, 2))
        value.append(v)
    return np.concatenate(state), np.concatenate(value)


def split_batch(run_id: int, tick: int, ev: EventBatch) -> tuple[np.ndarray, list[tuple], list[tuple]]:
    """One tick's batch as stored: indices of the events kept as Event rows (their seq), Page rows and ItemTick rows."""
    keep = np.ones(len(ev), bool)
    pages: list[tuple] = []
    for bl in ev.pages:
        keep[bl.start : bl.start + bl.n_events] = False
        pages.extend(page_rows(run_id, tick, bl, bl.start))
    items = item_tick_rows(run_id, tick, ev.pages) if ev.pages else []
    return np.flatnonzero(keep), pages, items


# ------------------------------------------------------------------ reading
def decode(k: int, n_watched: int, n_rated: int, flags: int, data: bytes) -> tuple[tuple[int, ...], list[bool], tuple[float, ...], list[float]]:
    """A page blob as (items, watched flags, shares of the watched items, ratings of the watched items, NaN = none).

    Plain ``struct`` reads: a page is a few dozen bytes, where numpy's per-call overhead would dominate.
    """
    items = struct.unpack_from(f"<{k}i", data, 0)
    bits = data[4 * k : 4 * k + (k + 7) // 8]
    watched = [bool((bits[j >> 3] >> (7 - (j & 7))) & 1) for j in range(k)]  # numpy.packbits order: big-endian bits
    pos = 4 * k + (k + 7) // 8
    if flags & FRAC:
        frac = struct.unpack_from(f"<{n_watched}d", data, pos)
        pos += 8 * n_watched
    else:
        frac = (1.0,) * n_watched
    if n_rated == 0:
        ratings = [math.nan] * n_watched
    elif flags & FLOAT_RATINGS:
        ratings = list(struct.unpack_from(f"<{n_watched}d", data, pos))
    else:
        ratings = [float(r) if r else math.nan for r in struct.unpack_from(f"<{n_watched}b", data, pos)]
    return items, watched, frac, ratings


def expand(page_id: int, tick: int, user: int, k: int, n_watched: int, n_rated: int, flags: int, seq_i: int, seq_w: int, seq_r: int, data: bytes) -> list[Row]:
    """The events a Page row stands for, each as a :data:`Row`."""
    it, watched, fr, ratings = decode(k, n_watched, n_rated, flags, bytes(data))
    out: list[Row] = []
    base = PAGE_EVENT_ID_BASE + page_id * 512
    if flags & IMPRESSIONS:
        out.extend((seq_i + j, tick, user, _IMP, it[j], float(j), None, None, base + j) for j in range(k))
    n = 0
    wi = 0
    skips = bool(flags & SKIPS)
    wj: list[int] = []
    for j, w in enumerate(watched):
        if w:
            out.append((seq_w + n, tick, user, _WATCH, it[j], fr[wi], None, None, base + 128 + n))
            wj.append(j)
            wi += 1
            n += 1
        elif skips:
            out.append((seq_w + n, tick, user, _SKIP, it[j], float(j), None, None, base + 128 + n))
            n += 1
    if n_rated:
        m = 0
        for r, j in zip(ratings, wj):
            if r == r:
                out.append((seq_r + m, tick, user, _RATE, it[j], r, None, None, base + 384 + m))
                m += 1
    return out


def event_count(k: int, n_watched: int, n_rated: int, flags: int, types: set[int] | None = None) -> int:
    """How many events (of ``types``, default all) a Page row stands for: what :func:`expand` would return, without its blob."""
    n = 0
    if flags & IMPRESSIONS and (types is None or _IMP in types):
        n += k
    if types is None or _WATCH in types:
        n += n_watched
    if flags & SKIPS and (types is None or _SKIP in types):
        n += k - n_watched
    if types is None or _RATE in types:
        n += n_rated
    return n


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


def backfill_marks(engine: Any, run_ids: Iterable[int] | None = None, ticks_per_chunk: int = 64) -> int:
    """Rewrite the ItemTick ``marks`` of runs from their Page rows with :func:`item_tick_rows`; returns the rows rewritten.

    Used by the schema 6 -> 7 migration: ratings moved into ``marks`` (before,
    a rated user was marked 2 and the rating was only in the page). Only rows
    with ratings change; each run is one transaction, and running it again
    (an interrupted migration) writes the same marks.
    """
    from sqlalchemy import text

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


PAGE_SELECT = "id, tick, user_id, k, n_watched, n_rated, flags, seq_i, seq_w, seq_r, data"


def merge(event_rows: Iterable[tuple], page_rows: Iterable[tuple], types: set[int] | None = None, item: int | None = None) -> list[Row]:
    """Event rows ``(id, tick, user, type, item, value, text, payload, seq)`` and page rows (:data:`PAGE_SELECT`) in log order.

    Log order is ``(tick, seq)``; rows of logs written before the page log
    have no seq and keep their id order.
    """
    evs: list[Row] = [(i if s is None else s, t, u, ty, it, v, tx, pl, i) for i, t, u, ty, it, v, tx, pl, s in event_rows]
    want_page = types is None or bool(types & {_IMP, _WATCH, _SKIP, _RATE})
    pgs: list[Row] = []
    if want_page:
        for r in page_rows:
            pgs.extend(expand(*r))
    out = evs + pgs
    if types is not None:
        out = [r for r in out if r[3] in types]
    if item is not None:
        out = [r for r in out if r[4] == item]
    out.sort(key=lambda r: (r[1], r[0]))
    return out


def iter_log(con: Any, run_id: int, *, tick_min: int | None = None, tick_max: int | None = None, ticks_per_chunk: int = 4) -> Iterator[Row]:
    """A run's whole event log in order, pages expanded (reads a few ticks at a time)."""
    from sqlalchemy import text

    lo_hi = con.execute(text("SELECT min(tick), max(tick) FROM event WHERE run_id = :r"), {"r": run_id}).one()
    pg = con.execute(text("SELECT min(tick), max(tick) FROM page WHERE run_id = :r"), {"r": run_id}).one()
    los = [x for x in (lo_hi[0], pg[0]) if x is not None]
    his = [x for x in (lo_hi[1], pg[1]) if x is not None]
    if not los:
        return
    lo, hi = min(los), max(his)
    if tick_min is not None:
        lo = max(lo, tick_min)
    if tick_max is not None:
        hi = min(hi, tick_max)
    t = lo
    while t <= hi:
        z = min(hi, t + ticks_per_chunk - 1)
        p = {"r": run_id, "a": t, "z": z}
        evs = con.execute(
            text("SELECT id, tick, user_id, type, item_id, value, text, payload, seq FROM event WHERE run_id = :r AND tick BETWEEN :a AND :z ORDER BY id"), p
        ).all()
        pgs = con.execute(text(f"SELECT {PAGE_SELECT} FROM page WHERE run_id = :r AND tick BETWEEN :a AND :z ORDER BY id"), p).all()
        yield from merge(evs, pgs)
        t = z + 1


def log_tuples(con: Any, run_id: int) -> Iterator[tuple]:
    """``(tick, user_id, type, item_id, value, text, payload)`` of every event of a run, in log order (what the log held before pages were packed)."""
    for r in iter_log(con, run_id):
        yield r[1:8]


__all__ = [
    "ITEM_TICK_COLUMNS",
    "PAGE_COLUMNS",
    "PAGE_EVENT_ID_BASE",
    "PAGE_SELECT",
    "decode",
    "event_count",
    "expand",
    "backfill_marks",
    "item_tick_rows",
    "iter_log",
    "log_tuples",
    "merge",
    "page_blocks",
    "page_rows",
    "read_marks",
    "split_batch",
]


def user_log(
    con: Any,
    run_id: int,
    user_id: int,
    *,
    types: set[int] | None = None,
    tick_min: int | None = None,
    tick_max: int | None = None,
    ticks: Iterable[int] | None = None,
) -> list[Row]:
    """One user's events in log order, pages expanded (index ``(run_id, user_id, tick)`` of both tables); ``ticks`` limits it to those ticks."""
    from sqlalchemy import text

    cond = "run_id = :r AND user_id = :u" + (" AND tick >= :a" if tick_min is not None else "") + (" AND tick <= :z" if tick_max is not None else "")
    if ticks is not None:
        cond += " AND tick IN (" + ",".join(str(int(t)) for t in sorted(set(ticks))) + ")" if ticks else " AND 1 = 0"
    p = {"r": run_id, "u": user_id, "a": tick_min, "z": tick_max}
    ev_types = ""
    if types is not None:
        # type + 0: keep SQLite on the selective user index, not (run_id, type, tick) (see recworld.dashboard.queries._nx).
        ev_types = " AND type + 0 IN (" + ",".join(str(int(t)) for t in sorted(types)) + ")" if types else " AND 1 = 0"
    evs = con.execute(text(f"SELECT id, tick, user_id, type, item_id, value, text, payload, seq FROM event WHERE {cond}{ev_types} ORDER BY id"), p).all()
    pgs: list = []
    if types is None or types & {_IMP, _WATCH, _SKIP, _RATE}:
        pgs = con.execute(text(f"SELECT {PAGE_SELECT} FROM page WHERE {cond} ORDER BY id"), p).all()
    return merge(evs, pgs, types)
