"""The packed event log: a user's pages and session events of a tick in one row, expanded back on read.

A page shows k items and the user decides on each: logged one event per item
(IMPRESSION, WATCH/SKIP, RATE), pages are most of the event log, and a
session adds its SESSION_START/RETURN, LEAVE and CHURN events. Writing one
row per event, then one per page, was most of a logged world's time (the
database's cost is per row). The log stores instead one
:class:`~recworld.storage.models.UserTick` row per user and tick holding
that user's served pages (slate, watched bits, watched shares, ratings) and
session events, plus one :class:`~recworld.storage.models.ItemTick` row per
item shown in a tick (counts, and who was shown it); every other event
(posts, chats, searches, conversation turns...) stays an ``Event`` row. The
readers expand rows back into exactly the events the world emitted, in the
same order (``seq``: the position in the tick's event stream, which
``Event`` rows carry too).

Blob layout of ``UserTick.data`` (little-endian): ``pages`` page records,
then event records up to the end.

- A page record: :data:`PAGE_HEAD` (k, n_watched, n_rated, flags, seq of its
  first IMPRESSION, WATCH/SKIP and RATE event), then items ``int32[k]``;
  watched bits (``numpy.packbits``, ``ceil(k/8)`` bytes); the watched items'
  shares ``float64[n_watched]`` when ``flags & FRAC`` (else every watched
  share is 1.0); when ``n_rated > 0``, one rating per watched item: ``int8``
  (0 = not rated) or, with ``flags & FLOAT_RATINGS``, ``float64`` (NaN = not
  rated). Schema 5-7 logs stored each page (without its head) as a ``page``
  row; the 7 -> 8 migration packs them into UserTick rows (:mod:`recworld.storage.legacy`).
- An event record: :data:`EVENT_HEAD` (seq, type, item or -1, value or NaN,
  byte lengths of text and payload or -1 for none), then the UTF-8 text and
  payload JSON.

``ItemTick.marks`` (schema 7) holds per user shown what they did with the
item and their rating (see :func:`item_tick_rows`), so an item page reads
its watchers' ratings without decoding a page.

The world's process lays out the page records and groups the ItemTick rows
with compiled kernels (:mod:`recworld.storage.pagepack`); the writer
finishes the rows with numpy alone.

UserTick's per-user index is keyed by a span of :data:`SPAN_TICKS` ticks
first, ``(run_id, span, user_id, tick, <counts>)``: a tick's inserts stay in
the current span's part of the index, so writing does not slow down as the
log grows, and a user's rows are found with one seek per span
(:func:`user_spans`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from recworld.events import EventBatch, EventType, PageBlock

IMPRESSIONS = 1  # IMPRESSION events were logged for the page
SKIPS = 2  # SKIP events were logged
FRAC = 4  # watched shares stored (else all 1.0)
FLOAT_RATINGS = 8  # ratings stored as float64 (else int8)

_IMP, _WATCH, _SKIP, _RATE = int(EventType.IMPRESSION), int(EventType.WATCH), int(EventType.SKIP), int(EventType.RATE)
_START, _RETURN, _LEAVE, _CHURN = int(EventType.SESSION_START), int(EventType.RETURN), int(EventType.LEAVE), int(EventType.CHURN)
#: The per-item events of a served page.
PAGE_TYPES = frozenset({_IMP, _WATCH, _SKIP, _RATE})
#: Session events, stored in their user's UserTick row (never as Event rows), with a count column each.
SESSION_TYPES = (_START, _RETURN, _LEAVE, _CHURN)
#: Every event type a UserTick row can hold.
PACKED_TYPES = PAGE_TYPES | frozenset(SESSION_TYPES)
#: Packed events get ids above this (row id x 65,536 + index in the row), apart from Event row ids.
PAGE_EVENT_ID_BASE = 1 << 40
_ROW_ID_SHIFT = 16
PAGE_HEAD = struct.Struct("<HHHBiii")  # k, n_watched, n_rated, flags, seq_i, seq_w, seq_r
EVENT_HEAD = struct.Struct("<qBidii")  # seq, type, item (-1: none), value (NaN: none), text bytes, payload bytes (-1: none)
_HEAD_DTYPE = np.dtype([("k", "<u2"), ("w", "<u2"), ("r", "<u2"), ("f", "u1"), ("si", "<i4"), ("sw", "<i4"), ("sr", "<i4")])  # PAGE_HEAD as an array
_EVENT_DTYPE = np.dtype([("s", "<i8"), ("t", "u1"), ("i", "<i4"), ("v", "<f8"), ("lt", "<i4"), ("lp", "<i4")])  # EVENT_HEAD as an array
USER_TICK_COLUMNS = ("run_id", "tick", "user_id", "pages", "shown", "watched", "rated", "flags", "starts", "returns", "leaves", "churns", "span", "data")
#: Ticks per span: UserTick's per-user index is keyed ``(run_id, span, user_id, tick)`` (see :func:`user_spans`).
SPAN_TICKS = 8
#: The columns :func:`expand` (through :func:`merge`) reads.
USER_TICK_SELECT = "id, tick, user_id, pages, data"
ITEM_TICK_COLUMNS = ("run_id", "tick", "item_id", "impressions", "watches", "ratings", "rating_sum", "users", "marks")

# An event as readers get it: (seq, tick, user, type, item, value, text, payload, id)
Row = tuple[int, int, int, int, int | None, float | None, str | None, str | None, int]


def wants_packed(types: set[int] | None) -> bool:
    """Whether events of ``types`` (None: all) can be in UserTick rows."""
    return types is None or bool(types & PACKED_TYPES)


class _Records:
    """Byte records (pages or events) of one tick with their users, ready to be grouped into UserTick rows."""

    __slots__ = ("buf", "lens", "users", "shown", "watched", "rated", "flags", "types")

    def __init__(self, buf: np.ndarray, lens: np.ndarray, users: np.ndarray, **cols: np.ndarray) -> None:
        self.buf, self.lens, self.users = buf, np.asarray(lens, np.int64), np.asarray(users, np.int64)
        n = self.users.size
        zero = np.zeros(n, np.int64)
        self.shown, self.watched, self.rated, self.flags = (np.asarray(cols.get(c, zero), np.int64) for c in ("shown", "watched", "rated", "flags"))
        self.types = np.asarray(cols.get("types", zero), np.int64)

    @staticmethod
    def concat(parts: list[_Records]) -> _Records:
        if not parts:
            return _Records(np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64))
        if len(parts) == 1:
            return parts[0]
        cat = {c: np.concatenate([getattr(p, c) for p in parts]) for c in ("shown", "watched", "rated", "flags", "types")}
        return _Records(np.concatenate([p.buf for p in parts]), np.concatenate([p.lens for p in parts]), np.concatenate([p.users for p in parts]), **cat)


def _page_records(block: PageBlock, start: int) -> _Records | None:
    """The page records (head and data) of one block whose first event is at ``start`` of its tick, in one buffer."""
    # Imported here: only the world's process packs pages, and the writer process is kept free of numba's import.
    from recworld.storage.pagepack import pack_pages

    b, k = block.slates.shape
    if b == 0:
        return None
    buf, lens, n_w, n_r, flags = pack_pages(block.slates, block.watched, block.frac, block.ratings, start, block.impressions, block.skips)
    return _Records(buf, lens, block.users, shown=np.full(b, k), watched=n_w, rated=n_r, flags=np.full(b, flags))


def _event_records(
    users: np.ndarray, seqs: np.ndarray, types: np.ndarray, items: np.ndarray, values: np.ndarray, texts: dict[int, str], payloads: dict[int, str]
) -> _Records:
    """Event records of events given column-wise: items -1 and values NaN where none; texts and payload JSON by position (sparse)."""
    n = len(users)
    head = np.empty(n, _EVENT_DTYPE)
    head["s"], head["t"], head["i"], head["v"] = seqs, types, items, values
    # An event's tail is its text, then its payload: pieces coded into a table of distinct strings (a tick's LEAVE
    # payloads take a handful of values), each encoded once, and every event's bytes gathered by numpy.
    table: dict[str, int] = {}
    ev_t = np.fromiter(texts.keys(), np.int64, len(texts))
    ev_p = np.fromiter(payloads.keys(), np.int64, len(payloads))
    code_t = np.array([table.setdefault(x, len(table)) for x in texts.values()], np.int64)
    code_p = np.array([table.setdefault(x, len(table)) for x in payloads.values()], np.int64)
    enc = [x.encode() for x in table]
    size = np.array([len(b) for b in enc], np.int64)
    lt, lp = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    lt[ev_t], lp[ev_p] = size[code_t], size[code_p]
    head["lt"], head["lp"] = lt, lp
    hs = EVENT_HEAD.size
    lens = hs + np.maximum(lt, 0) + np.maximum(lp, 0)
    starts = np.cumsum(lens) - lens
    buf = np.empty(int(lens.sum()), np.uint8)
    buf[(starts[:, None] + np.arange(hs)).ravel()] = head.view(np.uint8)
    if enc:
        code = np.concatenate([code_t, code_p])
        at = np.concatenate([starts[ev_t] + hs, starts[ev_p] + hs + np.maximum(lt[ev_p], 0)])
        strings = np.frombuffer(b"".join(enc), np.uint8)
        buf[_runs(at, size[code])] = strings[_runs((np.cumsum(size) - size)[code], size[code])]
    return _Records(buf, lens, users, types=types)


def _sparse(values: Iterable[str | None]) -> dict[int, str]:
    return {j: v for j, v in enumerate(values) if v is not None}


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """``argsort(keys, kind="stable")``, by radix sort when the keys fit 16 bits (most catalogs and populations): several times faster."""
    if keys.size and 0 <= keys.min() and keys.max() < 1 << 16:
        keys = keys.astype(np.uint16)
    return np.argsort(keys, kind="stable")


def _group(run_id: int, tick: int, pages: _Records, events: _Records) -> list[tuple]:
    """UserTick rows (in :data:`USER_TICK_COLUMNS` order) of one tick's page and event records, one per user (ascending), records in the order given."""
    n_p = pages.users.size
    users = np.concatenate([pages.users, events.users])
    if users.size == 0:
        return []
    lens = np.concatenate([pages.lens, events.lens])
    ends = np.cumsum(lens)
    key = users * 2
    key[n_p:] += 1
    order = _stable_order(key)  # per user: pages, then events, each in the given order
    raw = np.concatenate([pages.buf, events.buf]).tobytes()
    # The records in user order as one byte string (a slice each, one join), then one slice per user.
    grouped = b"".join([raw[a:z] for a, z in zip((ends - lens)[order].tolist(), ends[order].tolist())])
    su = users[order]
    head = np.flatnonzero(np.concatenate(([True], su[1:] != su[:-1])))
    uniq = su[head]
    u = uniq.size
    inv = np.empty(users.size, np.int64)
    inv[order] = np.repeat(np.arange(u), np.diff(np.append(head, su.size)))
    ip, ie = inv[:n_p], inv[n_p:]

    def per_user(w: np.ndarray, idx: np.ndarray = ip) -> list[int]:
        return np.bincount(idx, weights=w, minlength=u).astype(np.int64).tolist()

    flags = np.zeros(u, np.int64)
    np.bitwise_or.at(flags, ip, pages.flags)
    sess = [np.bincount(ie[events.types == t], minlength=u).tolist() for t in SESSION_TYPES]
    first_byte = np.cumsum(lens[order]) - lens[order]  # each record's first byte in ``grouped``
    cut = first_byte[head].tolist() + [len(grouped)]
    return list(
        zip(
            [run_id] * u,
            [tick] * u,
            uniq.tolist(),
            np.bincount(ip, minlength=u).tolist(),
            per_user(pages.shown),
            per_user(pages.watched),
            per_user(pages.rated),
            flags.tolist(),
            *sess,
            [tick // SPAN_TICKS] * u,
            [grouped[a:z] for a, z in zip(cut[:-1], cut[1:])],
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
    # Imported here: only the world's process builds these rows (see _page_records).
    from recworld.storage.pagepack import impressions_by_item

    blocks = [bl for bl in blocks if bl.slates.size]
    if not blocks:
        return []
    items = np.concatenate([bl.slates.ravel() for bl in blocks])
    users = np.concatenate([np.repeat(bl.users, bl.slates.shape[1]) for bl in blocks])
    watched = np.concatenate([bl.watched.ravel() for bl in blocks])
    ratings = np.concatenate([bl.ratings.ravel() for bl in blocks])
    uniq, first, counts, w, nr, users, marks, rv, odd = impressions_by_item(items, users, watched, ratings)
    ends = first + counts
    rs = np.add.reduceat(rv, first)
    ub, mb = users.tobytes(), marks.tobytes()
    rows = [
        (run_id, tick, it, n, ww, rr, s, ub[a * 4 : z * 4], mb[a:z])
        for it, n, ww, rr, s, a, z in zip(uniq.tolist(), counts.tolist(), w.tolist(), nr.tolist(), rs.tolist(), first.tolist(), ends.tolist())
    ]
    if odd.any():  # rare: the rows holding such a rating carry all their ratings as float64 instead
        rated = marks >= 2
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


@dataclass(frozen=True)
class LoggedTick:
    """One tick's events as they wait to be written: the events that are not a page's per-item events, the pages' records and the ItemTick rows.

    Made in the world's process when the tick ends (:meth:`of`), so that a
    writer process gets about a third of the batch's bytes and the two
    processes share the work; :func:`split_batch` finishes the rows.

    Attributes:
        events: the other events, in log order.
        seq: each one's place in the tick's event stream.
        pages: the page records (head and data) of the tick's pages.
        items: the tick's ItemTick rows.
    """

    events: EventBatch
    seq: np.ndarray
    pages: _Records
    items: list[tuple]

    @classmethod
    def of(cls, run_id: int, tick: int, ev: EventBatch) -> LoggedTick:
        keep = np.ones(len(ev), bool)
        for bl in ev.pages:
            keep[bl.start : bl.start + bl.n_events] = False
        idx = np.flatnonzero(keep)
        pages = _Records.concat([r for bl in ev.pages if (r := _page_records(bl, bl.start)) is not None])
        return cls(ev.take(idx), idx, pages, item_tick_rows(run_id, tick, ev.pages) if ev.pages else [])


def split_batch(run_id: int, tick: int, lt: LoggedTick, stored: dict[int, str] | None = None) -> tuple[np.ndarray, list[tuple], list[tuple]]:
    """One tick as stored: indices (in ``lt.events``) of the events kept as Event rows, UserTick rows and ItemTick rows.

    ``stored``: the events' payloads as stored (``lt.events.stored_payloads()``), when the caller has them already.
    """
    ev = lt.events
    stored = ev.stored_payloads() if stored is None else stored
    sess = np.isin(ev.type, SESSION_TYPES)
    sidx = np.flatnonzero(sess)
    texts, payloads = ev.text, stored
    if sidx.size < len(ev):  # other events too (social, search...): the session events' texts and payloads by their new position
        pos = ev.positions(sidx)
        texts = {pos[i]: t for i, t in ev.text.items() if pos[i] >= 0}
        payloads = {pos[i]: js for i, js in stored.items() if pos[i] >= 0}
    events = _event_records(ev.user[sidx], lt.seq[sidx], ev.type[sidx], ev.item[sidx], ev.value[sidx], texts, payloads)
    return np.flatnonzero(~sess), _group(run_id, tick, lt.pages, events), lt.items


# ------------------------------------------------------------------ reading
def _page_len(k: int, n_watched: int, n_rated: int, flags: int) -> int:
    """Bytes of a page's data after its head (see the module's layout)."""
    n = 4 * k + (k + 7) // 8
    if flags & FRAC:
        n += 8 * n_watched
    if n_rated:
        n += n_watched * (8 if flags & FLOAT_RATINGS else 1)
    return n


def decode(k: int, n_watched: int, n_rated: int, flags: int, data: bytes, pos: int = 0) -> tuple[tuple[int, ...], list[bool], tuple[float, ...], list[float]]:
    """A page's data (at ``pos`` of ``data``) as (items, watched flags, shares of the watched items, ratings of the watched items, NaN = none).

    Plain ``struct`` reads: a page is a few dozen bytes, where numpy's per-call overhead would dominate.
    """
    items = struct.unpack_from(f"<{k}i", data, pos)
    pos += 4 * k
    bits = data[pos : pos + (k + 7) // 8]
    watched = [bool((bits[j >> 3] >> (7 - (j & 7))) & 1) for j in range(k)]  # numpy.packbits order: big-endian bits
    pos += (k + 7) // 8
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


def records(pages: int, data: bytes) -> tuple[list[tuple], list[tuple]]:
    """A UserTick blob as its records: pages ``(k, n_watched, n_rated, flags, seq_i, seq_w, seq_r, data)`` (``data`` as a schema 5-7 page row held it) and events ``(seq, type, item, value, text, payload)``."""
    data = bytes(data)
    out_p: list[tuple] = []
    pos = 0
    for _ in range(pages):
        head = PAGE_HEAD.unpack_from(data, pos)
        pos += PAGE_HEAD.size
        n = _page_len(*head[:4])
        out_p.append((*head, data[pos : pos + n]))
        pos += n
    out_e: list[tuple] = []
    end = len(data)
    while pos < end:
        seq, ty, item, value, lt, lp = EVENT_HEAD.unpack_from(data, pos)
        pos += EVENT_HEAD.size
        text = payload = None
        if lt >= 0:
            text = data[pos : pos + lt].decode()
            pos += lt
        if lp >= 0:
            payload = data[pos : pos + lp].decode()
            pos += lp
        out_e.append((seq, ty, None if item < 0 else item, None if value != value else value, text, payload))
    return out_p, out_e


def expand(row_id: int, tick: int, user: int, pages: int, data: bytes) -> list[Row]:
    """The events a UserTick row (:data:`USER_TICK_SELECT`) stands for, each as a :data:`Row`, pages first."""
    out: list[Row] = []
    base = PAGE_EVENT_ID_BASE + (row_id << _ROW_ID_SHIFT)
    page_recs, event_recs = records(pages, data)
    for k, n_watched, n_rated, flags, seq_i, seq_w, seq_r, pdata in page_recs:
        it, watched, fr, ratings = decode(k, n_watched, n_rated, flags, pdata)
        if flags & IMPRESSIONS:
            b0 = base + len(out)
            out.extend((seq_i + j, tick, user, _IMP, it[j], float(j), None, None, b0 + j) for j in range(k))
        n = 0
        wi = 0
        skips = bool(flags & SKIPS)
        wj: list[int] = []
        for j, w in enumerate(watched):
            if w:
                out.append((seq_w + n, tick, user, _WATCH, it[j], fr[wi], None, None, base + len(out)))
                wj.append(j)
                wi += 1
                n += 1
            elif skips:
                out.append((seq_w + n, tick, user, _SKIP, it[j], float(j), None, None, base + len(out)))
                n += 1
        if n_rated:
            m = 0
            for r, j in zip(ratings, wj):
                if r == r:
                    out.append((seq_r + m, tick, user, _RATE, it[j], r, None, None, base + len(out)))
                    m += 1
    b0 = base + len(out)
    out.extend((seq, tick, user, ty, item, value, text, payload, b0 + j) for j, (seq, ty, item, value, text, payload) in enumerate(event_recs))
    return out


#: The count columns of a UserTick row, as :func:`event_count` takes them.
USER_TICK_COUNTS = ("shown", "watched", "rated", "flags", "starts", "returns", "leaves", "churns")


def event_count(shown: int, watched: int, rated: int, flags: int, starts: int, returns: int, leaves: int, churns: int, types: set[int] | None = None) -> int:
    """How many events (of ``types``, default all) a UserTick row stands for (:data:`USER_TICK_COUNTS`): what :func:`expand` returns, without its blob."""
    n = 0
    if flags & IMPRESSIONS and (types is None or _IMP in types):
        n += shown
    if types is None or _WATCH in types:
        n += watched
    if flags & SKIPS and (types is None or _SKIP in types):
        n += shown - watched
    if types is None or _RATE in types:
        n += rated
    for t, c in zip(SESSION_TYPES, (starts, returns, leaves, churns)):
        if types is None or t in types:
            n += c
    return n


def session_counts(starts: int, returns: int, leaves: int, churns: int) -> dict[int, int]:
    """Session event counts by type from a UserTick row's (or their sums') count columns."""
    return {t: int(c or 0) for t, c in zip(SESSION_TYPES, (starts, returns, leaves, churns)) if c}


def merge(event_rows: Iterable[tuple], user_tick_rows: Iterable[tuple], types: set[int] | None = None, item: int | None = None) -> list[Row]:
    """Event rows ``(id, tick, user, type, item, value, text, payload, seq)`` and UserTick rows (:data:`USER_TICK_SELECT`) in log order.

    Log order is ``(tick, seq)``; rows of logs written before the page log
    have no seq and keep their id order.
    """
    evs: list[Row] = [(i if s is None else s, t, u, ty, it, v, tx, pl, i) for i, t, u, ty, it, v, tx, pl, s in event_rows]
    packed: list[Row] = []
    if wants_packed(types):
        for r in user_tick_rows:
            packed.extend(expand(*r))
    out = evs + packed
    if types is not None:
        out = [r for r in out if r[3] in types]
    if item is not None:
        out = [r for r in out if r[4] == item]
    out.sort(key=lambda r: (r[1], r[0]))
    return out


_EVENT_SELECT = "SELECT id, tick, user_id, type, item_id, value, text, payload, seq FROM event"


def _min_max_tick(con: Any, table: str, run_id: int) -> tuple[int | None, int | None]:
    # Two queries: SQLite answers min() or max() alone with one index seek, but both in one query with a scan.
    from sqlalchemy import text

    p = {"r": run_id}
    return tuple(con.execute(text(f"SELECT {f}(tick) FROM {table} WHERE run_id = :r"), p).scalar() for f in ("min", "max"))  # type: ignore[return-value]


def tick_bounds(con: Any, run_id: int) -> tuple[int, int] | None:
    """The first and last tick a run logged anything (Event and UserTick rows), or None."""

    b = [_min_max_tick(con, t, run_id) for t in ("event", "usertick")]
    los = [x[0] for x in b if x[0] is not None]
    if not los:
        return None
    return min(los), max(x[1] for x in b if x[1] is not None)


def tick_rows(con: Any, run_id: int, a: int, z: int) -> list:
    """A run's UserTick rows (:data:`USER_TICK_SELECT`) of ticks ``a .. z``, for :func:`merge`."""
    from sqlalchemy import text

    return con.execute(
        text(f"SELECT {USER_TICK_SELECT} FROM usertick WHERE run_id = :r AND tick BETWEEN :a AND :z ORDER BY id"), {"r": run_id, "a": a, "z": z}
    ).all()


def _tick_log(con: Any, run_id: int, a: int, z: int) -> list[Row]:
    """A run's events of ticks ``a .. z`` in log order."""
    from sqlalchemy import text

    evs = con.execute(text(f"{_EVENT_SELECT} WHERE run_id = :r AND tick BETWEEN :a AND :z ORDER BY id"), {"r": run_id, "a": a, "z": z}).all()
    return merge(evs, tick_rows(con, run_id, a, z))


def iter_log(con: Any, run_id: int, *, tick_min: int | None = None, tick_max: int | None = None, ticks_per_chunk: int = 4) -> Iterator[Row]:
    """A run's whole event log in order, packed rows expanded (reads a few ticks at a time)."""
    bounds = tick_bounds(con, run_id)
    if bounds is None:
        return
    lo, hi = bounds
    if tick_min is not None:
        lo = max(lo, tick_min)
    if tick_max is not None:
        hi = min(hi, tick_max)
    t = lo
    while t <= hi:
        z = min(hi, t + ticks_per_chunk - 1)
        yield from _tick_log(con, run_id, t, z)
        t = z + 1


def log_tuples(con: Any, run_id: int) -> Iterator[tuple]:
    """``(tick, user_id, type, item_id, value, text, payload)`` of every event of a run, in log order (what the log held before pages were packed)."""
    for r in iter_log(con, run_id):
        yield r[1:8]


#: Above this many spans a user's rows are looked up without them (one scan of the run's part of the index).
_MAX_SPANS = 4_096


def user_spans(con: Any, run_id: int, *, tick_min: int | None = None, tick_max: int | None = None, ticks: Iterable[int] | None = None) -> list[int] | None:
    """The spans (``tick // SPAN_TICKS``) a user's UserTick rows of these ticks can be in, for the per-user index; None: do not restrict.

    UserTick's per-user index is keyed ``(run_id, span, user_id, tick)``, so
    a user's rows are found with one seek per span (``span IN (...)``); the
    run's first and last tick bound the spans when no ticks are given.
    """

    if ticks is not None:
        return sorted({int(t) // SPAN_TICKS for t in ticks})
    if tick_min is None or tick_max is None:
        lo, hi = _min_max_tick(con, "usertick", run_id)
        if lo is None:
            return []
        tick_min = lo if tick_min is None else max(tick_min, lo)
        tick_max = hi if tick_max is None else min(tick_max, hi)
    n = tick_max // SPAN_TICKS - tick_min // SPAN_TICKS + 1
    return None if n > _MAX_SPANS else list(range(tick_min // SPAN_TICKS, tick_max // SPAN_TICKS + 1)) if n > 0 else []


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
    """One user's events in log order, packed rows expanded (index ``(run_id, user_id, tick)`` of both tables); ``ticks`` limits it to those ticks."""
    from sqlalchemy import text

    cond = "run_id = :r AND user_id = :u" + (" AND tick >= :a" if tick_min is not None else "") + (" AND tick <= :z" if tick_max is not None else "")
    if ticks is not None:
        cond += " AND tick IN (" + ",".join(str(int(t)) for t in sorted(set(ticks))) + ")" if ticks else " AND 1 = 0"
    p = {"r": run_id, "u": user_id, "a": tick_min, "z": tick_max}
    ev_types = ""
    if types is not None:
        # type + 0: keep SQLite on the selective user index, not (run_id, type, tick) (see recworld.dashboard.queries._nx).
        ev_types = " AND type + 0 IN (" + ",".join(str(int(t)) for t in sorted(types)) + ")" if types else " AND 1 = 0"
    evs = con.execute(text(f"{_EVENT_SELECT} WHERE {cond}{ev_types} ORDER BY id"), p).all()
    ut: list = []
    if wants_packed(types):
        spans = user_spans(con, run_id, tick_min=tick_min, tick_max=tick_max, ticks=ticks)
        if spans is None or spans:
            in_spans = "" if spans is None else " AND span IN (" + ",".join(str(x) for x in spans) + ")"
            ut = con.execute(text(f"SELECT {USER_TICK_SELECT} FROM usertick WHERE {cond}{in_spans} ORDER BY id"), p).all()
    return merge(evs, ut, types)


__all__ = [
    "ITEM_TICK_COLUMNS",
    "LoggedTick",
    "PACKED_TYPES",
    "PAGE_EVENT_ID_BASE",
    "PAGE_TYPES",
    "SESSION_TYPES",
    "USER_TICK_COLUMNS",
    "USER_TICK_COUNTS",
    "USER_TICK_SELECT",
    "SPAN_TICKS",
    "decode",
    "event_count",
    "expand",
    "item_tick_rows",
    "iter_log",
    "log_tuples",
    "merge",
    "read_marks",
    "records",
    "session_counts",
    "split_batch",
    "tick_bounds",
    "tick_rows",
    "user_log",
    "user_spans",
    "wants_packed",
]
