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


def downgrade_to_schema_v1(engine) -> None:
    """Turn a current database back into the schema-v1 layout (``LLMCall`` without ``endpoint``).

    Hand-made on purpose: this code can no longer write a v1 database, and a
    migration test needs one. Adds one v1-era ``LLMCall`` row (run 1).
    """
    from sqlmodel import Session

    from recworld.storage.models import SchemaInfo

    with engine.begin() as con:
        con.exec_driver_sql("ALTER TABLE llmcall DROP COLUMN endpoint")
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
    """The v1 row survived with ``endpoint`` NULL, the recorder writes endpoints, the version is current."""
    from sqlalchemy import inspect
    from sqlmodel import Session

    from recworld.storage.models import SCHEMA_VERSION, LLMCall, SchemaInfo
    from recworld.storage.recorder import RunRecorder

    assert "endpoint" in {c["name"] for c in inspect(engine).get_columns("llmcall")}
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
        }
    )
    rec.flush()
    with engine.connect() as con:
        rows = con.execute(select(LLMCall.tick, LLMCall.model, LLMCall.endpoint).where(LLMCall.run_id == 1).order_by(LLMCall.tick)).all()
    assert [tuple(r) for r in rows] == [(3, "old-model", None), (4, "m", "http://10.0.0.2:8000/v1")]
