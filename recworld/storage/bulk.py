"""Bulk writes of plain tuples with the driver's executemany: the event log's hot path, shared by the recorder,
the per-tick summaries and the migrations (no per-row ORM work)."""

from __future__ import annotations

from typing import Any


def placeholders(con: Any, n: int) -> list[str]:
    """``n`` positional parameter markers in the driver's style (for :meth:`exec_driver_sql` with tuples)."""
    style = con.dialect.paramstyle
    return ["?"] * n if style == "qmark" else ["%s"] * n if style in ("format", "pyformat") else [f":{i}" for i in range(1, n + 1)]


def insert_rows(con: Any, table: str, columns: tuple[str, ...], rows: list[tuple], chunk: int = 50_000) -> None:
    """Bulk-insert tuples with the driver's executemany (no per-row ORM work)."""
    if not rows:
        return
    marks = ", ".join(placeholders(con, len(columns)))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    for i in range(0, len(rows), chunk):
        con.exec_driver_sql(sql, rows[i : i + chunk])


__all__ = ["insert_rows", "placeholders"]
