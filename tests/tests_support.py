"""Helpers shared by tests (not a test module)."""

from __future__ import annotations

import hashlib

from sqlalchemy import select


def event_log_hash(engine, run_id: int) -> tuple[str, int]:
    """sha256 over a run's events in log order (run id excluded) and their count."""
    from recworld.storage.pagelog import log_tuples

    h = hashlib.sha256()
    n = 0
    with engine.connect() as con:
        for row in log_tuples(con, run_id):
            h.update(repr(tuple(row)).encode())
            n += 1
    return h.hexdigest(), n


def log_rows(engine, run_id: int) -> list[tuple]:
    """A run's events ``(tick, user_id, type, item_id, value, text, payload)`` in log order, served pages expanded."""
    from recworld.storage.pagelog import log_tuples

    with engine.connect() as con:
        return list(log_tuples(con, run_id))


def run_collecting(world, ticks: int):
    """Step ``world`` for ``ticks`` and return all the events it emitted, as one EventBatch."""
    from recworld.events import EventBatch

    events = []

    class _Collect:
        def on_tick(self, w, ev, m):
            events.append(ev)

    world.subscribe(_Collect())
    world.run(ticks)
    return EventBatch.concat(events)


# Fuzzing tallies: name -> [inputs tried, failures]; printed at the end of the run.
FUZZ: dict[str, list[int]] = {}


