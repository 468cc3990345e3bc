"""Loader for a plain item schema in CSV or JSONL: id, title, text, tags, created_at, creator."""

from __future__ import annotations

import json
from pathlib import Path

from recworld.data.movielens import read_csv_dicts
from recworld.data.records import RawItem
from recworld.errors import DataError

REQUIRED = ("id", "title")
KNOWN = {"id", "title", "text", "tags", "created_at", "creator", "year"}


def _tags(value: object, where: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    if isinstance(value, str):
        sep = "|" if "|" in value else ","
        return tuple(t.strip() for t in value.split(sep) if t.strip())
    raise DataError(f"{where}: field 'tags' must be a list or a '|'/','-separated string, got {type(value).__name__}")


def load_items_file(file: str | Path) -> list[RawItem]:
    """Read items from ``.csv`` or ``.jsonl`` (one JSON object per line).

    Fields: ``id`` and ``title`` required; ``text``, ``tags`` (list or
    ``a|b`` string), ``created_at``, ``creator``, ``year`` optional.

    Raises:
        DataError: naming the file, line and field that is wrong.
    """
    path = Path(file)
    if not path.is_file():
        raise DataError(f"item file {path} does not exist; pass a .csv or .jsonl file with id,title,text,tags,created_at,creator")
    suffix = path.suffix.lower()
    records: list[tuple[str, dict]] = []
    if suffix == ".csv":
        for n, row in enumerate(read_csv_dicts(path), 2):
            records.append((f"{path}:{n}", row))
    elif suffix in (".jsonl", ".ndjson"):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise DataError(f"{path} is not UTF-8 text") from None
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{n}: expected a JSON object per line, got {type(obj).__name__}")
            records.append((f"{path}:{n}", obj))
    else:
        raise DataError(f"item file {path} has suffix {suffix!r}; expected .csv or .jsonl")
    items: list[RawItem] = []
    seen: set[str] = set()
    for where, rec in records:
        for field in REQUIRED:
            v = rec.get(field)
            if v is None or str(v).strip() == "":
                raise DataError(f"{where}: required field {field!r} is missing or empty")
        iid = str(rec["id"]).strip()
        if iid in seen:
            raise DataError(f"{where}: duplicate id {iid!r}; item ids must be unique")
        seen.add(iid)
        year = rec.get("year")
        if year not in (None, ""):
            try:
                year = int(year)
            except (TypeError, ValueError):
                raise DataError(f"{where}: field 'year' must be an integer, got {year!r}") from None
        else:
            year = None
        creator = rec.get("creator")
        items.append(
            RawItem(
                external_id=iid,
                title=str(rec["title"]).strip(),
                text=str(rec.get("text") or "").strip(),
                tags=_tags(rec.get("tags"), where),
                year=year,
                created_at=None if rec.get("created_at") in (None, "") else str(rec["created_at"]),
                creator=None if creator in (None, "") else str(creator),
            )
        )
    if not items:
        raise DataError(f"item file {path} holds no items")
    return items
