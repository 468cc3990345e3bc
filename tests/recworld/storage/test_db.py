import pytest
from sqlalchemy import select

from recworld.errors import ConfigError
from recworld.storage import connect, normalise_url
from recworld.storage.db import dispose_all, table_names
from recworld.storage.models import Run
from recworld.storage.recorder import create_run


def test_plain_path_is_sqlite(tmp_path):
    assert normalise_url(str(tmp_path / "x.db")).startswith("sqlite:///")


def test_connect_creates_tables_and_wal(tmp_path):
    eng = connect(f"sqlite:///{tmp_path / 'a' / 'r.db'}")
    names = set(table_names(eng))
    assert {"run", "event", "tickmetrics", "llmcall", "checkpoint", "schemainfo"} <= names
    with eng.connect() as con:
        assert con.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert con.exec_driver_sql("PRAGMA page_size").scalar() == 16384
    dispose_all()


def test_an_existing_database_keeps_its_page_size(tmp_path):
    """A file made with SQLite's default 4 KiB pages (older RecWorld) opens, is written and read, and keeps them."""
    import sqlite3

    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE other (x INTEGER)")
    raw.commit()
    raw.close()
    eng = connect(f"sqlite:///{path}")
    run_id = create_run(eng, "kept")
    with eng.connect() as con:
        assert con.exec_driver_sql("PRAGMA page_size").scalar() == 4096
        assert con.execute(select(Run.name).where(Run.id == run_id)).scalar() == "kept"
    dispose_all()


def test_bad_urls_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot parse the database URL"):
        connect("::::://")
    with pytest.raises(ConfigError, match="no database driver|cannot open"):
        connect("nosuchdb://u@h/x")
    with pytest.raises(ConfigError, match="does not exist"):
        connect(str(tmp_path / "missing.db"), create=False)


def test_newer_schema_is_refused(tmp_path):
    from sqlmodel import Session

    from recworld.storage.models import SchemaInfo

    url = f"sqlite:///{tmp_path / 'n.db'}"
    eng = connect(url)
    with Session(eng) as s:
        info = s.get(SchemaInfo, 1)
        info.version = 999
        s.add(info)
        s.commit()
    dispose_all()
    with pytest.raises(ConfigError, match="newer than this RecWorld"):
        connect(url)
    dispose_all()


