"""Data loaders: MovieLens (bundled ML-100K or a user's folder) and a CSV/JSONL item schema."""

from recworld.data.items_file import load_items_file
from recworld.data.movielens import MovieLens, load_movielens
from recworld.data.records import RawItem, RawUser

__all__ = ["MovieLens", "RawItem", "RawUser", "load_items_file", "load_movielens"]
