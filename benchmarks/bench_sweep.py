"""A sweep on a local Ray vs the same sweep in one process: wall time, speed-up, cores used, identical runs.

Runs :func:`recworld.scenarios.sweep.run_sweep` (what ``recworld sweep`` runs)
twice into two SQLite files: in this process one run after another
(``--no-ray``), then as Ray tasks on a local Ray it starts with ``--workers``
CPUs (the Ray start is timed and counted). Then checks that every (seed,
recommender) run has the same event log (sha256) and summary in both, and
prints a table. "Cores used" is the CPU time of the runs (all threads of the
process running each) divided by the wall time: about 1 for one process,
about the number of workers when Ray keeps them busy — and less when other
programs compete for the cores, so the load average is printed too.

    .venv/bin/python benchmarks/bench_sweep.py [--seeds 32] [--users 300] [--ticks 72] [--recommenders popularity] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from recworld.scenarios.schema import load_scenario
from recworld.scenarios.sweep import SweepOutcome, run_sweep
from recworld.storage import connect
from recworld.storage.queries import sweep_runs

# The tests' event-log hash (imported after recworld: tests/ has a recworld/ folder of its own).
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from tests_support import event_log_hash


def identical(url_a: str, url_b: str, name: str) -> tuple[int, int]:
    """(runs with the same event-log hash and summary in both databases, runs)."""
    ea, eb = connect(url_a), connect(url_b)
    a = {(r["recommender"], r["seed"]): r for r in sweep_runs(ea, name)}
    b = {(r["recommender"], r["seed"]): r for r in sweep_runs(eb, name)}
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
    base = load_scenario(args.scenario).with_overrides(**{"population.n_users": args.users, "ticks": args.ticks})
    recs = [r.strip() for r in args.recommenders.split(",") if r.strip()]
    seeds = list(range(args.seeds))
    loads = [os.getloadavg()[0]]
    rows: list[tuple[str, SweepOutcome, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        urls = {m: f"sqlite:///{tmp}/{m}.db" for m in ("one", "ray")}
        for mode, use_ray in (("one", False), ("ray", True)):
            t0 = time.perf_counter()
            out = run_sweep(base, seeds, recs, db_url=urls[mode], name="bench", use_ray=use_ray, workers=args.workers)
            rows.append((mode, out, time.perf_counter() - t0))
            loads.append(os.getloadavg()[0])
            if out.failed:
                sys.exit(f"{len(out.failed)} runs failed ({mode}): {out.failed[0].error}")
        same, total = identical(urls["one"], urls["ray"], "bench")
    (_, one, wall1), (_, ray, wall2) = rows
    n = len(one.results)
    print(f"\n{args.scenario}: {args.seeds} seeds x {','.join(recs)}, {args.users} users, {args.ticks} ticks ({n} runs); {os.cpu_count()} cores")
    print(f"load average (1 min): {loads[0]:.1f} before, {loads[1]:.1f} after the one-process sweep, {loads[2]:.1f} after the Ray sweep\n")
    print("| mode | wall s | of which Ray start s | runs / min | speed-up | CPU s per run | cores used | runs identical to one process |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, out, wall in (("one process (`--no-ray`)", one, wall1), (f"local Ray, {args.workers} workers", ray, wall2)):
        cpu = sum(r.cpu_seconds for r in out.results)
        busy = wall - out.ray_start_seconds
        ident = "-" if out is one else f"{same}/{total}"
        print(
            f"| {label} | {wall:.1f} | {out.ray_start_seconds:.1f} | {60 * n / wall:.1f} | {wall1 / wall:.2f}x | {cpu / n:.2f} | {cpu / busy:.2f} | {ident} |"
        )
    if same != total:
        sys.exit(f"{total - same} runs differ between the two modes")


if __name__ == "__main__":
    main()
