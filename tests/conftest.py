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


# ---------------------------------------------------------------- parallel runs (pytest-xdist)
# `make test` runs the suite on two workers: `-n 2 --dist loadfile --no-loadscope-reorder`. Under loadfile a
# test file is one unit of work, run by one worker from start to end (module-scoped fixtures are built once).
# The scheduler below joins a few files into one unit: those sharing session-scoped fixtures, and those that
# must not run at the same time as each other (each starts a local Ray, or the embedded llama.cpp server,
# which takes the CPU threads of the machine). Units are handed out longest first (see
# pytest_collection_modifyitems), so that the two workers end together. (Not xdist's `xdist_group` marks:
# `--dist loadgroup` ignores them on pytest 9.2, pytest-dev/pytest-xdist#1386.)
_JOINED = {
    "tests/dashboard/": "dashboard",  # the session-scoped run databases of tests/dashboard/conftest.py, built once
    "tests/envs/test_rllib.py": "ray",
    "tests/scenarios/test_sweep.py": "ray",
    "tests/agents/brains/test_llm.py": "embedded-llm",
    "tests/recworld/llm/test_embedded.py": "embedded-llm",
    "tests/scenarios/test_interview.py": "embedded-llm",
}
_FIRST = ("tests/test_core_install.py", "tests/scenarios/test_runner_crash_resume.py", "ray", "dashboard", "embedded-llm")


def work_unit(nodeid: str) -> str:
    """The unit of work (see above) of the test ``nodeid``: a joined group, or its file."""
    path = nodeid.split("::", 1)[0]
    return next((g for prefix, g in _JOINED.items() if path.startswith(prefix)), path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile`` with the joined groups of :data:`_JOINED`."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class JoinedFileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return JoinedFileScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker: the units of work longest first (the order the scheduler hands them out); plain runs keep their order."""
    if not hasattr(config, "workerinput"):
        return
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(work_unit(item.nodeid), []).append(item)

    def rank(unit: str) -> tuple[int, int]:
        if unit in _FIRST:
            return (0, _FIRST.index(unit))
        return (1 if any(i.get_closest_marker("slow") for i in units[unit]) else 2, 0)

    items[:] = [i for u in sorted(units, key=rank) for i in units[u]]  # a stable sort: collection order within a rank
