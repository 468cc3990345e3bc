"""Per-tick summaries (share cascades, leave reasons) on runs the simulator wrote: the recorder's rows, the backfill's, the migration's."""

from __future__ import annotations

import pytest
from tests_support import scan_cascades_and_leaves, summary_table

from recworld.events import EventType
from recworld.storage import connect
from recworld.storage.db import dispose_all
from recworld.storage.summary import backfill, summary_rows

SOCIAL = {"enabled": True, "degree": 4, "post_rate": 0.5, "reshare_rate": 0.8, "item_post_rate": 0.3}


@pytest.fixture(scope="module")
def social_run(tmp_path_factory):
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario

    url = f"sqlite:///{tmp_path_factory.mktemp('summary') / 'runs.db'}"
    s = load_scenario("quickstart").with_overrides(**{"population.n_users": 60, "ticks": 24, "social": SOCIAL, "storage.flush_every": 3})
    out = run_scenario(s, db_url=url, progress=False)
    yield url, out.run_id
    dispose_all()


def test_recorded_summaries_count_every_post_and_leave(social_run):
    """The rows the recorder wrote with each tick add up to the cascades and leave reasons a scan of the whole log gives."""
    url, run_id = social_run
    eng = connect(url, create=False)
    cascades, leave = scan_cascades_and_leaves(eng, run_id)
    # The run has what is worth checking: reshares (depth > 0), several cascades, several leave reasons.
    assert cascades["max_depth"] >= 1 and cascades["cascades"] >= 2 and len(leave) >= 2
    rows = summary_table(eng, run_id)
    sizes: dict[str, int] = {}
    depth: dict[str, int] = {}
    for _t, kind, key, n, d in rows:
        if kind == "cascade":
            sizes[key] = sizes.get(key, 0) + n
            depth[key] = max(depth.get(key, 0), d)
    assert sum(n for _t, kind, _k, n, _d in rows if kind == "post") == cascades["posts"]
    assert sorted(sizes.values()) == sorted(k for k, v in cascades["size_distribution"].items() for _ in range(v))
    assert max(depth.values()) == cascades["max_depth"]
    got_leave: dict[str, int] = {}
    for _t, kind, key, n, _d in rows:
        if kind == "leave":
            got_leave[key] = got_leave.get(key, 0) + n
    assert got_leave == leave


def test_recorded_summaries_are_per_tick_counts_of_the_stored_events(social_run):
    """Each tick's rows are what :func:`summary_rows` makes of that tick's stored events (so the backfill of an old database writes the same rows)."""
    from recworld.storage.pagelog import log_tuples

    url, run_id = social_run
    eng = connect(url, create=False)
    with eng.connect() as con:
        stored = [(r[0], r[2], r[6]) for r in log_tuples(con, run_id)]
    assert {int(t) for _, t, _ in stored} >= {int(EventType.POST), int(EventType.LEAVE)}
    want = sorted(r[1:] for r in summary_rows(run_id, stored))
    assert summary_table(eng, run_id) == want
    assert backfill(eng, [run_id]) == len(want)
    assert backfill(eng, [run_id]) == len(want)  # run again (an interrupted migration): same rows, none doubled
    assert summary_table(eng, run_id) == want


def test_schema_v5_database_is_backfilled_when_opened(tmp_path, small_scenario):
    """A database written before schema 6 (no TickSummary table; made by dropping it from a simulator-written one) gets every run's rows on open."""
    from sqlalchemy import inspect
    from sqlmodel import Session
    from tests_support import downgrade_log_to_schema_v7, event_log_hash

    from recworld.scenarios.runner import run_scenario
    from recworld.storage.models import SCHEMA_VERSION, SchemaInfo

    s = small_scenario(ticks=12, social=SOCIAL)
    a = run_scenario(s, progress=False)
    b = run_scenario(s.with_overrides(seed=7), progress=False)
    url = s.storage.url
    eng = connect(url)
    want = {r: summary_table(eng, r) for r in (a.run_id, b.run_id)}
    assert all(want.values()) and want[a.run_id] != want[b.run_id]
    logs = {r: event_log_hash(eng, r) for r in want}
    downgrade_log_to_schema_v7(eng)  # Page rows and session Event rows, as schemas 5-7 wrote them
    with eng.begin() as con:  # how a version-5 database looks
        con.exec_driver_sql("DROP TABLE ticksummary")
        for table, name in (("event", "ix_event_run_user"), ("page", "ix_page_run_user")):
            con.exec_driver_sql(f"DROP INDEX {name}")
            con.exec_driver_sql(f"CREATE INDEX {name} ON {table} (run_id, user_id, tick)")
        con.exec_driver_sql("UPDATE schemainfo SET version = 5")
    dispose_all()
    eng = connect(url)
    with Session(eng) as ses:
        assert ses.get(SchemaInfo, 1).version == SCHEMA_VERSION
    assert {r: summary_table(eng, r) for r in want} == want
    assert {r: event_log_hash(eng, r) for r in want} == logs  # and through 7 -> 8 the same log
    assert {ix["name"]: ix["column_names"] for ix in inspect(eng).get_indexes("event")}["ix_event_run_user"] == ["run_id", "user_id", "tick", "type"]
    assert "page" not in inspect(eng).get_table_names()
    dispose_all()
