"""Export a run's data (read from the run database, never from a live world).

- :func:`export_metrics`: per-tick metrics as CSV (one row per tick).
- :func:`export_events`: the event log as CSV (streamed; type names, JSON payloads;
  served pages expanded into their IMPRESSION/WATCH/SKIP/RATE events).
- :func:`export_conversations`: chats and user↔recommender exchanges as JSONL
  (:func:`conversation_records`: the conversations with the platform's agent alone).

Conversations come in two kinds of records, one JSON object a line, in event order:

- ``{"type": "chat", ...}``: a chat between two users, its messages grouped
  into one conversation (by the chat's ``conversation`` payload id, else by
  the pair of users and the tick), with the item they talked about.
- ``{"type": "exchange", ...}``: a user↔recommender exchange: the page the
  user was shown when they gave a reflective instruction (titles from the
  Item table, which items they watched), the feeling they stated on that
  page, the instruction, and the next page the recommender served them.
- ``{"type": "crs", ...}``: a conversation with the platform's conversational
  agent (training data for conversational models): ``conversation`` (id),
  ``user_id``, ``tick``, ``agent``, ``messages`` (each ``role`` ``user`` or
  ``agent``, ``text``, ``act``, ``attribute``/``value`` when asked or
  answered, ``items``: mentions as ``{"item_id", "title"}``, ``by``: ``llm``
  or ``template``), the hidden ``intent`` (``mode``, ``target`` as
  ``{"item_id", "title"}`` or null, ``reference`` item ids), ``outcome``,
  ``accepted`` (mentions), ``success_turn`` and ``errors``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from recworld.errors import ConfigError
from recworld.events import EventType
from recworld.kpis import TICK_KPIS
from recworld.payloads import AuthoredPayload, ChatPayload, ConversationEndPayload, TurnPayload
from recworld.storage.models import Event, Item, Run
from recworld.storage.pagelog import iter_log, user_log

_PAGE_TYPES = (int(EventType.WATCH), int(EventType.SKIP))
#: Columns of the per-tick metrics CSV (the registry's per-tick KPIs).
TICK_COLUMNS = ["tick", *TICK_KPIS]


def _slate_size(run: Any) -> int:
    try:
        cfg = json.loads(run.config_json or "{}")
    except ValueError:
        cfg = {}
    k = int(((cfg.get("world") or {}).get("slate_size")) or 10)
    return max(1, min(k, run.n_items or k))


def _require_run(con: Any, run_id: int) -> Any:
    run = con.execute(select(Run).where(Run.id == run_id)).first()
    if run is None:
        raise ConfigError(f"no run with id {run_id} in this database; see `recworld runs`")
    return run


def csv_text(rows: Iterable[dict[str, Any]], columns: list[str]) -> str:
    """Rows as CSV text with a header (missing values as empty cells)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def export_metrics(engine: Engine, run_id: int, out_path: str | Path) -> int:
    """Write run ``run_id``'s per-tick metrics to ``out_path`` (CSV); returns the number of ticks.

    Raises:
        ConfigError: there is no run ``run_id`` in the database.
    """
    from recworld.storage.queries import tick_rows

    with engine.connect() as con:
        _require_run(con, run_id)
    rows = tick_rows(engine, run_id)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(csv_text(rows, TICK_COLUMNS), encoding="utf-8")
    return len(rows)


EVENT_COLUMNS = ["tick", "user_id", "type", "item_id", "value", "text", "payload"]


