"""Speed of this checkout against an earlier commit, measured side by side: is there a regression?

    .venv/bin/python benchmarks/bench_against.py REF [--bursts 40] [--rounds 3] [--clock cpu|wall]

Checks REF out into a temporary git worktree and runs the same timing code in
REF's tree and in this one, each in a fresh process of this venv
(``PYTHONPATH`` puts each tree's sources first). Works for REFs before and
after the one-namespace layout (``envs`` vs ``recworld.envs``).

Figures:

- Feed-v0 steps/s, the single env and the native vector env of 1,000 focal
  users (user-steps/s), at 10 candidates / slate 2 and 100 / 10, with 200
  background users. Both trees' envs live in two processes at once and take
  turns: ``--bursts`` turns of about 50 ms each (500 single steps, 5 vector
  steps), in a seeded shuffled order, so both see the same machine at a
  granularity of tens of milliseconds. Reported: all steps over all time.
- The world's user-page decisions/s at 10,000 sampled users under popularity
  without logging (as ``bench_world.py``): ``--rounds`` alternating
  processes, median.

Time is the process's CPU time by default (``--clock cpu``): on a shared
machine wall-clock timings of the same code vary by up to 2x with other
processes' load, CPU time far less (``--clock wall`` for the wall clock). CPU
time counts every thread, so a tree that runs BLAS on two threads is charged
for both.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = r"""
import importlib, json, os, sys, time
# The clock (set by the driver): process CPU time by default, which other processes on a shared machine do not inflate.
clock = time.process_time if os.environ.get("RW_CLOCK", "cpu") == "cpu" else time.perf_counter
# "recworld." in the one-namespace layout, "" for the earlier top-level folders (set by the driver from the tree).
prefix = os.environ["RW_PACKAGE_PREFIX"]
"""

# A Feed-v0 env (single, or the native vector env of 1,000 focal users) that steps when told:
# "N" on stdin runs N steps and answers the seconds they took.
ENV_WORKER = (
    PRELUDE
    + r"""
import gymnasium as gym
import numpy as np
importlib.import_module(prefix + "envs.registration")
nc, k, vector = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "vector"
if vector:
    env = gym.make_vec("RecWorld/Feed-v0", num_envs=1000, vectorization_mode="vector_entry_point", num_candidates=nc, slate_size=k, n_background=200)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = [np.argsort(rng.random((1000, nc)), axis=1)[:, :k] for _ in range(8)]
else:
    env = gym.make("RecWorld/Feed-v0", num_candidates=nc, slate_size=k, n_background=200)
    env.reset(seed=0)
    env.action_space.seed(0)
    acts = [env.action_space.sample() for _ in range(256)]
i = 0

def run(n):
    global i
    for _ in range(n):
        out = env.step(acts[i % len(acts)])
        i += 1
        if not vector and (out[2] or out[3]):
            env.reset()

run(10 if vector else 300)
print("ready", flush=True)
for line in sys.stdin:
    t = clock()
    run(int(line))
    print(clock() - t, flush=True)
"""
)

WORLD_SCRIPT = (
    PRELUDE
    + r"""
build_world = importlib.import_module(prefix + "scenarios.build").build_world
load_scenario = importlib.import_module(prefix + "scenarios.schema").load_scenario
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
t = clock()
w.run(8)
print(json.dumps(pages / (clock() - t)))
"""
)

# Steps per turn: about 50 ms of either env.
BURST = {"single": 500, "vector": 5}


def tree_env(tree: Path, clock: str) -> dict[str, str]:
    prefix = "recworld." if (tree / "recworld" / "envs").exists() else ""
    return {**os.environ, "PYTHONPATH": str(tree), "RW_PACKAGE_PREFIX": prefix, "RW_CLOCK": clock}


def start(script: str, tree: Path, clock: str, *args: str) -> subprocess.Popen:
    # Run outside both trees so that neither checkout's folders shadow the other's by the working directory.
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=tempfile.gettempdir(),
        env=tree_env(tree, clock),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def expect(p: subprocess.Popen, tree: Path) -> str:
    line = p.stdout.readline()
    if not line:
        raise SystemExit(f"timing process in {tree} failed: {p.stderr.read().strip().splitlines()[-1:]}")
    return line.strip()


def interleaved_env(trees: dict[str, Path], nc: int, k: int, kind: str, bursts: int, clock: str) -> dict[str, float]:
    """Steps/s of each tree's Feed-v0 env (``kind`` single or vector; a vector step counts its 1,000 users), in turns of :data:`BURST` steps."""
    procs = {name: start(ENV_WORKER, tree, clock, str(nc), str(k), kind) for name, tree in trees.items()}
    try:
        for name, p in procs.items():
            expect(p, trees[name])
        spent = dict.fromkeys(trees, 0.0)
        order = list(trees)
        rng = random.Random(f"{nc}/{k}/{kind}")
        n = BURST[kind]
        for _ in range(bursts):
            rng.shuffle(order)
            for name in order:
                p = procs[name]
                p.stdin.write(f"{n}\n")
                p.stdin.flush()
                spent[name] += float(expect(p, trees[name]))
        per_step = 1000 if kind == "vector" else 1
        return {name: bursts * n * per_step / s for name, s in spent.items()}
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def world_rate(tree: Path, clock: str) -> float:
    p = start(WORLD_SCRIPT, tree, clock)
    out, err = p.communicate(timeout=1800)
    if p.returncode != 0:
        raise SystemExit(f"timing run in {tree} failed: {err.strip().splitlines()[-1:]}")
    return float(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref", help="the earlier commit (any git revision)")
    ap.add_argument("--bursts", type=int, default=40, help="turns (about 50 ms of stepping) per tree and env configuration")
    ap.add_argument("--rounds", type=int, default=3, help="alternating world runs per tree")
    ap.add_argument(
        "--clock", choices=("cpu", "wall"), default="cpu", help="time the loops by process CPU time (default: robust to other load) or by the wall clock"
    )
    a = ap.parse_args()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "ref"
        r = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), a.ref], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"cannot check out {a.ref!r}: {r.stderr.strip()}")
        try:
            trees = {"ref": old, "this": ROOT}
            for kind in ("single", "vector"):
                for nc, k in [(10, 2), (100, 10)]:
                    rate = interleaved_env(trees, nc, k, kind, a.bursts, a.clock)
                    name = f"Feed-v0 {kind} {nc}/{k} ({'user-' if kind == 'vector' else ''}steps/s)"
                    rows.append((name, rate["ref"], rate["this"]))
                    print(f"{name} done", file=sys.stderr)
            worlds: dict[str, list[float]] = {"ref": [], "this": []}
            for i in range(a.rounds):
                for name, tree in trees.items():
                    worlds[name].append(world_rate(tree, a.clock))
                print(f"world round {i + 1}/{a.rounds} done", file=sys.stderr)
            rows.append(("world 10,000 users, popularity (decisions/s)", statistics.median(worlds["ref"]), statistics.median(worlds["this"])))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)
    head = f"{'figure':<46} {a.ref[:12]:>12} {'this':>12} {'this/ref':>9}"
    print(f"{a.clock} time; envs: {a.bursts} interleaved turns per tree; world: median of {a.rounds} rounds")
    print(head)
    print("-" * len(head))
    for key, ref, this in rows:
        print(f"{key:<46} {ref:>12,.0f} {this:>12,.0f} {this / ref:>8.2f}x")


if __name__ == "__main__":
    main()
