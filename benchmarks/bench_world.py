"""User-page decisions per second of the utility world, at 1,000 and 10,000 users, single process.

A decision is one user looking at one page (k items): watch/skip per item,
ratings, leave-or-next. Reports the world alone and the world logging every
event to SQLite (the run recorder as `recworld run` uses it: a user's pages
and session events of a tick packed in one row, written by a background
thread or by a writer process — ``storage.writer: auto``, the default, takes
the process at 2,000+ users on 2+ cores; both are measured; the timing
includes waiting for the last commit), plus peak memory (max RSS of this process). ``decisions/CPU-s``
divides by the CPU time of the world's process and its writer process (a
writer thread is in the first): on a machine busy with other work it shows
the cost of logging when wall time cannot. Sampled users
with 8 sessions a day keep many users in session per tick; the social layer
is off unless ``--social``.

    .venv/bin/python benchmarks/bench_world.py [--users 1000 10000] [--ticks 24] [--recommenders popularity mf] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def bench(n_users: int, ticks: int, recommender: str, db: bool, social: bool = False, log_skips: bool = True, writer: str = "thread") -> dict:
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
        rec = RunRecorder(eng, rid, flush_every=1, snapshot_every=0, background=writer)
        world.subscribe(rec)
    world.run(2)  # warm-up: first sessions, caches
    if db:
        rec.flush()
    pages = 0
    events = 0

    class Count:
        def on_tick(self, w, ev, m):
            nonlocal pages, events
            pages += m.pages
            events += len(ev)

    world.subscribe(Count())
    child = rec._proc._p.pid if db and rec._proc is not None else None
    t0, c0, k0 = time.perf_counter(), time.process_time(), _cpu_of(child)
    world.run(ticks)
    if db:
        rec.flush()  # the timing includes waiting for the log writer to commit the last tick
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0 + _cpu_of(child) - k0
    if db:
        rec.close()
    return {"pages": pages, "events": events, "seconds": dt, "rate": pages / dt, "ev_rate": events / dt, "cpu_rate": pages / cpu}


def _cpu_of(pid: int | None) -> float:
    """CPU seconds (user + system) a running process has used so far (Linux /proc; 0 without a pid)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CONFIGS = ((False, True, ""), (True, True, "thread"), (True, True, "process"), (True, False, "thread"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--ticks", type=int, default=12)
    ap.add_argument("--recommenders", nargs="+", default=["random", "popularity", "mf", "linucb"])
    ap.add_argument("--social", action="store_true", help="also run the social layer (posts, feeds, chats, follows) each tick")
    ap.add_argument("--repeat", type=int, default=1, help="run the four configurations this many rounds, in turn, and report each one's median (and its range)")
    args = ap.parse_args()
    t = Table(title="RecWorld utility world: user-page decisions per second (single process)", header_style="bold")
    for col in ("users", "recommender", "logging", "pages", "seconds", "decisions/s", "events/s", "decisions/CPU-s", "x unlogged"):
        t.add_column(col, justify="right")
    for n in args.users:
        for rec in args.recommenders:
            # Rounds in turn, so that every configuration sees the machine's slow and fast spells alike.
            runs: dict[tuple, list[dict]] = {c: [] for c in CONFIGS}
            for _ in range(max(1, args.repeat)):
                for db, skips, writer in CONFIGS:
                    runs[(db, skips, writer)].append(bench(n, args.ticks, rec, db, social=args.social, log_skips=skips, writer=writer))
            med = {c: _median(rs) for c, rs in runs.items()}
            base = med[CONFIGS[0]]["rate"]
            for (db, skips, writer), r in med.items():
                rates = [x["rate"] for x in runs[(db, skips, writer)]]
                spread = f" ({min(rates):,.0f}-{max(rates):,.0f})" if len(rates) > 1 else ""
                t.add_row(
                    str(n),
                    rec,
                    f"SQLite, {writer}" + ("" if skips else ", no skips") if db else "none",
                    f"{r['pages']:,}",
                    f"{r['seconds']:.2f}",
                    f"{r['rate']:,.0f}{spread}",
                    f"{r['ev_rate']:,.0f}",
                    f"{r['cpu_rate']:,.0f}",
                    f"{base / r['rate']:.2f}",
                )
    Console(width=160).print(t)
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def _median(rs: list[dict]) -> dict:
    """The run of median speed (its other figures with it)."""
    return sorted(rs, key=lambda r: r["rate"])[(len(rs) - 1) // 2]


if __name__ == "__main__":
    main()
