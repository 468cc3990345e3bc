"""The filter-bubble experiment of the README: how far users' tastes and consumption converge per recommender.

Runs the shipped ``filter_bubble`` scenario once per recommender (same seed,
``recommender.name`` overridden) and prints, per recommender, the spread of
users' taste directions before and after (1 - mean pairwise cosine,
:func:`recworld.metrics.spread`), the spread of what they consumed over the
last 24 ticks (``population_diversity``) and the share of the catalog ever
watched.

    .venv/bin/python benchmarks/filter_bubble.py [--users 600] [--recommenders mf,random,popularity]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from recworld import metrics as M
from recworld.scenarios.build import build_world
from recworld.scenarios.schema import load_scenario


def _unit(t: np.ndarray) -> np.ndarray:
    return t / np.linalg.norm(t, axis=1, keepdims=True)


def measure(recommender: str, users: int) -> dict[str, float]:
    """One run of the scenario under ``recommender``."""
    s = load_scenario("filter_bubble").with_overrides(**{"recommender.name": recommender, "population.n_users": users})
    w = build_world(s)
    before = M.spread(_unit(w.users.taste))
    consumption: list[float] = []

    class Observer:
        def on_tick(self, world, events, metrics) -> None:
            consumption.append(metrics.population_diversity)

    w.subscribe(Observer())
    w.run(s.ticks)
    n = len(w.catalog)
    return {
        "before": before,
        "after": M.spread(_unit(w.users.taste)),
        "consumption": float(np.mean(consumption[-24:])),
        "coverage": float((w.watch_counts[:n] > 0).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=600)
    ap.add_argument("--recommenders", default="mf,random,popularity")
    args = ap.parse_args()
    t = Table(title=f"filter_bubble, {args.users} users, 240 ticks")
    for c in ("recommender", "taste spread before", "after", "consumption spread (last 24 ticks)", "catalog coverage"):
        t.add_column(c, justify="left" if c == "recommender" else "right")
    t0 = time.perf_counter()
    for rec in args.recommenders.split(","):
        r = measure(rec, args.users)
        t.add_row(rec, f"{r['before']:.3f}", f"{r['after']:.3f}", f"{r['consumption']:.3f}", f"{r['coverage']:.1%}")
    Console().print(t)
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
