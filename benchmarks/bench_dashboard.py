"""Dashboard API latency on a run with over a million events.

The database is a real simulation: the quickstart scenario (943 MovieLens
users, LinUCB) run for two simulated weeks (336 ticks), which logs about
1.0-1.1 million events. If a run falls short of ``--min-events`` (e.g. after a
change to the dynamics), its events are replicated with ``INSERT ... SELECT``
shifted by whole runs of ticks until it has enough (the table says so), with
the packed pages and session events, per-item tick counts and per-tick
summaries that go with them. Events are counted as the dashboard counts
them: Event rows plus the events (pages' watches, skips and ratings, session
events) that the packed UserTick rows stand for.

The dashboard is served by uvicorn on 127.0.0.1 and queried over HTTP, so the
numbers include routing, validation, serialisation and the loopback socket.

Usage:
    python benchmarks/bench_dashboard.py [--db sqlite:///runs/bench_dashboard.db] [--repeat 60]

A run with as many ticks as a real 10M-event one, nothing replicated (the
replicated run has the per-tick metrics of its first copy only):
``--db sqlite:///runs/bench_long.db --ticks 4200 --min-events 1`` (a quickstart
run of 4,200 ticks, about 7.7M events, about 6 minutes to build).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select, text

from recworld.storage import connect
from recworld.storage.models import Event, Run
from recworld.storage.pagelog import SPAN_TICKS


def build(db_url: str, ticks: int, min_events: int) -> tuple[int, str]:
    """Run the quickstart scenario into ``db_url``; top up by replication if needed. Returns (run id, how)."""
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario

    scenario = load_scenario("quickstart").with_overrides(ticks=ticks, **{"storage.flush_every": 8})
    t = time.perf_counter()
    out = run_scenario(scenario, db_url=db_url, progress=True, run_name="bench-dashboard")
    how = f"simulated: quickstart, {ticks} ticks, {time.perf_counter() - t:.0f} s"
    engine = connect(db_url)
    n = count_events(engine, out.run_id)
    if n < min_events:
        copies = 0
        with engine.begin() as con:
            span = ticks
            while n < min_events:
                copies += 1
                p = {"shift": span * copies, "r": out.run_id, "span": span}
                con.execute(
                    text(
                        "INSERT INTO event (run_id, tick, user_id, type, item_id, value, text, payload, seq) "
                        "SELECT run_id, tick + :shift, user_id, type, item_id, value, text, payload, seq FROM event WHERE run_id = :r AND tick < :span"
                    ),
                    p,
                )
                con.execute(
                    text(
                        "INSERT INTO usertick (run_id, tick, span, user_id, pages, shown, watched, rated, flags, starts, returns, leaves, churns, data) "
                        f"SELECT run_id, tick + :shift, (tick + :shift) / {SPAN_TICKS}, user_id, pages, shown, watched, rated, flags, starts, returns, leaves, churns, data"
                        " FROM usertick WHERE run_id = :r AND tick < :span"
                    ),
                    p,
                )
                con.execute(
                    text(
                        "INSERT INTO itemtick (run_id, tick, item_id, impressions, watches, ratings, rating_sum, users, marks) "
                        "SELECT run_id, tick + :shift, item_id, impressions, watches, ratings, rating_sum, users, marks FROM itemtick WHERE run_id = :r AND tick < :span"
                    ),
                    p,
                )
                # The run overview's per-tick cascade and leave-reason counts (recworld.storage.summary) of the copied events.
                con.execute(
                    text(
                        "INSERT INTO ticksummary (run_id, tick, kind, key, n, depth) "
                        "SELECT run_id, tick + :shift, kind, key, n, depth FROM ticksummary WHERE run_id = :r AND tick < :span"
                    ),
                    p,
                )
                n = count_events(engine, out.run_id, con)
        how += f"; events, packed pages and per-tick summaries replicated {copies}x by INSERT ... SELECT with ticks shifted"
    return out.run_id, how


def count_events(engine, run_id: int, con=None) -> int:
    """Events of a run as the dashboard counts them: Event rows plus the events its UserTick rows stand for."""
    from recworld.dashboard.queries import _page_counts, _session_counts, run_logging

    if con is None:
        with engine.connect() as c:
            return count_events(engine, run_id, c)
    rows = int(con.execute(select(func.count()).select_from(Event).where(Event.run_id == run_id)).scalar_one())
    return rows + sum(_page_counts(con, run_id, run_logging(engine, run_id)).values()) + sum(_session_counts(con, run_id).values())


def find_run(engine, min_events: int) -> int | None:
    with engine.connect() as con:
        ids = [r for (r,) in con.execute(select(Run.id).where(Run.status == "completed").order_by(Run.id.desc()))]
    for run_id in ids:
        if count_events(engine, run_id) >= min_events:
            return run_id
    return None


def measure(client: httpx.Client, urls: list[str], repeat: int) -> tuple[float, float, float, int]:
    """(p50, p95, max) in ms over ``repeat`` requests cycling through ``urls``; plus response bytes."""
    client.get(urls[0]).raise_for_status()  # warm-up
    times, size = [], 0
    for i in range(repeat):
        t = time.perf_counter()
        r = client.get(urls[i % len(urls)])
        times.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
        size = len(r.content)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], times[-1], size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="sqlite:///runs/bench_dashboard.db")
    ap.add_argument("--ticks", type=int, default=336)
    ap.add_argument("--min-events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=60)
    ap.add_argument("--users", type=int, default=30, help="distinct users the user-page requests cycle through")
    args = ap.parse_args()

    from recworld.scenarios.serve import start_dashboard

    if args.db.startswith("sqlite:///"):
        Path(args.db[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    engine = connect(args.db)
    run_id = find_run(engine, args.min_events)
    how = "reused"
    if run_id is None:
        run_id, how = build(args.db, args.ticks, args.min_events)
    n_events = count_events(engine, run_id)
    with engine.connect() as con:
        per_user: dict[int, int] = {}
        for u, c in con.execute(text("SELECT user_id, COUNT(*) FROM event WHERE run_id = :r GROUP BY user_id"), {"r": run_id}):
            per_user[int(u)] = per_user.get(int(u), 0) + int(c)
        # Packed events per user (skips logged, impressions not: the quickstart's default): items shown + ratings + session events.
        q = "SELECT user_id, SUM(shown + rated + starts + returns + leaves + churns) FROM usertick WHERE run_id = :r GROUP BY user_id"
        for u, c in con.execute(text(q), {"r": run_id}):
            per_user[int(u)] = per_user.get(int(u), 0) + int(c)
        busiest = max(per_user.items(), key=lambda kv: kv[1])
        top_item = con.execute(
            text("SELECT item_id, SUM(watches) AS n FROM itemtick WHERE run_id = :r GROUP BY item_id ORDER BY n DESC LIMIT 1"), {"r": run_id}
        ).one()
        n_users = con.execute(select(Run.n_users).where(Run.id == run_id)).scalar_one()
    rng = random.Random(0)
    users = [int(busiest[0]), *rng.sample(range(n_users), min(args.users, n_users) - 1)]

    server = start_dashboard(args.db, port=0)
    base = f"http://127.0.0.1:{server.port}"
    cases = [
        ("run overview (API)", [f"/api/runs/{run_id}/overview"]),
        ("run overview (page)", [f"/runs/{run_id}"]),
        (f"user page (API, {len(users)} users)", [f"/api/runs/{run_id}/users/{u}" for u in users]),
        (f"user page (page, {len(users)} users)", [f"/runs/{run_id}/users/{u}" for u in users]),
        (f"busiest user {busiest[0]} ({busiest[1]:,} events, API)", [f"/api/runs/{run_id}/users/{busiest[0]}"]),
        ("user events, page 20 (API)", [f"/api/runs/{run_id}/users/{busiest[0]}/events?offset=1000&limit=50"]),
        ("runs list (API)", ["/api/runs"]),
        ("users search (API)", [f"/api/runs/{run_id}/users?q=engineer&limit=50"]),
        ("items by popularity (API)", [f"/api/runs/{run_id}/items?sort=watches&order=desc"]),
        (f"top item {top_item[0]} ({top_item[1]:,} watches, API)", [f"/api/runs/{run_id}/items/{top_item[0]}"]),
        (f"top item {top_item[0]} (page)", [f"/runs/{run_id}/items/{top_item[0]}"]),
        ("SSE stream of a finished run", [f"/api/runs/{run_id}/stream"]),
    ]
    rows = []
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            t = time.perf_counter()
            client.get(f"/api/runs/{run_id}/items?sort=watches&order=desc").raise_for_status()
            cold_pop = (time.perf_counter() - t) * 1000
            for name, urls in cases:
                rows.append((name, *measure(client, urls, args.repeat)))
    finally:
        server.stop()

    print(f"\nDashboard latency over HTTP (uvicorn, 127.0.0.1), run {run_id}: {n_events:,} events, {n_users} users ({how})")
    print(f"{'endpoint':48s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'bytes':>9s}")
    print("-" * 85)
    for name, p50, p95, mx, size in rows:
        flag = "" if p95 < 150 else "  > 150 ms target"
        print(f"{name:48s} {p50:8.1f} {p95:8.1f} {mx:8.1f} {size:9,d}{flag}")
    print(f"(first items-by-popularity request, cold cache: {cold_pop:.0f} ms; {args.repeat} requests per row)")


if __name__ == "__main__":
    main()
