"""Recommender agents behind one Protocol (``recommend(users, k, context)``, ``observe(feedback)``).

Built-ins are looked up by name; any other recommender can be named by a
``"package.module:ClassName"`` string.
"""

from __future__ import annotations

from typing import Any

from recworld.agents.recommenders.base import Recommender, topk_unseen
from recworld.agents.recommenders.itemknn import ItemKNNRecommender
from recworld.agents.recommenders.linucb import LinUCBRecommender
from recworld.agents.recommenders.mf import MFRecommender
from recworld.agents.recommenders.simple import PopularityRecommender, RandomRecommender
from recworld.plugins import make_plugin

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
    return make_plugin("recommender", BUILTIN, name, params)


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
