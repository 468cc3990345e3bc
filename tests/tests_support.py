"""Helpers shared by tests (not a test module)."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from recworld.storage import Event


def event_log_hash(engine, run_id: int) -> tuple[str, int]:
    """sha256 over a run's events in log order (run id excluded) and their count."""
    h = hashlib.sha256()
    n = 0
    q = select(Event.tick, Event.user_id, Event.type, Event.item_id, Event.value, Event.text, Event.payload).where(Event.run_id == run_id).order_by(Event.id)
    with engine.connect() as con:
        for row in con.execute(q):
            h.update(repr(tuple(row)).encode())
            n += 1
    return h.hexdigest(), n


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