class fuzz_case:
    """Context manager counting one fuzzed input (and whether it failed) under ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        FUZZ.setdefault(self.name, [0, 0])[0] += 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            FUZZ[self.name][1] += 1
        return False


# Columns schema v3 added to TickMetrics.
TALK_COLUMNS = ("searches", "search_clicks", "conversations", "conversation_turns", "conversation_successes")


def downgrade_to_schema_v1(engine) -> None:
    """Turn a current database back into the schema-v1 layout (``LLMCall`` without ``endpoint`` and ``rejected``, ``TickMetrics`` without search/conversation counts, no ``Interview`` table).

    Hand-made on purpose: this code can no longer write a v1 database, and a
    migration test needs one. Adds one v1-era ``LLMCall`` row (run 1).
    """
    from sqlmodel import Session

    from recworld.storage.models import SchemaInfo

    with engine.begin() as con:
        con.exec_driver_sql("ALTER TABLE llmcall DROP COLUMN endpoint")
        for col in TALK_COLUMNS:
            con.exec_driver_sql(f"ALTER TABLE tickmetrics DROP COLUMN {col}")
        con.exec_driver_sql("ALTER TABLE llmcall DROP COLUMN rejected")
        con.exec_driver_sql("DROP TABLE interview")
        con.exec_driver_sql(
            "INSERT INTO llmcall (run_id, tick, user_id, purpose, model, tokens_in, tokens_out, latency_ms, cached, retries, fell_back, error)"
            " VALUES (1, 3, 7, 'decide', 'old-model', 300, 40, 812.5, FALSE, 0, FALSE, NULL)"
        )
    with Session(engine) as s:
        info = s.get(SchemaInfo, 1)
        info.version = 1
        s.add(info)
        s.commit()


def check_migrated_from_v1(engine) -> None:
    """The v1 row survived with ``endpoint`` and ``rejected`` NULL, the recorder writes both, the v3 tick columns exist, interviews can be stored, the version is current."""
    from sqlalchemy import inspect
    from sqlmodel import Session

    from recworld.storage.models import SCHEMA_VERSION, LLMCall, SchemaInfo
    from recworld.storage.recorder import RunRecorder

    assert {"endpoint", "rejected"} <= {c["name"] for c in inspect(engine).get_columns("llmcall")}
    assert set(TALK_COLUMNS) <= {c["name"] for c in inspect(engine).get_columns("tickmetrics")}
    assert "interview" in inspect(engine).get_table_names()
    with Session(engine) as s:
        assert s.get(SchemaInfo, 1).version == SCHEMA_VERSION
    rec = RunRecorder(engine, run_id=1)
    rec.add_llm_call(
        {
            "tick": 4,
            "user_id": 8,
            "purpose": "decide",
            "model": "m",
            "tokens_in": 1,
            "tokens_out": 1,
            "latency_ms": 1.0,
            "cached": False,
            "retries": 0,
            "fell_back": False,
            "error": None,
            "endpoint": "http://10.0.0.2:8000/v1",
            "rejected": "echo",
        }
    )
    rec.flush()
    with engine.connect() as con:
        rows = con.execute(select(LLMCall.tick, LLMCall.model, LLMCall.endpoint, LLMCall.rejected).where(LLMCall.run_id == 1).order_by(LLMCall.tick)).all()
    assert [tuple(r) for r in rows] == [(3, "old-model", None, None), (4, "m", "http://10.0.0.2:8000/v1", "echo")]
    from recworld.storage.queries import add_interviews, interviews

    add_interviews(engine, [{"run_id": 1, "user_id": 7, "question": "q?", "answer": "a.", "by": "llm"}])
    assert [(r["user_id"], r["answer"]) for r in interviews(engine, 1)] == [(7, "a.")]


# ------------------------------------------------------------------ a scripted "base model"
class LanguageScript:
    """A deterministic scripted model for the language prompts: good texts and the faults a base model makes.

    The answer depends only on the prompt (its sha256 picks a category), so two runs,
    or a run and its resumption, get the same answers. ``categories`` lists what it
    answered, in order (thread-safe append), so tests can compare with what was counted.

    Categories: ``good`` (passes the grounding check), ``invented_title``,
    ``contradicts_persona`` (only when the prompt states a dislike), ``echo``
    (the prompt's last example, verbatim), ``off_topic``, ``empty``.
    """

    CATEGORIES = ("good", "invented_title", "contradicts_persona", "echo", "off_topic", "empty")

    def __init__(self, weights: dict[str, int] | None = None) -> None:
        w = weights or {c: 1 for c in self.CATEGORIES}
        self.wheel = [c for c in self.CATEGORIES for _ in range(w.get(c, 0))]
        self.categories: list[str] = []

    def __call__(self, req) -> str:
        import re

        prompt = req.prompt_text
        last = prompt.rstrip().splitlines()[-1]
        kind = next((k for lab, k in self._LABELS if last.startswith(lab)), None)
        if kind is None:
            return "{}"
        cat = self.wheel[int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % len(self.wheel)]
        viewer = [ln for ln in prompt.splitlines() if ln.startswith(("Viewer:", "Friends:"))][-1]
        if kind == "chat":  # the model writes from B's reply on (the prompt wrote A's first line)
            viewer = viewer.split("; B ", 1)[1] if "; B " in viewer else ""
        dislikes = re.findall(r"dislikes ([^;.,]+)", viewer)
        likes = re.findall(r"loves ([^;.,]+)", viewer)
        if cat == "contradicts_persona" and not dislikes:
            cat = "good"
        self.categories.append(cat)
        text = self._text(kind, cat, prompt, likes[0] if likes else None, dislikes[0] if dislikes else None)
        # The prompt starts the answer (its primer: "I want", or A's first chat line); the model goes on from there.
        if kind == "chat":
            return text
        primer = last.split('"', 1)[1] if '"' in last else ""
        return (text[len(primer) :] if primer and text.startswith(primer) else (" " if primer else "") + text) + '"'

    _LABELS = (("Reaction:", "feeling"), ("Request:", "instruction"), ("Summary:", "reflection"), ("Post:", "post"), ("A:", "chat"), ("Answer:", "interview"))

    @staticmethod
    def _text(kind: str, cat: str, prompt: str, liked: str | None, disliked: str | None) -> str:
        chat = kind == "chat"
        # A chat answer goes on after A's first line, which the prompt wrote: B's reply, then A again.
        if cat == "empty":
            return "\nB:" if chat else '"'  # no reply; a text closed at once
        if cat == "off_topic":
            return "\nB: I am the girl in the picture.\nA: The weather is cold today." if chat else "I am the girl in the picture."
        if cat == "invented_title":
            line = "Love on the Beach (1960) is my new favorite movie."
            return f"\nB: {line}\nA: Never heard of it." if chat else line
        if cat == "contradicts_persona":
            line = f"I'm a die-hard {disliked.lower()} fan."  # type: ignore[union-attr]
            return f"\nB: {line}\nA: Good for you." if chat else line
        if cat == "echo":
            if chat:
                return "\nB: Yes! Funny and dark at the same time.\nA: The accents alone are worth it."
            label = prompt.rstrip().splitlines()[-1].split(":")[0]
            examples = [ln for ln in prompt.splitlines()[:-1] if ln.startswith(label + ': "') and ln.rstrip().endswith('"')]
            return examples[-1].split('"')[1]
        return {
            "feeling": "Solid picks tonight, I enjoyed them.",
            "instruction": f"I want more {liked} movies, please." if liked else "I want something different next time.",
            "reflection": "Lately the movies I watched were a good mix.",
            "post": "Watch this tonight, friends!",
            "chat": "\nB: Yes, what a movie.\nA: Loved the ending.",
            "interview": "I mostly watched what the app showed me and liked the good ones.",
        }[kind]

    def counts(self) -> dict[str, int]:
        """Answers given per category."""
        out: dict[str, int] = {}
        for c in self.categories:
            out[c] = out.get(c, 0) + 1
        return out


def scan_cascades_and_leaves(engine, run_id: int) -> tuple[dict, dict[str, int]]:
    """The run overview's share-cascade summary and leave reasons by a full scan of the log (how the dashboard read them before schema 6).

    The reference the per-tick summaries (``recworld.storage.summary``) are checked against.
    """
    import numpy as np
    from sqlalchemy import select

    from recworld.events import EventType
    from recworld.payloads import LeavePayload, PostPayload
    from recworld.storage import Event
    from recworld.storage.pagelog import log_tuples

    sizes: dict[int, int] = {}
    depth: dict[int, int] = {}
    n = 0
    leave: dict[str, int] = {}
    with engine.connect() as con:
        for (raw,) in con.execute(select(Event.payload).where(Event.run_id == run_id, Event.type == int(EventType.POST)).order_by(Event.id)):
            n += 1
            p = PostPayload.read(raw)
            if p is not None:
                sizes[p.cascade] = sizes.get(p.cascade, 0) + 1
                depth[p.cascade] = max(depth.get(p.cascade, 0), p.depth)
        # LEAVE events are packed in UserTick rows (schema 8): read them from the whole log.
        for row in log_tuples(con, run_id):
            if row[2] != int(EventType.LEAVE):
                continue
            p = LeavePayload.read(row[6])
            key = "unknown" if p is None else p.reason
            leave[key] = leave.get(key, 0) + 1
    s = np.array(list(sizes.values()), np.int64)
    cascades = {
        "posts": n,
        "cascades": int(s.size),
        "max_cascade_size": int(s.max()) if s.size else 0,
        "mean_cascade_size": float(s.mean()) if s.size else 0.0,
        "share_spreading": float((s > 1).mean()) if s.size else 0.0,
        "max_depth": max(depth.values(), default=0),
        "size_distribution": {int(k): int(v) for k, v in zip(*np.unique(s, return_counts=True))} if s.size else {},
    }
    return cascades, leave


def summary_table(engine, run_id: int) -> list[tuple]:
    """A run's TickSummary rows ``(tick, kind, key, n, depth)``, sorted."""
    from sqlalchemy import select

    from recworld.storage import TickSummary

    t = TickSummary
    with engine.connect() as con:
        return sorted(tuple(r) for r in con.execute(select(t.tick, t.kind, t.key, t.n, t.depth).where(t.run_id == run_id)))


def item_tick_table(engine, run_id: int) -> list[tuple]:
    """A run's ItemTick rows, every column but ``id``, sorted by (tick, item)."""
    from sqlalchemy import select

    from recworld.storage import ItemTick

    t = ItemTick
    q = select(t.tick, t.item_id, t.impressions, t.watches, t.ratings, t.rating_sum, t.users, t.marks).where(t.run_id == run_id)
    with engine.connect() as con:
        return sorted((*r[:6], bytes(r[6]), bytes(r[7])) for r in con.execute(q))


def downgrade_log_to_schema_v7(engine) -> int:
    """Turn a current database's packed log back into schema 7's: a ``page`` row per page, an Event row per session event, no UserTick rows; mark it version 7. Returns the page rows written.

    Hand-made on purpose: this code can no longer write a v7 database, and the
    migration tests need one. Pages go back in log order within their tick
    (by the seq of their first SKIP/WATCH event, or IMPRESSION when those
    are logged) — the order the recorder wrote them whenever skips or
    impressions are logged (a page of a run logging neither has no event of
    its own when nothing was watched, so its place cannot be told).
    """
    from sqlalchemy import text

    from recworld.storage.bulk import insert_rows
    from recworld.storage.migrations import _PAGE_USER_INDEX
    from recworld.storage.pagelog import IMPRESSIONS, records
    from recworld.storage.recorder import EVENT_COLUMNS

    pg = engine.dialect.name == "postgresql"
    ddl = (
        f"CREATE TABLE page (id {'SERIAL' if pg else 'INTEGER'} PRIMARY KEY, run_id INTEGER NOT NULL, tick INTEGER NOT NULL, user_id INTEGER NOT NULL,"
        " k SMALLINT NOT NULL, n_watched SMALLINT NOT NULL, n_rated SMALLINT NOT NULL, flags SMALLINT NOT NULL,"
        f" seq_i INTEGER NOT NULL, seq_w INTEGER NOT NULL, seq_r INTEGER NOT NULL, data {'BYTEA' if pg else 'BLOB'} NOT NULL)"
    )
    pages: list[tuple] = []
    events: list[tuple] = []
    with engine.begin() as con:
        rows = con.execute(text("SELECT run_id, tick, user_id, pages, data FROM usertick ORDER BY run_id, tick, id")).all()
        for run_id, tick, user, n, data in rows:
            p, e = records(n, data)
            pages.extend((run_id, tick, user, *r) for r in p)
            events.extend((run_id, tick, user, ty, item, value, tx, pl, seq) for seq, ty, item, value, tx, pl in e)
        pages.sort(key=lambda r: (r[0], r[1], r[7] if r[6] & IMPRESSIONS else r[8]))
        con.exec_driver_sql(ddl)
        con.exec_driver_sql("CREATE INDEX ix_page_run_tick ON page (run_id, tick)")
        con.exec_driver_sql(f"CREATE INDEX ix_page_run_user ON page ({', '.join(_PAGE_USER_INDEX)})")
        insert_rows(con, "page", ("run_id", "tick", "user_id", "k", "n_watched", "n_rated", "flags", "seq_i", "seq_w", "seq_r", "data"), pages)
        insert_rows(con, "event", EVENT_COLUMNS, events)
        con.exec_driver_sql("DELETE FROM usertick")
        con.exec_driver_sql("UPDATE schemainfo SET version = 7")
    return len(pages)


def downgrade_marks_to_schema_v6(engine) -> int:
    """Turn a current database's ItemTick marks back into schema 6's (0 skipped, 1 watched, 2 rated: no rating) and mark it version 6; returns the rows changed.

    Hand-made on purpose: this code can no longer write a v6 database, and the
    6 -> 7 migration test needs one. The marks come from the simulator-written
    rows; the log goes back to schema 7's first (:func:`downgrade_log_to_schema_v7`).
    """
    from sqlalchemy import inspect, text

    from recworld.storage.pagelog import read_marks

    if "page" not in inspect(engine).get_table_names():
        downgrade_log_to_schema_v7(engine)
    with engine.begin() as con:
        rows = con.execute(text("SELECT id, impressions, marks FROM itemtick WHERE ratings > 0")).all()
        params = [{"m": read_marks([(n, m)])[0].astype("int8").tobytes(), "i": i} for i, n, m in rows]
        if params:
            con.execute(text("UPDATE itemtick SET marks = :m WHERE id = :i"), params)
        con.execute(text("UPDATE schemainfo SET version = 6"))
    return len(params)
