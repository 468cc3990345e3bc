"""Item tables: the user model's view of the items, and how it grows when users post."""

from __future__ import annotations

import numpy as np

from recworld.catalog import Catalog
from recworld.usermodel.kernels import ItemTable


def content_item_table(catalog: Catalog) -> ItemTable:
    """An item table from content alone (no interaction data): text embeddings as factors, prior quality as appeal.

    The factors are scaled so that the affinity of a random unit taste with a
    random item has about unit spread, as a fitted model's affinities do.
    """
    emb = catalog.embeddings.astype(np.float64)
    n = emb.shape[0]
    rng = np.random.default_rng(0)
    a = emb[rng.integers(0, n, min(500, n))]
    spread = float((a @ emb[rng.integers(0, n, min(500, n))].T).std()) if n > 1 else 1.0
    factors = (emb / max(spread, 1e-3)).astype(np.float32)
    q = np.asarray(catalog.quality, np.float32)
    return ItemTable(np.ascontiguousarray(factors), q.copy(), np.zeros(len(q), np.float32), q.copy())


def grow_item_table(table: ItemTable, capacity: int) -> ItemTable:
    """``table`` with at least ``capacity`` rows (new rows zero: filled when items are added)."""
    n = table.appeal.shape[0]
    if n >= capacity:
        return table
    extra = capacity - n
    return ItemTable(
        np.ascontiguousarray(np.vstack([table.factors, np.zeros((extra, table.factors.shape[1]), np.float32)])),
        np.concatenate([table.appeal, np.zeros(extra, np.float32)]),
        np.concatenate([table.fame, np.zeros(extra, np.float32)]),
        np.concatenate([table.rating_bias, np.zeros(extra, np.float32)]),
    )


def copy_item_row(table: ItemTable, dst: int, src: int, rng: np.random.Generator, noise: float = 0.1, appeal_drop: float = 0.5, fame: bool = False) -> None:
    """Fill row ``dst`` (a user's post about item ``src``) from ``src``: the same factors with a little noise, less appeal.

    ``fame=True`` keeps the source's fame (a synthetic copy of a known item,
    :func:`replicate_item_table`); a post starts unknown.
    """
    f = table.factors[src]
    scale = float(np.linalg.norm(f)) / np.sqrt(max(f.size, 1))
    table.factors[dst] = f + noise * scale * rng.standard_normal(f.size).astype(np.float32)
    table.appeal[dst] = table.appeal[src] - appeal_drop
    table.fame[dst] = table.fame[src] if fame else 0.0
    table.rating_bias[dst] = table.rating_bias[src]


def replicate_item_table(table: ItemTable, sources: np.ndarray, seed: int = 0, noise: float = 0.1) -> ItemTable:
    """The item table of a replicated catalog (:meth:`recworld.catalog.Catalog.replicate`): originals kept, copies near their source.

    Copies keep their source's appeal, fame and rating bias; their factors get
    the same relative noise as a post's (:func:`copy_item_row`).
    """
    n0 = int((sources == np.arange(sources.size)).sum()) if sources.size else 0
    out = grow_item_table(ItemTable(*(np.ascontiguousarray(a[:n0]) for a in table)), sources.size)
    rng = np.random.default_rng(seed)
    for dst in range(n0, sources.size):
        copy_item_row(out, dst, int(sources[dst]), rng, noise=noise, appeal_drop=0.0, fame=True)
    return out


__all__ = ["content_item_table", "copy_item_row", "grow_item_table", "replicate_item_table"]
