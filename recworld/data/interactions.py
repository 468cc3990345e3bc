"""Loader for an interaction log in CSV beside an item file: user_id, item_id, rating, timestamp."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recworld.data.movielens import MovieLens, read_csv_dicts
from recworld.data.records import RawItem, RawUser
from recworld.errors import DataError


def load_interactions_csv(file: str | Path, items: list[RawItem], source: str | None = None) -> MovieLens:
    """Read a log of who interacted with which item, for the items of an item file.

    Columns: ``user_id`` and ``item_id`` (an ``id`` of the item file) required;
    ``rating`` (1-5; empty or absent = an interaction without a rating) and
    ``timestamp`` (integer seconds) optional. Users are the distinct
    ``user_id`` values in order of first appearance.

    Returns:
        The log as a :class:`MovieLens` data set (ratings NaN where unknown).

    Raises:
        DataError: naming the file, line and field that is wrong.
    """
    path = Path(file)
    if not path.is_file():
        raise DataError(f"interaction file {path} does not exist; pass a CSV with user_id,item_id[,rating][,timestamp]")
    index = {it.external_id: i for i, it in enumerate(items)}
    users: dict[str, int] = {}
    us, its, rs, ts = [], [], [], []
    for n, row in enumerate(read_csv_dicts(path), 2):
        where = f"{path}:{n}"
        for field in ("user_id", "item_id"):
            if str(row.get(field) or "").strip() == "":
                raise DataError(f"{where}: required field {field!r} is missing or empty")
        iid = str(row["item_id"]).strip()
        if iid not in index:
            raise DataError(f"{where}: item_id {iid!r} is not an id of the item file; every interaction must name a known item")
        r = str(row.get("rating") or "").strip()
        try:
            rating = float(r) if r else np.nan
        except ValueError:
            raise DataError(f"{where}: field 'rating' must be a number 1-5 or empty, got {r!r}") from None
        if rating == rating and not 1 <= rating <= 5:
            raise DataError(f"{where}: field 'rating' must be in 1..5, got {rating:g}")
        t = str(row.get("timestamp") or "").strip()
        try:
            stamp = int(float(t)) if t else 0
        except ValueError:
            raise DataError(f"{where}: field 'timestamp' must be integer seconds, got {t!r}") from None
        us.append(users.setdefault(str(row["user_id"]).strip(), len(users)))
        its.append(index[iid])
        rs.append(rating)
        ts.append(stamp)
    if not us:
        raise DataError(f"interaction file {path} holds no interactions")
    return MovieLens(
        items=items,
        users=[RawUser(external_id=u) for u in users],
        rating_user=np.asarray(us, np.int32),
        rating_item=np.asarray(its, np.int32),
        rating=np.asarray(rs, np.float32),
        timestamp=np.asarray(ts, np.int64),
        source=source or str(path),
    )


__all__ = ["load_interactions_csv"]
