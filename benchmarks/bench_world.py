"""User-page decisions per second of the utility world, at 1,000 and 10,000 users, single process.

A decision is one user looking at one page (k items): watch/skip per item,
ratings, leave-or-next. Reports the world alone and the world logging every
event to SQLite (the run recorder as `recworld run` uses it: pages packed one
row each, written by a background thread; the timing includes waiting for the
last commit), plus peak memory (max RSS of this process). ``decisions/CPU-s``
divides by the CPU time of the whole process (writer thread included): on a
machine busy with other work it shows the cost of logging when wall time cannot. Sampled users
with 8 sessions a day keep many users in session per tick; the social layer
is off unless ``--social``.

    .venv/bin/python benchmarks/bench_world.py [--users 1000 10000] [--ticks 24] [--recommenders popularity mf]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def bench(n_users: int, ticks: int, recommender: str, db: bool, social: bool = False, log_skips: bool = True) -> dict:
    from recworld.scenarios.build import build_world
    from recworld.scenarios.schema import load_scenario
    from recworld.storage import connect
    from recworld.storage.recorder import RunRecorder, create_run

    s = load_scenario("quickstart").with_overrides(
        **{
            "population.source": "sampled",
            "population.n_users": n_users,
            "population.activity_mean": 8.0,
            "recommender.name": recommender,
            "ticks": ticks,
            "social.enabled": social,
            "world.log_skips": log_skips,
        }
    )
    world = build_world(s)
    if db:
        tmp = tempfile.mkdtemp()
        eng = connect(f"sqlite:///{Path(tmp) / 'bench.db'}")
        rid = create_run(eng, "bench")
        rec = RunRecorder(eng, rid, flush_every=1, snapshot_every=0, background=True)
        world.subscribe(rec)
    world.run(2)  # warm-up: first sessions, caches
    pages = 0
    events = 0

    class Count:
        def on_tick(self, w, ev, m):
            nonlocal pages, events
            pages += m.pages
            events += len(ev)

    world.subscribe(Count())
    t0, c0 = time.perf_counter(), time.process_time()
    world.run(ticks)
    if db:
        rec.flush()  # the timing includes waiting for the log writer to commit the last tick
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"pages": pages, "events": events, "seconds": dt, "rate": pages / dt, "ev_rate": events / dt, "cpu_rate": pages / cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--ticks", type=int, default=12)
    ap.add_argument("--recommenders", nargs="+", default=["random", "popularity", "mf", "linucb"])
    ap.add_argument("--social", action="store_true", help="also run the social layer (posts, feeds, chats, follows) each tick")
    args = ap.parse_args()
    t = Table(title="RecWorld utility world: user-page decisions per second (single process)", header_style="bold")
    for col in ("users", "recommender", "logging", "pages", "seconds", "decisions/s", "events/s", "decisions/CPU-s"):
        t.add_column(col, justify="right")
    for n in args.users:
        for rec in args.recommenders:
            for db, skips in ((False, True), (True, True), (True, False)):
                r = bench(n, args.ticks, rec, db, social=args.social, log_skips=skips)
                t.add_row(
                    str(n),
                    rec,
                    ("SQLite" if skips else "SQLite, no skips") if db else "none",
                    f"{r['pages']:,}",
                    f"{r['seconds']:.2f}",
                    f"{r['rate']:,.0f}",
                    f"{r['ev_rate']:,.0f}",
                    f"{r['cpu_rate']:,.0f}",
                )
    Console().print(t)
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
