"""Recommender agents behind one Protocol (``recommend(users, k, context)``, ``observe(feedback)``).

Built-ins are looked up by name; any other recommender can be named by a
``"package.module:ClassName"`` string.
"""

from __future__ import annotations

import importlib
from typing import Any

from recworld.agents.recommenders.base import Recommender, topk_unseen
from recworld.agents.recommenders.itemknn import ItemKNNRecommender
from recworld.agents.recommenders.linucb import LinUCBRecommender
from recworld.agents.recommenders.mf import MFRecommender
from recworld.agents.recommenders.simple import PopularityRecommender, RandomRecommender
from recworld.errors import ConfigError

BUILTIN: dict[str, str] = {
    "random": "recworld.agents.recommenders.simple:RandomRecommender",
    "popularity": "recworld.agents.recommenders.simple:PopularityRecommender",
    "mf": "recworld.agents.recommenders.mf:MFRecommender",
    "linucb": "recworld.agents.recommenders.linucb:LinUCBRecommender",
    "itemknn": "recworld.agents.recommenders.itemknn:ItemKNNRecommender",
    "policy": "recworld.envs.policy_recommender:PolicyRecommender",
}


def recommender_names() -> list[str]:
    """Names of the built-in recommenders."""
    return sorted(BUILTIN)


def make_recommender(name: str, params: dict[str, Any] | None = None) -> Any:
    """Instantiate a recommender by built-in name or ``module:Class`` path.

    Raises:
        ConfigError: unknown name, unimportable path or bad parameters.
    """
    target = BUILTIN.get(name, name)
    if ":" not in target:
        raise ConfigError(f"unknown recommender {name!r}; expected one of {', '.join(recommender_names())} or 'package.module:ClassName'")
    mod_name, _, cls_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(mod_name), cls_name)
    except (ImportError, AttributeError):
        raise ConfigError(f"recommender {name!r}: cannot import {target}; check the module path and class name") from None
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        raise ConfigError(f"recommender {name!r}: bad params ({exc}); see its docstring for accepted params") from None


__all__ = [
    "ItemKNNRecommender",
    "LinUCBRecommender",
    "MFRecommender",
    "PopularityRecommender",
    "RandomRecommender",
    "Recommender",
    "make_recommender",
    "recommender_names",
    "topk_unseen",
]
