"""`recworld sweep` on a local Ray vs the same sweep in one process: wall time, speed-up, identical runs.

Runs the real CLI twice in subprocesses (``--no-ray``, then ``--workers N`` on a
local Ray started by the command), each into its own SQLite database, then
checks that every (seed, recommender) run has the same event log (sha256) and
the same summary in both. Prints a table.

    .venv/bin/python benchmarks/bench_sweep.py [--seeds 32] [--users 300] [--ticks 72] [--recommenders popularity] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recworld.storage import connect
from recworld.storage.queries import sweep_runs

# The tests' event-log hash (imported after recworld: tests/ has a recworld/ folder of its own).
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from tests_support import event_log_hash

RECWORLD = [sys.executable, "-m", "recworld.scenarios.cli"]


def sweep(args: argparse.Namespace, db: Path, mode: list[str]) -> tuple[float, float, float]:
    """Run the sweep CLI; returns (command wall s, sweep s as reported, Ray start s)."""
    cmd = [*RECWORLD, "sweep", args.scenario, "--seeds", f"0-{args.seeds - 1}", "--recommenders", args.recommenders]
    cmd += ["--users", str(args.users), "--ticks", str(args.ticks), "--db", str(db), "--name", "bench", "--quiet", *mode]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"sweep failed ({' '.join(mode)}):\n{p.stderr[-3000:]}")
    m = re.search(r"(\d+) runs in ([0-9.]+) s \(([^;)]*)(?:; Ray start ([0-9.]+) s)?\)", p.stderr)
    if m is None:
        sys.exit(f"cannot read the sweep's timing line:\n{p.stderr[-2000:]}")
    return wall, float(m.group(2)), float(m.group(4) or 0.0)


def identical(db_a: Path, db_b: Path) -> tuple[int, int]:
    """(runs with the same event-log hash and summary in both databases, runs)."""
    ea, eb = connect(f"sqlite:///{db_a}"), connect(f"sqlite:///{db_b}")
    a = {(r["recommender"], r["seed"]): r for r in sweep_runs(ea, "bench")}
    b = {(r["recommender"], r["seed"]): r for r in sweep_runs(eb, "bench")}
    same = sum(1 for k, r in a.items() if k in b and r["summary"] == b[k]["summary"] and event_log_hash(ea, r["id"]) == event_log_hash(eb, b[k]["id"]))
    return same, len(a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="quickstart")
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument("--recommenders", default="popularity")
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--ticks", type=int, default=72)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    n_runs = args.seeds * len([r for r in args.recommenders.split(",") if r.strip()])
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        one, ray = Path(tmp) / "one.db", Path(tmp) / "ray.db"
        wall1, sweep1, _ = sweep(args, one, ["--no-ray"])
        wall2, sweep2, start2 = sweep(args, ray, ["--workers", str(args.workers)])
        same, total = identical(one, ray)
    load1 = os.getloadavg()[0]
    print(f"\n{args.scenario}: {args.seeds} seeds x {args.recommenders}, {args.users} users, {args.ticks} ticks ({n_runs} runs); {os.cpu_count()} cores")
    print(f"load average (1 min) before {load0:.1f}, after {load1:.1f}\n")
    print("| mode | command wall s | sweep s (after Ray start) | runs / min | speed-up (command) | speed-up (sweep) | runs identical to one process |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| one process (`--no-ray`) | {wall1:.1f} | {sweep1:.1f} | {60 * n_runs / wall1:.1f} | 1.00x | 1.00x | - |")
    print(
        f"| local Ray, {args.workers} workers (Ray start {start2:.1f} s) | {wall2:.1f} | {sweep2 - start2:.1f} | {60 * n_runs / wall2:.1f} "
        f"| {wall1 / wall2:.2f}x | {sweep1 / (sweep2 - start2):.2f}x | {same}/{total} |"
    )
    if same != total:
        sys.exit(f"{total - same} runs differ between the two modes")


if __name__ == "__main__":
    main()
