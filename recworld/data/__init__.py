"""Data loaders: MovieLens (bundled ML-100K or a user's folder), a CSV/JSONL item schema and an interaction CSV."""

from recworld.data.interactions import load_interactions_csv
from recworld.data.items_file import load_items_file
from recworld.data.movielens import MovieLens, item_quality, load_movielens
from recworld.data.records import RawItem, RawUser

__all__ = ["MovieLens", "RawItem", "RawUser", "load_interactions_csv", "item_quality", "load_items_file", "load_movielens"]
