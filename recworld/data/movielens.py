"""MovieLens loaders: the ML-100K copy inside the ``recbole`` wheel, or a user's folder.

A folder may hold the original GroupLens files (``u.data``, ``u.item``,
``u.user``; tab/pipe separated) or RecBole atomic files (``*.inter``,
``*.item``, ``*.user``; tab separated with typed headers).
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recworld.data.records import RawItem, RawUser
from recworld.errors import DataError

ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


@dataclass
class MovieLens:
    """A MovieLens-style data set: items, users and ratings (indices into items/users)."""

    items: list[RawItem]
    users: list[RawUser]
    rating_user: np.ndarray  # int32 index into users
    rating_item: np.ndarray  # int32 index into items
    rating: np.ndarray  # float32 1..5
    timestamp: np.ndarray  # int64 seconds
    source: str

    @property
    def n_ratings(self) -> int:
        return int(self.rating.shape[0])


def item_quality(ml: MovieLens, shrink: float = 10.0, mask: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Shrunk mean rating of each item minus the global mean, and the global mean (over ``mask``'s ratings, default all)."""
    ok = ~np.isnan(ml.rating) if mask is None else mask & ~np.isnan(ml.rating)
    n_items = len(ml.items)
    if not ok.any():
        return np.zeros(n_items, np.float32), 3.5
    r, it = ml.rating[ok].astype(np.float64), ml.rating_item[ok]
    mu = float(r.mean())
    s = np.bincount(it, weights=r, minlength=n_items)
    c = np.bincount(it, minlength=n_items)
    return ((s + shrink * mu) / (c + shrink) - mu).astype(np.float32), mu


