"""Schema migrations: each step brings a database from version N to N+1.

Tables added in a new version are created by ``create_all``; a step here
only has to alter existing tables (add columns, backfill). Steps check
before they alter, so a step interrupted half-way (or run by two processes
opening the same old database) can run again.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import inspect
from sqlalchemy.engine import Engine


def _add_column(engine: Engine, table: str, column: str, ddl_type: str) -> None:
    if column in {c["name"] for c in inspect(engine).get_columns(table)}:
        return
    with engine.begin() as con:
        con.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl_type}")


def _v1_to_v2(engine: Engine) -> None:
    # LLM server pools: which endpoint answered a call. Older rows keep NULL
    # (one server, or unknown), which readers treat as "not recorded".
    _add_column(engine, "llmcall", "endpoint", "VARCHAR")


def _v2_to_v3(engine: Engine) -> None:
    # Search and conversation counts per tick; older runs had neither (0).
    for col in ("searches", "search_clicks", "conversations", "conversation_turns", "conversation_successes"):
        _add_column(engine, "tickmetrics", col, "INTEGER NOT NULL DEFAULT 0")


def _v3_to_v4(engine: Engine) -> None:
    # Grounded language: why a model's text was rejected (None: kept, or not
    # checked). The ``interview`` table is new and made by ``create_all``.
    _add_column(engine, "llmcall", "rejected", "VARCHAR")


def _v4_to_v5(engine: Engine) -> None:
    # The page log (ItemTick is a new table, made by create_all; Page rows were packed into UserTick at 8). Older
    # events keep seq NULL: their log order is their id, and their pages are
    # still one Event row per item shown, which readers keep reading as rows.
    _add_column(engine, "event", "seq", "INTEGER")


def _index(engine: Engine, table: str, name: str, columns: tuple[str, ...]) -> None:
    # (Re)create an index whose columns changed; an index already as wanted is left alone.
    have = {ix["name"]: tuple(ix["column_names"]) for ix in inspect(engine).get_indexes(table)}
    if have.get(name) == columns:
        return
    with engine.begin() as con:
        if name in have:
            con.exec_driver_sql(f"DROP INDEX {name}")
        con.exec_driver_sql(f"CREATE INDEX {name} ON {table} ({', '.join(columns)})")


#: Schema 6's per-user index of the page table (schemas 5-7; the table is gone at 8).
_PAGE_USER_INDEX = ("run_id", "user_id", "tick", "k", "n_watched", "n_rated", "flags")


def _v5_to_v6(engine: Engine) -> None:
    # Per-tick cascade and leave-reason counts (TickSummary, made by
    # create_all): older runs get them from their Event rows, once, so the
    # run overview never has to fall back to scanning the log. The per-user
    # and per-item indexes gain the columns the user and item pages count (see models).
    from recworld.storage.models import Event, ItemTick
    from recworld.storage.summary import backfill

    for model, name in ((Event, "ix_event_run_user"), (ItemTick, "ix_itemtick_run_item")):
        ix = next(i for i in model.__table__.indexes if i.name == name)
        _index(engine, model.__tablename__, name, tuple(c.name for c in ix.columns))
    if "page" in inspect(engine).get_table_names():
        _index(engine, "page", "ix_page_run_user", _PAGE_USER_INDEX)
    backfill(engine)


def _v6_to_v7(engine: Engine) -> None:
    # ItemTick.marks carries the ratings (the item page reads its watchers'
    # ratings from it instead of decoding their pages): rewrite the marks of
    # older runs from their Page rows with the recorder's own function.
    from recworld.storage.legacy import backfill_marks

    backfill_marks(engine)


def _v7_to_v8(engine: Engine) -> None:
    # A user's pages and session events of a tick are one UserTick row (made
    # by create_all): older runs' Page rows and session Event rows are packed
    # with the recorder's own functions, and the page table goes.
    from recworld.storage.legacy import pack_legacy

    pack_legacy(engine)


def _v8_to_v9(engine: Engine) -> None:
    # Incremental checkpoints name the complete one they apply to; older checkpoints are complete (NULL).
    _add_column(engine, "checkpoint", "base_tick", "INTEGER")


# version -> function that upgrades a database from that version to version+1
STEPS: dict[int, Callable[[Engine], None]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6, 6: _v6_to_v7, 7: _v7_to_v8, 8: _v8_to_v9}


def migrate(engine: Engine, from_version: int) -> None:
    """Apply every step from ``from_version`` up to the current schema version."""
    from recworld.storage.models import SCHEMA_VERSION

    for v in range(from_version, SCHEMA_VERSION):
        step = STEPS.get(v)
        if step is not None:
            step(engine)
