"""Per-tick summaries of the event log: share cascades and leave reasons, counted when a tick is written.

The run overview shows the run's share cascades (sizes, depths) and why
sessions ended. Read from the log, both are whole-run scans: every POST
payload parsed, every LEAVE row grouped, which grows with the log (seconds
at ten million events). The recorder instead writes, with each tick, a few
:class:`~recworld.storage.models.TickSummary` rows counting that tick's
POST events per cascade and LEAVE events per reason, from the same stored
payload text the Event rows get; readers sum those rows in SQL. Databases
written before schema 6 are backfilled from their Event rows by the same
function (:func:`backfill`), so every run has them. (LEAVE events are packed
in UserTick rows since schema 8; the backfill reads them there too.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from recworld.events import EventBatch, EventType
from recworld.payloads import LeavePayload, PostPayload
from recworld.storage.bulk import insert_rows

SUMMARY_COLUMNS = ("run_id", "tick", "kind", "key", "n", "depth")
CASCADE, POST, LEAVE = "cascade", "post", "leave"
POST_TYPE, LEAVE_TYPE = int(EventType.POST), int(EventType.LEAVE)
#: Event types the summaries count.
SUMMARY_TYPES = (POST_TYPE, LEAVE_TYPE)
UNKNOWN_REASON = "unknown"


def summary_rows(run_id: int, events: Iterable[tuple]) -> list[tuple]:
    """TickSummary rows (in :data:`SUMMARY_COLUMNS` order) of ``(tick, type, payload JSON[, n])`` events; other types are ignored.

    Args:
        run_id: the run.
        events: the events as stored (``Event.tick``, ``Event.type``,
            ``Event.payload``), any order; a fourth element ``n`` stands for
            ``n`` such events (the recorder groups a tick's LEAVE events by payload).
    """
    counts: dict[tuple[int, str, str], list[int]] = {}
    leave_memo: dict[str | None, str] = {}  # LEAVE payloads take a handful of distinct values

    def bump(tick: int, kind: str, key: str, depth: int = 0, n: int = 1) -> None:
        c = counts.get((tick, kind, key))
        if c is None:
            counts[(tick, kind, key)] = [n, depth]
        else:
            c[0] += n
            c[1] = max(c[1], depth)

    for ev in events:
        tick, typ, raw = int(ev[0]), int(ev[1]), ev[2]
        n = int(ev[3]) if len(ev) > 3 else 1
        if typ == POST_TYPE:
            bump(tick, POST, "", n=n)
            p = PostPayload.read(raw)
            if p is not None:
                bump(tick, CASCADE, str(p.cascade), int(p.depth), n=n)
        elif typ == LEAVE_TYPE:
            reason = leave_memo.get(raw)
            if reason is None:
                lp = LeavePayload.read(raw)
                reason = leave_memo[raw] = UNKNOWN_REASON if lp is None else lp.reason
            bump(tick, LEAVE, reason, n=n)
    return [(run_id, t, kind, key, n, d) for (t, kind, key), (n, d) in sorted(counts.items())]


def batch_summary_input(tick: int, ev: EventBatch, stored: dict[int, str] | None = None) -> list[tuple]:
    """A tick's POST and LEAVE events as :func:`summary_rows` takes them, one per distinct (type, stored payload) with its count.

    ``stored``: ``ev.stored_payloads()``, when the caller has it already.
    """
    stored = ev.stored_payloads() if stored is None else stored
    types = ev.type.tolist()
    counts = Counter((types[i], stored.get(i)) for i in np.flatnonzero(np.isin(ev.type, SUMMARY_TYPES)).tolist())
    return [(tick, t, raw, n) for (t, raw), n in counts.items()]


def backfill(engine: Engine, run_ids: Iterable[int] | None = None, chunk: int = 50_000) -> int:
    """(Re)write the TickSummary rows of runs from their Event rows; returns the rows written.

    Used by the schema 5 -> 6 migration for runs written before the recorder
    wrote summaries. Each run is one transaction that first deletes the run's
    summary rows, so running it again (an interrupted migration) is harmless.
    """
    from recworld.storage.models import Event, Run, TickSummary

    with engine.connect() as con:
        ids = list(run_ids) if run_ids is not None else [int(r) for (r,) in con.execute(select(Run.id).order_by(Run.id))]
    written = 0
    for run_id in ids:
        with engine.begin() as con:
            con.execute(delete(TickSummary).where(TickSummary.run_id == run_id))
            rows = summary_rows(run_id, _events(con, Event, run_id))
            insert_rows(con, "ticksummary", SUMMARY_COLUMNS, rows, chunk)
            written += len(rows)
    return written


def _events(con: Connection, event: type, run_id: int) -> Iterable[tuple[int, int, str | None]]:
    # Index (run_id, type, tick): only the run's POST and LEAVE rows are read; then the LEAVE events packed in
    # UserTick rows (schema 8; none in a database being migrated from schema 5), only the rows that hold one.
    from recworld.storage.models import UserTick
    from recworld.storage.pagelog import records

    q = select(event.tick, event.type, event.payload).where(event.run_id == run_id, event.type.in_(SUMMARY_TYPES))
    yield from con.execute(q.execution_options(yield_per=20_000))
    u = UserTick
    q = select(u.tick, u.pages, u.data).where(u.run_id == run_id, u.leaves > 0)
    for tick, pages, data in con.execute(q.execution_options(yield_per=20_000)):
        for _seq, ty, _item, _value, _text, payload in records(pages, data)[1]:
            if ty == LEAVE_TYPE:
                yield tick, ty, payload


__all__ = ["CASCADE", "LEAVE", "POST", "SUMMARY_COLUMNS", "SUMMARY_TYPES", "UNKNOWN_REASON", "backfill", "batch_summary_input", "summary_rows"]
