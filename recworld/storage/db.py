"""Engines for the run database: SQLite (WAL) by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import event as sa_event
from sqlalchemy import inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import Session, SQLModel, create_engine, select

from recworld.errors import ConfigError
from recworld.storage import models
from recworld.storage.models import SCHEMA_VERSION, SchemaInfo

DEFAULT_DB_URL = "sqlite:///runs/recworld.db"

_ENGINES: dict[str, Engine] = {}


def normalise_url(url_or_path: str) -> str:
    """Accept a SQLAlchemy URL or a plain file path (taken as a SQLite file)."""
    s = str(url_or_path).strip()
    if not s:
        raise ConfigError("database URL is empty; pass e.g. --db sqlite:///runs/recworld.db")
    if "://" not in s:
        return f"sqlite:///{s}"
    return s


def redact(url_or_path: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    try:
        return make_url(normalise_url(url_or_path)).render_as_string(hide_password=True)
    except (ArgumentError, ConfigError):
        return str(url_or_path)


def _set_sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    # 16 KiB pages for a new file (an existing one keeps its own): the event log's rows are a few hundred bytes with
    # blobs, and at 10,000 users the writer's inserts and WAL commits took ~10 % less CPU than with 4 KiB pages.
    cur.execute("PRAGMA page_size=16384")
    # WAL lets the dashboard read while a run writes; NORMAL sync is durable
    # across process crashes (only an OS crash can lose the last commit).
    # Switching a new file to WAL needs it to itself: SQLite answers "locked"
    # at once (no busy wait) while another process has it open, so retry.
    for attempt in range(60):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 59:
                raise
            time.sleep(0.01 * (1 + attempt % 10))
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # Event-log inserts update several indexes; a bigger page cache keeps their hot pages in memory.
    cur.execute("PRAGMA cache_size=-131072")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def connect(url_or_path: str = DEFAULT_DB_URL, create: bool = True) -> Engine:
    """Open (and by default create) a run database; engines are cached per URL.

    Raises:
        ConfigError: the URL is malformed, its driver is missing, or the file
            cannot be opened.
    """
    url = normalise_url(url_or_path)
    if url in _ENGINES:
        return _ENGINES[url]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("cannot parse the database URL; expected e.g. sqlite:///runs/recworld.db or postgresql+psycopg://user@host/db") from None
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not create and not path.exists():
            raise ConfigError(f"database file {path} does not exist; run a scenario first or pass --db with an existing database")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the folder for database {path}: {exc.strerror}") from None
    try:
        kwargs = {"connect_args": {"check_same_thread": False, "timeout": 30}} if is_sqlite else {"pool_pre_ping": True}
        engine = create_engine(url, **kwargs)
    except (ModuleNotFoundError, ImportError) as exc:
        raise ConfigError(
            f"no database driver for {parsed.drivername!r} ({exc.name}); for PostgreSQL install the extra: pip install 'recworld[postgres]'"
        ) from None
    except SQLAlchemyError as exc:
        raise ConfigError(f"cannot open database {redact(url)!r}: {exc.__class__.__name__}") from None
    if is_sqlite:
        sa_event.listen(engine, "connect", _set_sqlite_pragmas)
    try:
        if create:
            _retry_locked(lambda: _create_tables(engine))
            _retry_locked(lambda: _check_schema(engine))
        else:
            with engine.connect():
                pass
    except OperationalError as exc:
        raise ConfigError(f"cannot open database {redact(url)!r}: {str(exc.orig).splitlines()[0]}") from None
    _ENGINES[url] = engine
    return engine


def _retry_locked(step: Callable[[], None], attempts: int = 40) -> None:
    # SQLite answers "database is locked" at once, without its busy wait, when a
    # read transaction cannot become a write one because another process wrote
    # in between; the set-up steps are idempotent, so run them again.
    for i in range(attempts):
        try:
            step()
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or i == attempts - 1:
                raise
            time.sleep(0.05 * (1 + i % 8))


def _create_tables(engine: Engine, attempts: int = 10) -> None:
    # Two processes opening a new database at once race between "does the
    # table exist?" and "CREATE TABLE": the loser retries and finds it there.
    for i in range(attempts):
        try:
            SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in _tables()])
            return
        except OperationalError as exc:
            if "already exists" not in str(exc.orig) or i == attempts - 1:
                raise
            time.sleep(0.05 * (i + 1))


def _tables() -> list[type[SQLModel]]:
    return [obj for obj in vars(models).values() if isinstance(obj, type) and issubclass(obj, SQLModel) and getattr(obj, "__table__", None) is not None]


def _check_schema(engine: Engine) -> None:
    from recworld.storage.migrations import migrate

    with Session(engine) as s:
        info = s.exec(select(SchemaInfo)).first()
        if info is None:
            s.add(SchemaInfo(id=1, version=SCHEMA_VERSION))
            try:
                s.commit()
            except IntegrityError:  # another process wrote it first
                s.rollback()
            return
        if info.version > SCHEMA_VERSION:
            raise ConfigError(f"database schema version {info.version} is newer than this RecWorld ({SCHEMA_VERSION}); upgrade recworld")
        if info.version < SCHEMA_VERSION:
            migrate(engine, info.version)
            info.version = SCHEMA_VERSION
            s.add(info)
            s.commit()


def table_names(engine: Engine) -> list[str]:
    """Names of the tables present in the database."""
    return inspect(engine).get_table_names()


def dispose_all() -> None:
    """Close every cached engine (tests and long-lived processes)."""
    for eng in _ENGINES.values():
        eng.dispose()
    _ENGINES.clear()
