"""A PostgreSQL URL works the same as SQLite: a real server started from Debian's packages.

Skipped only where the PostgreSQL server binaries or the psycopg driver are not installed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from tests_support import event_log_hash, item_tick_table, scan_cascades_and_leaves, summary_table

pytestmark = pytest.mark.slow


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory):
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install 'recworld[postgres]')")
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    # Not under pytest's tmp dir: that is private to root and the server runs as 'postgres'.
    base = Path(tempfile.mkdtemp(prefix="recworld-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        for p in (base, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*run_as, initdb, "-D", str(data), "-A", "trust", "-U", "recworld", "--no-sync"], check=True, capture_output=True)
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*run_as, pg_ctl, "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://recworld@127.0.0.1:{port}/postgres"
    finally:
        from recworld.storage.db import dispose_all

        dispose_all()
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_postgres_run_equals_sqlite_run(pg_url, small_scenario):
    from recworld.scenarios.runner import run_scenario
    from recworld.storage import connect
    from recworld.storage.queries import run_summary

    s = small_scenario(**{"recommender.name": "mf", "ticks": 30})
    a = run_scenario(s, db_url=pg_url, progress=False)
    b = run_scenario(s, progress=False)
    pg, lite = connect(pg_url), connect(s.storage.url)
    assert event_log_hash(pg, a.run_id) == event_log_hash(lite, b.run_id)
    assert run_summary(pg, a.run_id)["watch_rate"] == pytest.approx(run_summary(lite, b.run_id)["watch_rate"])
    # The per-tick cascade and leave-reason summaries too (recworld.storage.summary), and they add up to a scan of the log.
    assert summary_table(pg, a.run_id) == summary_table(lite, b.run_id) != []
    assert scan_cascades_and_leaves(pg, a.run_id) == scan_cascades_and_leaves(lite, b.run_id)
    # The per-item tick rows with their ratings in the marks (schema 7).
    assert item_tick_table(pg, a.run_id) == item_tick_table(lite, b.run_id) != []
    # The dashboard's per-tick metrics bucketed in SQL (recworld.dashboard.series): the same on both databases.
    from recworld.dashboard.service import tick_series

    got, want = tick_series(pg, a.run_id, 10), tick_series(lite, b.run_id, 10)
    assert got[1] == want[1] == 3 and [r.keys() for r in got[0]] == [r.keys() for r in want[0]]
    for g, w in zip(got[0], want[0], strict=True):
        assert {k: v for k, v in g.items() if isinstance(v, int)} == {k: v for k, v in w.items() if isinstance(v, int)}
        assert {k: v for k, v in g.items() if not isinstance(v, int)} == pytest.approx({k: v for k, v in w.items() if not isinstance(v, int)})


def test_postgres_resume(pg_url, small_scenario):
    from sqlalchemy import update

    from recworld.scenarios.runner import resume_run, run_scenario
    from recworld.storage import connect
    from recworld.storage.models import Run

    s = small_scenario(ticks=20)
    full = run_scenario(s, db_url=pg_url, progress=False)
    part = run_scenario(s.with_overrides(ticks=8), db_url=pg_url, progress=False)
    eng = connect(pg_url)
    with eng.begin() as con:
        con.execute(update(Run).where(Run.id == part.run_id).values(status="interrupted", config_json=s.model_dump_json()))
    assert resume_run(part.run_id, db_url=pg_url, progress=False).status == "completed"
    assert event_log_hash(eng, full.run_id) == event_log_hash(eng, part.run_id)


def test_postgres_schema_v1_is_migrated(pg_url, small_scenario):
    from tests_support import check_migrated_from_v1, downgrade_marks_to_schema_v6, downgrade_to_schema_v1

    from recworld.scenarios.runner import run_scenario
    from recworld.storage import connect
    from recworld.storage.db import dispose_all

    # A run of its own, so the test does not depend on which tests ran before it in this worker.
    run_scenario(small_scenario(ticks=8), db_url=pg_url, progress=False)
    eng = connect(pg_url)
    with eng.begin() as con:
        con.exec_driver_sql("DELETE FROM llmcall WHERE run_id = 1")
    with eng.connect() as con:
        runs = [r for (r,) in con.exec_driver_sql("SELECT id FROM run ORDER BY id")]
    want = {r: summary_table(eng, r) for r in runs}
    items = {r: item_tick_table(eng, r) for r in runs}
    logs = {r: event_log_hash(eng, r) for r in runs}
    assert any(want.values())
    assert downgrade_marks_to_schema_v6(eng) > 0  # the log back to Page rows (schema 7), the ratings out of the marks, then the rest back to v1
    assert {r: item_tick_table(eng, r) for r in runs} != items
    downgrade_to_schema_v1(eng)
    with eng.begin() as con:  # and without the schema-6 summaries and per-user indexes
        con.exec_driver_sql("DROP TABLE ticksummary")
        con.exec_driver_sql("DROP INDEX ix_event_run_user")
        con.exec_driver_sql("CREATE INDEX ix_event_run_user ON event (run_id, user_id, tick)")
    dispose_all()
    eng = connect(pg_url)
    check_migrated_from_v1(eng)
    assert {r: summary_table(eng, r) for r in runs} == want
    assert {r: item_tick_table(eng, r) for r in runs} == items
    assert {r: event_log_hash(eng, r) for r in runs} == logs  # pages and session events packed again (7 -> 8)
    from sqlalchemy import inspect

    assert {ix["name"]: ix["column_names"] for ix in inspect(eng).get_indexes("event")}["ix_event_run_user"] == ["run_id", "user_id", "tick", "type"]
