"""The bundled MovieLens-100K catalog and its fitted user model (the default of shipped scenarios and envs)."""

from __future__ import annotations

import threading

from recworld.catalog import Catalog
from recworld.data.movielens import MovieLens, item_quality, load_movielens
from recworld.usermodel.fit import FittedModel, Progress, fitted_model

_LOCK = threading.Lock()
_CACHE: dict[str, object] = {}


def bundled_catalog(progress: bool = False) -> tuple[Catalog, MovieLens]:
    """ML-100K's catalog (text embeddings cached on disk) and its log, built once per process."""
    with _LOCK:
        if "catalog" not in _CACHE:
            ml = load_movielens()
            q, _ = item_quality(ml)
            _CACHE["catalog"] = (Catalog.build(ml.items, quality=q, progress=progress), ml)
        return _CACHE["catalog"]  # type: ignore[return-value]


def bundled_model(progress: Progress | None = None) -> FittedModel:
    """The user model fitted to all of ML-100K (seed 0), from the on-disk cache after the first fit (set-up builds it)."""
    cat, ml = bundled_catalog()
    with _LOCK:
        if "model" not in _CACHE:
            _CACHE["model"] = fitted_model(ml, cat.embeddings, holdout=0.0, seed=0, progress=progress)
        return _CACHE["model"]  # type: ignore[return-value]


__all__ = ["bundled_catalog", "bundled_model"]
