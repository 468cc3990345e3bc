"""Older logs brought to the current layout on open (recworld/storage/legacy.py): the same log, counts and pages for every reader."""

from __future__ import annotations

from sqlalchemy import func, select

from recworld.events import EventType
from recworld.storage import Event, UserTick, connect
from recworld.storage.db import dispose_all
from recworld.storage.legacy import backfill_marks, pack_legacy


def test_schema_v6_marks_are_rewritten_from_the_pages_when_opened(small_scenario):
    """A database written before schema 7 (marks 2 for any rating, pages as Page rows) gets every run's ItemTick rows as the recorder now writes them, row for row."""
    from sqlmodel import Session
    from tests_support import downgrade_marks_to_schema_v6, event_log_hash, item_tick_table

    from recworld.scenarios.runner import run_scenario
    from recworld.storage.models import SCHEMA_VERSION, SchemaInfo

    s = small_scenario(ticks=12)
    a = run_scenario(s, progress=False)
    # Skips not logged: pages are ordered by their impressions (see downgrade_log_to_schema_v7).
    b = run_scenario(s.with_overrides(seed=7, **{"world.log_skips": False, "world.log_impressions": True}), progress=False)
    eng = connect(s.storage.url)
    want = {r: item_tick_table(eng, r) for r in (a.run_id, b.run_id)}
    logs = {r: event_log_hash(eng, r) for r in want}
    assert all(want.values()) and any(max(row[7]) > 2 for rows in want.values() for row in rows)
    changed = downgrade_marks_to_schema_v6(eng)
    assert changed > 0 and {r: item_tick_table(eng, r) for r in want} != want
    assert backfill_marks(eng) == changed and {r: item_tick_table(eng, r) for r in want} == want
    assert backfill_marks(eng) == changed  # run again (an interrupted migration): the same marks
    assert {r: item_tick_table(eng, r) for r in want} == want
    downgrade_marks_to_schema_v6(eng)
    dispose_all()
    eng = connect(s.storage.url)
    with Session(eng) as ses:
        assert ses.get(SchemaInfo, 1).version == SCHEMA_VERSION
    assert {r: item_tick_table(eng, r) for r in want} == want
    assert {r: event_log_hash(eng, r) for r in want} == logs
    dispose_all()


def test_schema_v7_log_is_packed_when_opened(small_scenario):
    """A schema 7 log (a Page row per page, an Event row per session event) becomes UserTick rows on open: the same log, counts and pages for every reader."""
    from sqlalchemy import inspect
    from tests_support import downgrade_log_to_schema_v7, event_log_hash

    from recworld.dashboard import queries as Q
    from recworld.scenarios.runner import run_scenario

    s = small_scenario(ticks=12)
    a = run_scenario(s.with_overrides(**{"social.enabled": True}), progress=False)
    b = run_scenario(s.with_overrides(seed=7, **{"world.log_skips": False}), progress=False)
    eng = connect(s.storage.url)
    runs = (a.run_id, b.run_id)

    def read() -> dict:
        out = {}
        for r in runs:
            users = [1, 2, 5]
            out[r] = (
                event_log_hash(eng, r),
                Q.event_type_counts(eng, r),
                [Q.event_type_counts(eng, r, user_id=u) for u in users],
                [Q.user_sessions(eng, r, u, limit=5, offset=1) for u in users],
                [Q.events(eng, r, user_id=u, limit=20, offset=10) for u in users],
                Q.events(eng, r, limit=30, offset=500, types=[int(EventType.LEAVE), int(EventType.WATCH)]),
                Q.live_retention_rows(eng, r, 4, 11),
            )
        return out

    def strip_ids(x):  # packed events' ids depend on their row ids, which a rewrite changes
        if isinstance(x, dict):
            return {k: strip_ids(v) for k, v in x.items() if k != "id"}
        if isinstance(x, (list, tuple)):
            return type(x)(strip_ids(v) for v in x)
        return x

    want = strip_ids(read())
    n_pages = downgrade_log_to_schema_v7(eng)
    assert n_pages > 0 and "page" in inspect(eng).get_table_names()
    with eng.connect() as con:
        assert con.execute(select(func.count()).select_from(UserTick)).scalar() == 0
    dispose_all()
    eng = connect(s.storage.url)
    assert "page" not in inspect(eng).get_table_names()
    assert strip_ids(read()) == want
    with eng.connect() as con:
        assert con.execute(select(func.sum(UserTick.pages))).scalar() == n_pages
        assert con.execute(select(func.count()).select_from(Event).where(Event.type.in_([5, 6, 7, 8]))).scalar() == 0
    assert pack_legacy(eng) == 0  # run again (an interrupted migration): nothing left to move
    dispose_all()
