"""A million users on one machine: build time, seconds per tick with the full event log, and peak memory, per population size.

Each size runs in its own subprocess, so the peak RSS (max resident set
size) is that size's alone. The world is the `filter_bubble` scenario's
(sampled users, the fitted user model) with ``--activity`` sessions per user
per day (1.0: about 1/24 of the users open the app each simulated hour) over
a catalog grown to ``--items`` items by seeded near-copies of the
MovieLens-100K items (``catalog.replicate_to``, see ``Catalog.replicate``).
Columns:

- data: loading the catalog's embeddings and the fitted user model (cached on disk after the first run).
- build: ``build_world`` after that (the replicated catalog, population, mesa agents, seen matrix, recommender).
- profiles: the run recorder's start (``write_world``: the catalog and one
  profile row per user, each persona built then); ``--no-profiles`` skips it
  (the events are still all logged).
- s/tick: wall seconds per tick with every event logged to SQLite (the packed
  log, the writer ``recworld run`` picks, ``storage.writer: auto``; the timing waits
  for the last commit), after ``--warmup`` ticks. ``--no-log`` times the world alone.
- seen: the bytes of the seen matrix (one bit per user and item).
- checkpoint: after the timed ticks, the checkpoints the run recorder
  stores (``recworld.checkpoint.Checkpointer`` with ``--delta-share``, the
  scenario default 0.25): a complete one (the world's pickle with its large
  arrays, LZ4; the checkpointer also keeps a copy of those arrays to compare
  against), then, one more logged tick later, an incremental one (only the
  rows changed since) — seconds and MiB each, both in the world's thread,
  every ``storage.checkpoint_every`` ticks (default 1) — and the seconds to
  load the incremental one with its complete one (``load_world``).

    .venv/bin/python benchmarks/bench_scale.py [--sizes 10000 100000 1000000] [--items 10000] [--ticks 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(
    n_users: int, n_items: int, ticks: int, warmup: int, recommender: str, activity: float, log: bool, profiles: bool = True, delta_share: float = 0.25
) -> dict:
    """Build and run one size in this process; returns the figures."""
    from recworld.scenarios.build import build_world
    from recworld.scenarios.schema import load_scenario

    s = load_scenario("filter_bubble").with_overrides(
        **{
            "population.n_users": n_users,
            "population.activity_mean": activity,
            "catalog.replicate_to": n_items,
            "recommender.name": recommender,
            "recommender.params": {},
            "ticks": warmup + ticks,
        }
    )
    # The catalog's embeddings and the fitted model are cached on disk after the first run; time them apart.
    from recworld.scenarios.build import build_catalog, build_user_model

    t = time.perf_counter()
    cat, ml = build_catalog(s)
    build_user_model(s, cat, ml)
    data_s = time.perf_counter() - t
    t = time.perf_counter()
    world = build_world(s)
    build_s = time.perf_counter() - t
    build_rss = _rss_mib()
    rec = None
    profiles_s = 0.0
    if log:
        from recworld.storage import connect
        from recworld.storage.recorder import RunRecorder, choose_writer, create_run

        eng = connect(f"sqlite:///{Path(tempfile.mkdtemp()) / 'scale.db'}")
        rec = RunRecorder(eng, create_run(eng, "bench_scale"), flush_every=1, snapshot_every=0, background=choose_writer("auto", n_users))
        if profiles:
            t = time.perf_counter()
            rec.write_world(world)
            profiles_s = time.perf_counter() - t
        world.attach_recorder(rec)
    world.run(warmup)  # compiled kernels, first sessions
    if rec is not None:
        rec.flush()
    sessions = pages = 0

    class Count:
        def on_tick(self, w, ev, m):
            nonlocal sessions, pages
            sessions += m.sessions
            pages += m.pages

    world.subscribe(Count())
    t = time.perf_counter()
    world.run(ticks)
    if rec is not None:
        rec.flush()  # wait for the log writer's last commit
    tick_s = (time.perf_counter() - t) / max(ticks, 1)

    def one_more_tick() -> None:
        world.run(1)
        if rec is not None:
            rec.flush()

    ck = checkpoint_costs(world, one_more_tick, delta_share)
    if rec is not None:
        rec.close()
    return {
        **ck,
        "users": n_users,
        "items": len(world.catalog),
        "data_s": data_s,
        "build_s": build_s,
        "build_rss_mib": build_rss,
        "profiles_s": profiles_s,
        "tick_s": tick_s,
        "sessions_per_tick": sessions / max(ticks, 1),
        "pages_per_tick": pages / max(ticks, 1),
        "seen_mib": world.seen.nbytes / 2**20,
        "peak_rss_mib": _rss_mib(),
        "load": os.getloadavg()[0],
    }


def checkpoint_costs(world: object, step: object, delta_share: float) -> dict:
    """Seconds and MiB of a complete checkpoint and, after ``step()`` (one more tick), of an incremental one; seconds to load that back."""
    from recworld.checkpoint import Checkpointer, load_world

    ck = Checkpointer(delta_share)
    t = time.perf_counter()
    full = ck(world)
    full_s = time.perf_counter() - t
    step()
    t = time.perf_counter()
    inc = ck(world)
    inc_s = time.perf_counter() - t
    incremental = isinstance(inc, tuple)
    blob = inc[0] if incremental else inc
    t = time.perf_counter()
    load_world(blob, full if incremental else None)
    load_s = time.perf_counter() - t
    return {
        "ckpt_s": full_s,
        "ckpt_mib": len(full) / 2**20,
        "inc_s": inc_s,
        "inc_mib": len(blob) / 2**20,
        "inc_is_incremental": incremental,
        "inc_load_s": load_s,
    }


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--items", type=int, default=10_000, help="catalog size (MovieLens-100K items plus seeded near-copies)")
    ap.add_argument("--ticks", type=int, default=2, help="ticks timed per size")
    ap.add_argument("--warmup", type=int, default=1, help="ticks run before timing")
    ap.add_argument("--recommender", default="popularity")
    ap.add_argument("--activity", type=float, default=1.0, help="mean sessions per user per day")
    ap.add_argument("--no-log", dest="log", action="store_false", help="time the world without its event log")
    ap.add_argument("--no-profiles", dest="profiles", action="store_false", help="log events but skip the recorder's catalog and profile rows (write_world)")
    ap.add_argument("--delta-share", type=float, default=0.25, help="the checkpointer's storage.checkpoint_delta_share")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # run one size here and print its JSON (the parent's subprocess)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.items, args.ticks, args.warmup, args.recommender, args.activity, args.log, args.profiles, args.delta_share)))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"RecWorld at scale: {args.items:,} items, {args.recommender}, activity {args.activity}/day, {'SQLite page log' if args.log else 'no log'}")
    for col in (
        "users",
        "data s",
        "build s",
        "profiles s",
        "sessions/tick",
        "pages/tick",
        "s/tick",
        "seen MiB",
        "RSS after build MiB",
        "peak RSS MiB",
        "checkpoint s / MiB",
        "next tick's checkpoint s / MiB",
        "load it s",
        "load",
    ):
        t.add_column(col, justify="right")
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--items", str(args.items), "--ticks", str(args.ticks), "--warmup", str(args.warmup)]
        cmd += (
            ["--recommender", args.recommender, "--activity", str(args.activity), "--delta-share", str(args.delta_share)]
            + ([] if args.log else ["--no-log"])
            + ([] if args.profiles else ["--no-profiles"])
        )
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            Console().print(f"[red]{n:,} users failed (exit {out.returncode}):[/red] {out.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(r), flush=True)
        t.add_row(
            f"{n:,}",
            f"{r['data_s']:.1f}",
            f"{r['build_s']:.1f}",
            f"{r['profiles_s']:.1f}",
            f"{r['sessions_per_tick']:,.0f}",
            f"{r['pages_per_tick']:,.0f}",
            f"{r['tick_s']:.2f}",
            f"{r['seen_mib']:,.0f}",
            f"{r['build_rss_mib']:,.0f}",
            f"{r['peak_rss_mib']:,.0f}",
            f"{r['ckpt_s']:.2f} / {r['ckpt_mib']:,.0f}",
            f"{r['inc_s']:.2f} / {r['inc_mib']:,.0f}" + ("" if r["inc_is_incremental"] else " (complete)"),
            f"{r['inc_load_s']:.2f}",
            f"{r['load']:.1f}",
        )
    Console(width=200).print(t)


if __name__ == "__main__":
    main()