def export_events(engine: Engine, run_id: int, out_path: str | Path, chunk: int = 50_000) -> int:
    """Stream run ``run_id``'s event log to ``out_path`` (CSV, event order, type names); returns the row count.

    Raises:
        ConfigError: there is no run ``run_id`` in the database.
    """
    names = {int(t): t.name.lower() for t in EventType}
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with engine.connect() as con, out.open("w", encoding="utf-8", newline="") as f:
        _require_run(con, run_id)
        w = csv.writer(f, lineterminator="\n")
        w.writerow(EVENT_COLUMNS)
        # A few ticks at a time, served pages expanded into their per-item events: memory stays flat however long the run.
        rows = iter_log(con, run_id)
        while True:
            page = list(islice(rows, chunk))
            if not page:
                break
            w.writerows((t, u, names.get(ty, str(ty)), it, v, tx, pl) for _s, t, u, ty, it, v, tx, pl, _i in page)
            n += len(page)
    return n


def _asked(tick: int, payload: str | None) -> int:
    """The tick of the page a text is about (its payload's ``asked``), else the tick it was logged."""
    p = AuthoredPayload.read(payload)
    return int(tick) if p is None or p.asked is None else int(p.asked)


_TALK_TYPES = (EventType.CHAT, EventType.INSTRUCTION, EventType.FEELING, EventType.CONVERSE, EventType.CONVERSATION_END)


def _crs_records(run_id: int, talk: list[Any], titles: dict[int, str]) -> list[tuple[Any, dict[str, Any]]]:
    """``crs`` records: a conversation's turns (CONVERSE) and its end (CONVERSATION_END), keyed by the first turn's place in the log."""

    def mention(i: int | None) -> dict[str, Any] | None:
        return None if i is None else {"item_id": int(i), "title": titles.get(int(i))}

    convs: dict[int, tuple[Any, dict[str, Any]]] = {}
    for eid, tick, user, typ, _item, _value, text, payload in talk:
        if typ == int(EventType.CONVERSE):
            p = TurnPayload.read(payload)
            if p is None:
                continue
            if p.conversation not in convs:
                convs[p.conversation] = (eid, {"type": "crs", "run_id": run_id, "conversation": p.conversation, "user_id": user, "tick": tick, "messages": []})
            msg: dict[str, Any] = {"role": p.role, "text": text, "act": p.act, "items": [mention(i) for i in p.items], "by": p.by}
            if p.attribute:
                msg["attribute"], msg["value"] = p.attribute, p.value
            convs[p.conversation][1]["messages"].append(msg)
        elif typ == int(EventType.CONVERSATION_END):
            e = ConversationEndPayload.read(payload)
            if e is None or e.conversation not in convs:
                continue
            convs[e.conversation][1].update(
                agent=e.agent,
                intent={"mode": e.mode, "target": mention(e.target), "reference": e.reference},
                outcome=e.outcome,
                accepted=[mention(i) for i in e.accepted],
                recommended_by_turn=e.recommended,
                success_turn=e.success_turn,
                errors=e.errors,
            )
    return list(convs.values())


def _talk(con: Any, run_id: int, types: Iterable[EventType], user_id: int | None = None) -> list[tuple[Any, ...]]:
    """Events of ``types`` as ``(place, tick, user, type, item, value, text, payload)`` in log order.

    ``place`` is an event's place in the log: (tick, seq), or (tick, id) in logs written before the page log.
    """
    q = select(Event.id, Event.tick, Event.user_id, Event.type, Event.item_id, Event.value, Event.text, Event.payload, Event.seq).where(
        Event.run_id == run_id, Event.type.in_([int(t) for t in types])
    )
    if user_id is not None:
        q = q.where(Event.user_id == user_id)
    rows = [((t, i if s is None else s), t, u, ty, it, v, tx, pl) for i, t, u, ty, it, v, tx, pl, s in con.execute(q.order_by(Event.id))]
    return sorted(rows, key=lambda r: r[0])


def _titles(con: Any, run_id: int) -> dict[int, str]:
    return {int(i): t for i, t in con.execute(select(Item.item_id, Item.title).where(Item.run_id == run_id))}


