"""Shared fixtures: the real ML-100K data and catalog, and small worlds built from them."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def ml():
    from recworld.data import load_movielens

    return load_movielens()


@pytest.fixture(scope="session")
def catalog(ml):
    from recworld.catalog import Catalog
    from recworld.data import item_quality

    q, _ = item_quality(ml)
    return Catalog.build(ml.items, quality=q)


@pytest.fixture
def make_world(ml, catalog):
    """Factory: a world of real ML users (first ``n``) with the given brain and recommender."""
    import copy

    from recworld.agents.brains import UtilityBrain
    from recworld.agents.population import MovieLensPopulation, SampledPopulation
    from recworld.agents.recommenders import make_recommender
    from recworld.config import WorldConfig
    from recworld.usermodel.bundled import bundled_model
    from recworld.world import World

    def _make(n=100, recommender="popularity", brain=None, seed=0, sampled=False, params=None, content=False, **cfg):
        cat = copy.deepcopy(catalog)
        # The fitted user model of ML-100K (the shipped default), or the content-only model.
        model = None if content else bundled_model()
        pop = SampledPopulation(cat, n, seed=seed, model=model) if sampled else MovieLensPopulation(ml, cat, n_users=n, seed=seed, model=model)
        brain = brain or UtilityBrain(model.decision if model is not None else None)
        items = model.item_table() if model is not None else None
        return World(cat, pop, brain, make_recommender(recommender, params or {}), config=WorldConfig(**cfg), seed=seed, items=items)

    return _make


@pytest.fixture
def collect():
    """An observer that keeps every tick's events and metrics."""

    class Collector:
        def __init__(self):
            self.events = []
            self.metrics = []

        def on_tick(self, world, events, metrics):
            self.events.append(events)
            self.metrics.append(metrics)

        def rate(self, key_num, key_den, ticks=slice(None)):
            ms = self.metrics[ticks]
            den = sum(getattr(m, key_den) for m in ms)
            return sum(getattr(m, key_num) for m in ms) / den if den else 0.0

    return Collector


@pytest.fixture
def small_scenario(tmp_path):
    """The quickstart scenario shrunk to run in a couple of seconds, logging to a temp DB."""
    from recworld.scenarios.schema import load_scenario

    def _make(**over):
        base = {"population.n_users": 60, "ticks": 30, "storage.url": f"sqlite:///{tmp_path / 'runs.db'}"}
        base.update(over)
        return load_scenario("quickstart").with_overrides(**base)

    return _make


def pytest_terminal_summary(terminalreporter):
    """Report how many inputs each fuzzing test tried and how many failed."""
    from tests_support import FUZZ

    if FUZZ:
        terminalreporter.section("fuzzing")
        for name, (tried, failed) in sorted(FUZZ.items()):
            terminalreporter.write_line(f"{name}: {tried} inputs tried, failures: {failed}")
