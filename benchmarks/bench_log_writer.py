"""The event log writer alone, as the log grows: milliseconds a tick to pack and commit a tick's rows, block by block.

Runs the utility world (sampled users, 8 sessions a day, popularity, social
layer off) and hands every tick to the run recorder's writer in the world's
thread (what the writer thread or process does with a tick), timing only
the writer. A writer whose cost grows with the log (an index whose inserts
spread over all of it) shows here long before it shows in a 24-tick run.

    .venv/bin/python benchmarks/bench_log_writer.py [--users 10000] [--blocks 6] [--block-ticks 24]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--block-ticks", type=int, default=24)
    args = ap.parse_args()

    from recworld.scenarios.build import build_world
    from recworld.scenarios.schema import load_scenario
    from recworld.storage import connect
    from recworld.storage.pagelog import LoggedTick
    from recworld.storage.recorder import RunRecorder, _Job, create_run

    s = load_scenario("quickstart").with_overrides(
        **{
            "population.source": "sampled",
            "population.n_users": args.users,
            "population.activity_mean": 8.0,
            "recommender.name": "popularity",
            "social.enabled": False,
        }
    )
    world = build_world(s)
    path = Path(tempfile.mkdtemp()) / "log.db"
    eng = connect(f"sqlite:///{path}")
    rec = RunRecorder(eng, create_run(eng, "bench-log-writer"), snapshot_every=0)
    ticks: list[tuple[int, LoggedTick]] = []

    class Keep:
        def on_tick(self, w, ev, m):
            ticks.append((int(m.tick), LoggedTick.of(rec.run_id, int(m.tick), ev)))

    world.subscribe(Keep())
    world.run(2)
    t = Table(title=f"Event log writer, {args.users:,} users: ms a tick to pack and commit", header_style="bold")
    for col in ("ticks", "rows a tick", "ms a tick (wall)", "ms a tick (CPU)", "database MB"):
        t.add_column(col, justify="right")
    for _ in range(args.blocks):
        ticks.clear()
        world.run(args.block_ticks)
        t0, c0 = time.perf_counter(), time.process_time()
        for tick, lt in ticks:
            rec._write(_Job([(tick, lt)], [], [], [], [], [], [], [], None, None, tick))
        wall, cpu = (time.perf_counter() - t0) / len(ticks), (time.process_time() - c0) / len(ticks)
        with eng.connect() as con:
            n_rows = con.exec_driver_sql("SELECT count(*) FROM usertick WHERE tick BETWEEN ? AND ?", (ticks[0][0], ticks[-1][0])).scalar()
        t.add_row(f"{ticks[0][0]}-{ticks[-1][0]}", f"{n_rows / len(ticks):,.0f}", f"{wall * 1000:.1f}", f"{cpu * 1000:.1f}", f"{path.stat().st_size / 1e6:.0f}")
    Console().print(t)


if __name__ == "__main__":
    main()
