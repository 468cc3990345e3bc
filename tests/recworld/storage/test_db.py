import pytest

from recworld.errors import ConfigError
from recworld.storage import connect, normalise_url
from recworld.storage.db import dispose_all, table_names


def test_plain_path_is_sqlite(tmp_path):
    assert normalise_url(str(tmp_path / "x.db")).startswith("sqlite:///")


def test_connect_creates_tables_and_wal(tmp_path):
    eng = connect(f"sqlite:///{tmp_path / 'a' / 'r.db'}")
    names = set(table_names(eng))
    assert {"run", "event", "tickmetrics", "llmcall", "checkpoint", "schemainfo"} <= names
    with eng.connect() as con:
        assert con.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    dispose_all()


def test_bad_urls_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot parse database URL"):
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