def test_two_processes_write_one_database_at_once(tmp_path):
    import subprocess
    import sys

    from sqlalchemy import select

    from recworld.storage.models import Run

    db = f"sqlite:///{tmp_path / 'shared.db'}"
    cmd = [sys.executable, "-m", "recworld.scenarios.cli", "run", "quickstart", "--users", "60", "--ticks", "24", "--db", db, "--quiet"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    eng = connect(db, create=False)
    with eng.connect() as con:
        statuses = [s for (s,) in con.execute(select(Run.status))]
    assert statuses == ["completed", "completed"]
    from tests_support import event_log_hash

    assert event_log_hash(eng, 1) == event_log_hash(eng, 2)  # same scenario + seed, interleaved writes
    dispose_all()


def test_older_schema_is_migrated_on_open(tmp_path, monkeypatch):
    from sqlalchemy import text
    from sqlmodel import Session

    from recworld.storage import migrations
    from recworld.storage.models import SCHEMA_VERSION, SchemaInfo

    url = f"sqlite:///{tmp_path / 'old.db'}"
    eng = connect(url)
    with Session(eng) as s:
        info = s.get(SchemaInfo, 1)
        info.version = SCHEMA_VERSION - 1
        s.add(info)
        s.commit()
    dispose_all()
    calls = []

    def step(engine):
        calls.append(engine.url)
        with engine.begin() as con:
            con.execute(text("ALTER TABLE run ADD COLUMN legacy_note TEXT"))

    monkeypatch.setitem(migrations.STEPS, SCHEMA_VERSION - 1, step)
    eng = connect(url)
    assert len(calls) == 1
    with Session(eng) as s:
        assert s.get(SchemaInfo, 1).version == SCHEMA_VERSION
    with eng.connect() as con:
        assert "legacy_note" in [r[1] for r in con.exec_driver_sql("PRAGMA table_info(run)")]
    dispose_all()


def test_passwords_never_appear_in_errors():
    with pytest.raises(ConfigError) as e:
        connect("postgresql+psycopg://alice:s3cret-pw@127.0.0.1:1/db")
    assert "s3cret-pw" not in str(e.value) and "***" in str(e.value)


def test_set_up_steps_retry_while_another_process_holds_the_lock():
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from recworld.storage.db import _retry_locked

    calls = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

    _retry_locked(flaky)
    assert len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise OperationalError("CREATE", {}, sqlite3.OperationalError("disk I/O error"))

    calls.clear()
    with pytest.raises(OperationalError):
        _retry_locked(broken)
    assert len(calls) == 1  # other errors are not retried


def test_schema_v1_database_gets_llmcall_endpoint_rejected_and_interviews(tmp_path):
    from tests_support import check_migrated_from_v1, downgrade_to_schema_v1

    url = f"sqlite:///{tmp_path / 'v1.db'}"
    downgrade_to_schema_v1(connect(url))
    dispose_all()
    check_migrated_from_v1(connect(url))
    dispose_all()
    # A step interrupted before the version was written runs again without harm.
    from recworld.storage.migrations import migrate

    migrate(connect(url), 1)
    with connect(url).connect() as con:
        cols = [r[1] for r in con.exec_driver_sql("PRAGMA table_info(llmcall)")]
    assert cols.count("endpoint") == 1 and cols.count("rejected") == 1


def test_schema_v2_database_gets_tick_talk_columns_llmcall_rejected_and_interviews(tmp_path):
    """A v2 database (pools: ``endpoint``; no search/conversation counts, no grounding) opens at the current version: columns added, ``interview`` created, rows kept."""
    from sqlalchemy import inspect
    from sqlmodel import Session
    from tests_support import TALK_COLUMNS

    from recworld.storage.models import SCHEMA_VERSION, LLMCall, SchemaInfo

    url = f"sqlite:///{tmp_path / 'v2.db'}"
    eng = connect(url)
    with eng.begin() as con:  # hand-made: how a version-2 database looks
        con.exec_driver_sql("ALTER TABLE llmcall DROP COLUMN rejected")
        con.exec_driver_sql("DROP TABLE interview")
        for col in TALK_COLUMNS:
            con.exec_driver_sql(f"ALTER TABLE tickmetrics DROP COLUMN {col}")
        con.exec_driver_sql(
            "INSERT INTO llmcall (run_id, tick, purpose, model, tokens_in, tokens_out, latency_ms, cached, retries, fell_back, endpoint)"
            " VALUES (1, 3, 'post', 'm', 5, 7, 1.0, 0, 0, 0, 'http://127.0.0.1:1/v1')"
        )
        con.exec_driver_sql("UPDATE schemainfo SET version = 2")
    dispose_all()
    eng = connect(url)
    with Session(eng) as s:
        assert s.get(SchemaInfo, 1).version == SCHEMA_VERSION
    assert set(TALK_COLUMNS) <= {c["name"] for c in inspect(eng).get_columns("tickmetrics")}
    with eng.connect() as con:
        row = con.execute(select(LLMCall.purpose, LLMCall.endpoint, LLMCall.rejected)).one()
        assert tuple(row) == ("post", "http://127.0.0.1:1/v1", None)
        assert con.exec_driver_sql("SELECT count(*) FROM interview").scalar() == 0
    dispose_all()


def test_schema_v2_log_is_migrated_and_still_reads(tmp_path):
    """A v2 database (hand-made, labelled: this code can no longer write one) keeps its per-item event rows readable after migration; its session events move into UserTick rows, in the same place in the log."""
    from sqlalchemy import inspect
    from sqlmodel import Session

    from recworld.dashboard import queries as Q
    from recworld.storage.db import dispose_all
    from recworld.storage.models import SCHEMA_VERSION, SchemaInfo
    from recworld.storage.pagelog import log_tuples
    from recworld.storage.recorder import create_run

    url = f"sqlite:///{tmp_path / 'v2.db'}"
    eng = connect(url)
    run_id = create_run(eng, "old")
    with eng.begin() as con:
        con.exec_driver_sql("DROP TABLE usertick")
        con.exec_driver_sql("DROP TABLE itemtick")
        con.exec_driver_sql("ALTER TABLE event DROP COLUMN seq")
        # A v2-era page: one row per item shown, ordered by id.
        rows = [(run_id, 0, 3, 6, None, 0.0), (run_id, 0, 3, 2, 11, 1.0), (run_id, 0, 3, 3, 12, 1.0), (run_id, 0, 3, 4, 11, 4.0), (run_id, 0, 3, 5, None, 1.0)]
        con.exec_driver_sql("INSERT INTO event (run_id, tick, user_id, type, item_id, value) VALUES (?, ?, ?, ?, ?, ?)", rows)
    with Session(eng) as s:
        info = s.get(SchemaInfo, 1)
        info.version = 2
        s.add(info)
        s.commit()
    dispose_all()
    eng = connect(url)
    assert {"usertick", "itemtick"} <= set(inspect(eng).get_table_names()) and "page" not in inspect(eng).get_table_names()
    assert "seq" in {c["name"] for c in inspect(eng).get_columns("event")}
    with Session(eng) as s:
        assert s.get(SchemaInfo, 1).version == SCHEMA_VERSION
    with eng.connect() as con:
        assert [r[2:5] for r in log_tuples(con, run_id)] == [(6, None, 0.0), (2, 11, 1.0), (3, 12, 1.0), (4, 11, 4.0), (5, None, 1.0)]
    assert Q.event_type_counts(eng, run_id, user_id=3) == {6: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    total, rows = Q.events(eng, run_id, user_id=3, types=[2, 3])
    assert total == 2 and [r["item_id"] for r in rows] == [11, 12]
    dispose_all()