def conversation_records(con: Any, run_id: int, user_id: int | None = None) -> list[dict[str, Any]]:
    """The ``crs`` records (conversations with the platform's agent) of run ``run_id``, in log order.

    The same records :func:`export_conversations` writes; ``user_id`` keeps one user's.
    """
    talk = _talk(con, run_id, (EventType.CONVERSE, EventType.CONVERSATION_END), user_id)
    if not talk:  # most users never talk to the agent: skip reading the catalog's titles
        return []
    return [rec for _eid, rec in _crs_records(run_id, talk, _titles(con, run_id))]


def export_conversations(engine: Engine, run_id: int, out_path: str | Path) -> int:
    """Write the chats, user↔recommender exchanges and conversations with the platform's agent of run ``run_id`` to ``out_path`` (JSONL).

    Returns:
        The number of records (conversations) written.

    Raises:
        ConfigError: there is no run ``run_id`` in the database.
    """
    with engine.connect() as con:
        k = _slate_size(_require_run(con, run_id))
        titles = _titles(con, run_id)
        # eid below is an event's place in the log (see _talk).
        talk = _talk(con, run_id, _TALK_TYPES)
        records: list[tuple[Any, dict[str, Any]]] = []
        # ---- chats
        convs: dict[Any, dict[str, Any]] = {}
        for eid, tick, user, typ, item, value, text, payload in talk:
            if typ != int(EventType.CHAT):
                continue
            partner = int(value) if value is not None else None
            p = ChatPayload.read(payload)
            key = ("c", p.conversation) if p is not None else ("p", tick, frozenset((user, partner)))
            conv = convs.get(key)
            if conv is None:
                conv = {
                    "type": "chat",
                    "run_id": run_id,
                    "tick": tick,
                    "users": [user, partner],
                    "item_id": item,
                    "item_title": titles.get(item) if item is not None else None,
                    "messages": [],
                }
                convs[key] = conv
                records.append((eid, conv))
            conv["messages"].append({"user": user, "text": text})
        # ---- conversations with the platform's agent
        records.extend(_crs_records(run_id, talk, titles))
        # ---- exchanges
        # A text may be heard ticks after the page it reacts to (the language pipeline): its payload's "asked" is the page's tick.
        feelings = [(eid, _asked(tick, p), user, text) for eid, tick, user, typ, _i, _v, text, p in talk if typ == int(EventType.FEELING)]
        instructions = [(eid, tick, _asked(tick, p), user, text) for eid, tick, user, typ, _i, _v, text, p in talk if typ == int(EventType.INSTRUCTION)]
        pages_of: dict[int, list[tuple[Any, int, int, int]]] = {}
        for eid, tick, asked, user, text in instructions:
            if user not in pages_of:
                pages_of[user] = [((r[1], r[0]), r[1], r[3], r[4]) for r in user_log(con, run_id, user, types=set(_PAGE_TYPES))]
            rows = pages_of[user]
            before = [r for r in rows if r[0] < eid and r[1] <= asked][-k:]
            after = [r for r in rows if r[0] > eid][:k]
            page_first = before[0][0] if before else eid
            # The feeling about the same page: logged after its first item, asked for in the same tick.
            feeling = next((t for fe, fa, fu, t in feelings if fu == user and fa == asked and fe > page_first), None)

            def page(rs: list) -> list[dict[str, Any]]:
                return [{"item_id": it, "title": titles.get(it), "watched": typ == int(EventType.WATCH)} for _e, _t, typ, it in rs]

            records.append(
                (
                    eid,
                    {
                        "type": "exchange",
                        "run_id": run_id,
                        "user_id": user,
                        "tick": tick,
                        "page": page(before),
                        "feeling": feeling,
                        "instruction": text,
                        "next_tick": after[0][1] if after else None,
                        "next_page": page(after),
                    },
                )
            )
    records.sort(key=lambda r: r[0])
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for _eid, rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return len(records)


__all__ = ["EVENT_COLUMNS", "TICK_COLUMNS", "csv_text", "export_conversations", "export_events", "export_metrics"]
