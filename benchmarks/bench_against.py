"""Speed of this checkout against an earlier commit, measured side by side: is there a regression?

    .venv/bin/python benchmarks/bench_against.py REF [--rounds 5]

Checks REF out into a temporary git worktree and, for ``--rounds`` rounds,
runs the same timing script once in REF's tree and once in this one
(alternating, so both see the same machine load), each in a fresh process of
this venv (``PYTHONPATH`` puts REF's sources first). Prints the median of the
rounds per figure and the ratio this/REF. Figures: Feed-v0 single-env steps/s
(10 candidates / slate 2, and 100 / 10; 200 background users; best of 3
timed runs of 2,000 steps) and the world's user-page decisions/s at 10,000
sampled users under popularity without logging (as ``bench_world.py``).
Works for REFs before and after the one-namespace layout (``envs`` vs
``recworld.envs``). Single timings on a shared machine vary by up to 2x;
the medians of alternating rounds are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TIMING_SCRIPT = r"""
import json, time
import gymnasium as gym
import importlib, os
# "recworld." in the one-namespace layout, "" for the earlier top-level folders (set by the driver from the tree).
prefix = os.environ["RW_PACKAGE_PREFIX"]
importlib.import_module(prefix + "envs.registration")
build_world = importlib.import_module(prefix + "scenarios.build").build_world
load_scenario = importlib.import_module(prefix + "scenarios.schema").load_scenario

out = {}
for nc, k in [(10, 2), (100, 10)]:
    env = gym.make("RecWorld/Feed-v0", num_candidates=nc, slate_size=k, n_background=200)
    env.reset(seed=0)
    env.action_space.seed(0)
    acts = [env.action_space.sample() for _ in range(256)]

    def run(n):
        for i in range(n):
            _, _, te, tr, _ = env.step(acts[i % 256])
            if te or tr:
                env.reset()

    run(300)
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        run(2000)
        best = max(best, 2000 / (time.perf_counter() - t))
    out[f"Feed-v0 single {nc}/{k} (steps/s)"] = best

s = load_scenario("quickstart").with_overrides(**{
    "population.source": "sampled", "population.n_users": 10000, "population.activity_mean": 8.0,
    "recommender.name": "popularity", "ticks": 8, "social.enabled": False,
})
w = build_world(s)
w.run(2)
pages = 0
class Count:
    def on_tick(self, world, ev, m):
        global pages
        pages += m["pages"] if isinstance(m, dict) else m.pages  # a dict before the typed TickRecord
w.subscribe(Count())
t = time.perf_counter()
w.run(8)
out["world 10,000 users, popularity (decisions/s)"] = pages / (time.perf_counter() - t)
print(json.dumps(out))
"""


def measure(tree: Path) -> dict[str, float]:
    prefix = "recworld." if (tree / "recworld" / "envs").exists() else ""
    env = {**os.environ, "PYTHONPATH": str(tree), "RW_PACKAGE_PREFIX": prefix}
    # Run outside both trees so that neither checkout's folders shadow the other's by the working directory.
    p = subprocess.run([sys.executable, "-c", TIMING_SCRIPT], cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise SystemExit(f"timing run in {tree} failed: {p.stderr.strip().splitlines()[-1:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref", help="the earlier commit (any git revision)")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "ref"
        r = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), a.ref], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"cannot check out {a.ref!r}: {r.stderr.strip()}")
        try:
            runs: dict[str, list[dict[str, float]]] = {"ref": [], "this": []}
            for i in range(a.rounds):
                runs["ref"].append(measure(old))
                runs["this"].append(measure(ROOT))
                print(f"round {i + 1}/{a.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)
    head = f"{'figure':<46} {a.ref[:12]:>12} {'this':>12} {'this/ref':>9}"
    print(f"median of {a.rounds} alternating rounds")
    print(head)
    print("-" * len(head))
    for key in runs["this"][0]:
        ref = statistics.median(r[key] for r in runs["ref"])
        this = statistics.median(r[key] for r in runs["this"])
        print(f"{key:<46} {ref:>12,.0f} {this:>12,.0f} {this / ref:>8.2f}x")


if __name__ == "__main__":
    main()
