"""Env steps per second: RecWorld/Feed-v0 (single and native vector env) side by side with RecSim.

    python benchmarks/bench_envs.py [--users 1000] [--steps 2000] [--repeat 3] [--no-recsim]

RecSim interest_evolution (random actions) runs in a throwaway venv under
/tmp (``pip install recsim-no-tf gym==0.26.2``) through a subprocess; if the
install fails the RecSim columns say so and the rest still runs. One table.
Every env gets untimed warm-up steps first (RecWorld's compiled kernels load
from numba's on-disk cache, or compile on a first run). Each figure is the
best of ``--repeat`` timed runs (as ``timeit`` reports): on a shared machine
single runs of the same code differ by up to 2x.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CONFIGS = [(10, 2), (100, 10)]

RECSIM_SCRIPT = r"""
import json, sys, time, numpy as np
from recsim.environments import interest_evolution
n_cand, k, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
env = interest_evolution.create_environment({"num_candidates": n_cand, "slate_size": k, "resample_documents": True, "seed": 0})
rng = np.random.default_rng(0)
env.reset()
for _ in range(50):  # warm-up, as for RecWorld
    if env.step(list(rng.choice(n_cand, size=k, replace=False)))[2]:
        env.reset()
done_steps = 0
t = time.perf_counter()
while done_steps < steps:
    a = rng.choice(n_cand, size=k, replace=False)
    obs, r, done, info = env.step(list(a))[:4]
    done_steps += 1
    if done:
        env.reset()
print(json.dumps({"sps": done_steps / (time.perf_counter() - t)}))
"""


def recsim_python(venv: Path) -> Path | None:
    py = venv / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", "from recsim.environments import interest_evolution"], capture_output=True).returncode == 0:
        return py
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "recsim-no-tf", "gym==0.26.2", "numpy<2", "six"], check=True, capture_output=True, timeout=900)
        return py
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"RecSim install failed ({type(exc).__name__}); RecSim columns skipped", file=sys.stderr)
        return None


def bench_recsim(py: Path | None, n_cand: int, k: int, steps: int, repeat: int = 1) -> float | None:
    if py is None:
        return None
    runs = [_recsim_once(py, n_cand, k, steps) for _ in range(repeat)]
    return None if None in runs else max(runs)  # type: ignore[type-var]


def _recsim_once(py: Path, n_cand: int, k: int, steps: int) -> float | None:
    p = subprocess.run([str(py), "-c", RECSIM_SCRIPT, str(n_cand), str(k), str(steps)], capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        print(f"RecSim run failed: {p.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return float(json.loads(p.stdout.strip().splitlines()[-1])["sps"])


def bench_single(n_cand: int, k: int, steps: int, n_background: int, repeat: int = 1, **kw: int) -> float:
    import gymnasium as gym

    import recworld.envs.registration  # noqa: F401  (registers the ids)

    env = gym.make("RecWorld/Feed-v0", num_candidates=n_cand, slate_size=k, n_background=n_background, **kw)
    env.reset(seed=0)
    env.action_space.seed(0)
    acts = [env.action_space.sample() for _ in range(256)]

    def run(n: int) -> None:
        for i in range(n):
            _, _, term, trunc, _ = env.step(acts[i % 256])
            if term or trunc:
                env.reset()

    run(200)
    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        run(steps)
        best = max(best, steps / (time.perf_counter() - t))
    return best


def bench_vector(n_cand: int, k: int, steps: int, num_envs: int, n_background: int, repeat: int = 1) -> float:
    import gymnasium as gym

    import recworld.envs.registration  # noqa: F401  (registers the ids)

    env = gym.make_vec(
        "RecWorld/Feed-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", num_candidates=n_cand, slate_size=k, n_background=n_background
    )
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = [np.argsort(rng.random((num_envs, n_cand)), axis=1)[:, :k] for _ in range(8)]
    for i in range(10):
        env.step(acts[i % 8])
    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        for i in range(steps):
            env.step(acts[i % 8])
        best = max(best, steps * num_envs / (time.perf_counter() - t))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=1000, help="focal users (num_envs) of the vector env")
    p.add_argument("--steps", type=int, default=2000, help="single-env steps per config")
    p.add_argument("--vec-steps", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3, help="timed runs per figure; the best is reported")
    p.add_argument("--background", type=int, default=200, help="background users in every world")
    p.add_argument("--no-recsim", action="store_true")
    p.add_argument("--recsim-venv", default="/tmp/recsim-venv")
    a = p.parse_args()
    py = None if a.no_recsim else recsim_python(Path(a.recsim_venv))
    rows = []
    for n_cand, k in CONFIGS:
        rs = bench_recsim(py, n_cand, k, a.steps, a.repeat)
        single = bench_single(n_cand, k, a.steps, a.background, a.repeat)
        every_step = bench_single(n_cand, k, a.steps, a.background, a.repeat, background_every=1)
        vec = bench_vector(n_cand, k, a.vec_steps, a.users, a.background, a.repeat)
        rows.append((n_cand, k, rs, single, every_step, vec))
    fmt = lambda x: "n/a" if x is None else f"{x:,.0f}"  # noqa: E731
    ratio = lambda x, r: "n/a" if r is None else f"{x / r:.1f}x"  # noqa: E731
    head = (
        f"{'candidates':>10} {'slate':>5} {'RecSim steps/s':>15} {'Feed-v0 single':>15} {'vs RecSim':>9} "
        f"{'background_every=1':>18} {'vs RecSim':>9} {f'vector x{a.users}':>14} {'vs RecSim':>9}"
    )
    print(f"RecWorld/Feed-v0 (background users {a.background}) vs RecSim interest_evolution, random actions, best of {a.repeat}")
    print(head)
    print("-" * len(head))
    for n_cand, k, rs, single, every_step, vec in rows:
        print(
            f"{n_cand:>10} {k:>5} {fmt(rs):>15} {fmt(single):>15} {ratio(single, rs):>9} "
            f"{fmt(every_step):>18} {ratio(every_step, rs):>9} {fmt(vec):>14} {ratio(vec, rs):>9}"
        )


if __name__ == "__main__":
    main()