def bundled_ml100k_dir() -> Path:
    """Folder of ML-100K inside the installed ``recbole`` wheel (data only; recbole is never imported)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("MovieLens-100K is not installed (it ships in the recbole wheel); run `make demo` or `pip install --no-deps recbole==1.2.1`")
    path = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"
    if not (path / "ml-100k.inter").exists():
        raise DataError(f"{path / 'ml-100k.inter'} is missing; reinstall with `pip install --no-deps --force-reinstall recbole==1.2.1`")
    return path


def load_movielens(folder: str | Path | None = None) -> MovieLens:
    """Load MovieLens from ``folder`` (default: the bundled ML-100K).

    Raises:
        DataError: the folder or a required file is missing or malformed
            (the message names the file, line and field).
    """
    path = bundled_ml100k_dir() if folder is None else Path(folder)
    if not path.is_dir():
        raise DataError(f"MovieLens folder {path} does not exist; pass a folder with u.data/u.item or *.inter/*.item files")
    if (path / "u.data").exists():
        return _load_grouplens(path)
    inter = sorted(path.glob("*.inter"))
    if inter:
        return _load_atomic(path, inter[0])
    raise DataError(f"{path} holds no MovieLens ratings file; expected u.data (GroupLens) or NAME.inter (RecBole atomic)")


def _int_or_none(s: str) -> int | None:
    s = s.strip()
    return int(s) if s.isdigit() else None


def _read_rows(file: Path, sep: str, skip_header: bool, encoding: str = "utf-8") -> list[list[str]]:
    try:
        with open(file, encoding=encoding, errors="replace", newline="") as fh:
            rows = [line.rstrip("\r\n").split(sep) for line in fh if line.strip()]
    except OSError as exc:
        raise DataError(f"cannot read {file}: {exc.strerror}") from None
    return rows[1:] if skip_header else rows


def _assemble(path: Path, items: list[RawItem], users: list[RawUser], ratings_rows: list[tuple[int, str, str, str, str]], file: Path) -> MovieLens:
    item_index = {it.external_id: i for i, it in enumerate(items)}
    user_index = {u.external_id: i for i, u in enumerate(users)}
    ru, ri, rr, rt = [], [], [], []
    for lineno, uid, iid, rating, ts in ratings_rows:
        if iid not in item_index:
            raise DataError(f"{file}:{lineno}: item_id {iid!r} is not in the item file; add it there or drop the rating")
        if uid not in user_index:
            user_index[uid] = len(users)
            users.append(RawUser(external_id=uid))
        try:
            r = float(rating)
        except ValueError:
            raise DataError(f"{file}:{lineno}: rating {rating!r} is not a number; expected 1-5") from None
        if not 0.5 <= r <= 5.0:
            raise DataError(f"{file}:{lineno}: rating {r} is out of range; expected 1-5")
        try:
            t = int(float(ts)) if ts else 0
        except ValueError:
            raise DataError(f"{file}:{lineno}: timestamp {ts!r} is not a number of seconds") from None
        ru.append(user_index[uid])
        ri.append(item_index[iid])
        rr.append(r)
        rt.append(t)
    if not rr:
        raise DataError(f"{file} holds no ratings; expected lines of user, item, rating, timestamp")
    return MovieLens(
        items=items,
        users=users,
        rating_user=np.asarray(ru, np.int32),
        rating_item=np.asarray(ri, np.int32),
        rating=np.asarray(rr, np.float32),
        timestamp=np.asarray(rt, np.int64),
        source=str(path),
    )


def _load_grouplens(path: Path) -> MovieLens:
    item_file = path / "u.item"
    if not item_file.exists():
        raise DataError(f"{item_file} is missing; a GroupLens folder needs u.data and u.item")
    items: list[RawItem] = []
    for n, row in enumerate(_read_rows(item_file, "|", False, encoding="latin-1"), 1):
        if len(row) < 5:
            raise DataError(f"{item_file}:{n}: expected at least 5 '|'-separated fields (id|title|date|...), got {len(row)}")
        title = row[1].strip()
        year = None
        if title.endswith(")") and title[-5:-1].isdigit():
            year = int(title[-5:-1])
            title = title[:-6].strip()
        flags = row[5 : 5 + len(ML100K_GENRES)]
        tags = tuple(g for g, f in zip(ML100K_GENRES, flags) if f.strip() == "1" and g != "unknown")
        items.append(RawItem(external_id=row[0].strip(), title=title, tags=tags, year=year))
    users: list[RawUser] = []
    user_file = path / "u.user"
    if user_file.exists():
        for n, row in enumerate(_read_rows(user_file, "|", False), 1):
            if len(row) < 4:
                raise DataError(f"{user_file}:{n}: expected id|age|gender|occupation|zip, got {len(row)} fields")
            users.append(RawUser(row[0].strip(), _int_or_none(row[1]), row[2].strip() or None, row[3].strip() or None))
    data_file = path / "u.data"
    rows = []
    for n, row in enumerate(_read_rows(data_file, "\t", False), 1):
        if len(row) < 3:
            raise DataError(f"{data_file}:{n}: expected user<TAB>item<TAB>rating<TAB>timestamp, got {len(row)} fields")
        rows.append((n, row[0].strip(), row[1].strip(), row[2], row[3] if len(row) > 3 else ""))
    return _assemble(path, items, users, rows, data_file)


def _atomic_table(file: Path, required: list[str]) -> tuple[dict[str, int], list[list[str]]]:
    rows = _read_rows(file, "\t", False)
    if not rows:
        raise DataError(f"{file} is empty; expected a header line like 'item_id:token<TAB>...'")
    header = [h.split(":")[0].strip() for h in rows[0]]
    cols = {h: i for i, h in enumerate(header)}
    for r in required:
        if r not in cols:
            raise DataError(f"{file}: header has no field {r!r} (found {', '.join(header)}); add the column")
    return cols, rows[1:]


def _load_atomic(path: Path, inter_file: Path) -> MovieLens:
    stem = inter_file.stem
    item_file = path / f"{stem}.item"
    if not item_file.exists():
        raise DataError(f"{item_file} is missing; a RecBole atomic folder needs {stem}.inter and {stem}.item")
    cols, rows = _atomic_table(item_file, ["item_id"])
    title_col = next((c for c in ("movie_title", "title", "name") if c in cols), None)
    items: list[RawItem] = []
    for n, row in enumerate(rows, 2):
        if len(row) != len(cols):
            raise DataError(f"{item_file}:{n}: expected {len(cols)} tab-separated fields, got {len(row)}")
        iid = row[cols["item_id"]].strip()
        title = row[cols[title_col]].strip() if title_col else iid
        year = _int_or_none(row[cols["release_year"]]) if "release_year" in cols else None
        tags = tuple(row[cols["class"]].split()) if "class" in cols else ()
        items.append(RawItem(external_id=iid, title=title, tags=tags, year=year))
    users: list[RawUser] = []
    user_file = path / f"{stem}.user"
    if user_file.exists():
        ucols, urows = _atomic_table(user_file, ["user_id"])
        for n, row in enumerate(urows, 2):
            if len(row) != len(ucols):
                raise DataError(f"{user_file}:{n}: expected {len(ucols)} tab-separated fields, got {len(row)}")
            age, gender, occupation = (row[ucols[k]].strip() if k in ucols else None for k in ("age", "gender", "occupation"))
            users.append(RawUser(row[ucols["user_id"]].strip(), _int_or_none(age) if age else None, gender, occupation))
    icols, irows = _atomic_table(inter_file, ["user_id", "item_id", "rating"])
    rating_rows = []
    for n, row in enumerate(irows, 2):
        if len(row) != len(icols):
            raise DataError(f"{inter_file}:{n}: expected {len(icols)} tab-separated fields, got {len(row)}")
        ts = row[icols["timestamp"]] if "timestamp" in icols else ""
        rating_rows.append((n, row[icols["user_id"]].strip(), row[icols["item_id"]].strip(), row[icols["rating"]], ts))
    return _assemble(path, items, users, rating_rows, inter_file)


def read_csv_dicts(file: Path) -> list[dict[str, str]]:
    """Rows of a CSV file with a header, as dicts (used by the item-file loader)."""
    try:
        with open(file, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    except OSError as exc:
        raise DataError(f"cannot read {file}: {exc.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{file} is not valid UTF-8 CSV: {exc}") from None
