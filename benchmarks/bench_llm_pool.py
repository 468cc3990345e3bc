"""LLM server pools: throughput with 1, 2 and 3 servers, and one tick of many ``llm`` users.

The servers are ScriptedLLMServers on 127.0.0.1 (one child process each, off
the client's GIL), each modelling a real inference server: a fixed latency per
call and a throughput cap (``max_concurrency``, vLLM's ``--max-num-seqs``), so
one server does at most ``cap / latency`` calls per second and queues the rest.

1. Pool scaling: the same client (``concurrency`` = 2 x 3 servers x cap; the 2
   is ``--concurrency-factor``) sends the same burst to 1, 2 and 3 servers
   (``llm.base_urls``), and to 3 servers of which one dies a third of the way
   through its share. Target: 3 servers >= 2.7x one. Twice the pool's slots in flight keep
   each server's next requests queued while the client handles the answers
   it just got (at exactly the slots, each server idles for that turnaround).
2. One tick of N ``llm``-brain users, all due at once (a peak tick), against a
   pool: pages per minute, prompt+completion tokens per page (characters / 4,
   as the runtime estimates when a server reports no usage), and client
   efficiency = achieved calls/s / (pool capacity = servers x cap / latency).

    .venv/bin/python benchmarks/bench_llm_pool.py [--latency-ms 300] [--cap 8] [--calls 480] [--concurrency-factor 2]
        [--users 1000] [--tick-latency-ms 500] [--tick-cap 32] [--tick-servers 3] [--skip-scaling] [--skip-tick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Args:
    latency_ms: float = 300.0
    cap: int = 8
    calls: int = 480
    concurrency_factor: float = 2.0
    users: int = 1000
    tick_latency_ms: float = 500.0
    tick_cap: int = 32
    tick_servers: int = 3
    leave_share: float = 0.5
    recommender: str = "popularity"
    skip_scaling: bool = False
    skip_tick: bool = False


def decide_script(req, leave_share: float = 0.5) -> str:
    """A deterministic 'model' for the ``llm`` brain: the answer is a function of the prompt.

    Watches one or two of the first ten items and, for a ``leave_share`` of
    the prompts (by their hash), leaves after the page.
    """
    if req.json_schema is None:
        return 'Fine."'
    h = hashlib.sha256(req.prompt_text.encode()).digest()
    watch = sorted({1 + h[0] % 10, 1 + h[1] % 10})
    leave = h[4] / 256.0 < leave_share
    return json.dumps({"watch": watch, "ratings": [1 + h[3] % 5] * len(watch), "feeling": "A fair page.", "leave": leave, "instruction": ""})


def _serve(latency: float, cap: int, script: str, leave_share: float, crash_after: int | None, urls: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    from functools import partial

    from recworld.llm.testing import ScriptedLLMServer, echo_script

    fn = partial(decide_script, leave_share=leave_share) if script == "decide" else echo_script
    with ScriptedLLMServer(fn, latency_s=latency, max_concurrency=cap, usage=False) as srv:
        if crash_after is not None:
            srv.crash_after(crash_after)
        urls.put(srv.base_url)
        stop.wait()
        urls.put((srv.request_count, srv.answered, srv.max_active))


@contextmanager
def scripted_pool(
    n: int, latency: float, cap: int, script: str = "echo", leave_share: float = 0.5, crash: dict[int, int] | None = None
) -> Iterator[tuple[list[str], list]]:
    """``n`` capped ScriptedLLMServers, one child process each; yields their URLs and, after, their counts.

    One process per server, like real servers: several server threads in one
    process would queue on its GIL and cap the pool below its capacity.
    """
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    queues = [ctx.Queue() for _ in range(n)]
    procs = [ctx.Process(target=_serve, args=(latency, cap, script, leave_share, (crash or {}).get(i), q, stop), daemon=True) for i, q in enumerate(queues)]
    for p in procs:
        p.start()
    counts: list = []
    try:
        yield [q.get(timeout=60) for q in queues], counts
    finally:
        stop.set()
        try:
            counts.extend(q.get(timeout=10) for q in queues)
        finally:
            for p in procs:
                p.join(10)


# ------------------------------------------------------------------ 1. scaling
def bench_scaling(args: Args) -> float:
    from recworld.llm import LLMConfig, LLMRequest, LLMRuntime

    latency, cap = args.latency_ms / 1000.0, args.cap
    conc = max(1, round(args.concurrency_factor * 3 * cap))
    print(f"\nPool scaling: ScriptedLLMServers at {args.latency_ms:g} ms per call, at most {cap} calls at once each (queue beyond);")
    print(f"one client, concurrency {conc}, {args.calls} chat calls, cache off")
    print(
        f"| {'servers':<24} | {'seconds':>7} | {'calls/s':>7} | {'capacity/s':>10} | {'efficiency':>10} | {'vs 1 server':>11} | {'fallbacks':>9} | calls per server |"
    )
    print(f"|{'-' * 26}|{'-' * 9}|{'-' * 9}|{'-' * 12}|{'-' * 12}|{'-' * 13}|{'-' * 11}|------------------|")
    base = 0.0
    ratio3 = 0.0
    rows = [(1, None), (2, None), (3, None), (3, 1)]
    for n, dead in rows:
        crash = {dead: args.calls // 9} if dead is not None else None
        with scripted_pool(n, latency, cap, crash=crash) as (urls, counts):
            config = LLMConfig(backend="openai", base_urls=urls, model="scripted", cache_path=None, concurrency=conc, timeout_s=30, breaker_cooldown_s=600)
            with LLMRuntime(config) as rt:
                rt.complete_many([LLMRequest([{"role": "user", "content": f"warm {i}"}]) for i in range(conc)])  # open connections
                reqs = [LLMRequest([{"role": "user", "content": f"page {i}"}]) for i in range(args.calls)]
                t0 = time.perf_counter()
                results = rt.complete_many(reqs)
                dt = time.perf_counter() - t0
                stats = rt.endpoint_stats()
        rate = args.calls / dt
        capacity = min(conc, n * cap) / latency
        if n == 1:
            base = rate
        if n == 3 and dead is None:
            ratio3 = rate / base
        label = f"{n}" if dead is None else f"{n}, one dies at request {args.calls // 9}"
        fallbacks = sum(r.fell_back for r in results)
        split = "/".join(str(s.answered) for s in stats)
        print(
            f"| {label:<24} | {dt:>7.2f} | {rate:>7.1f} | {capacity:>10.1f} | {rate / capacity:>10.2f} | {rate / base:>10.2f}x | {fallbacks:>9} | {split} (incl. warm-up) |"
        )
    print(f"\n3 servers vs 1: {ratio3:.2f}x (target >= 2.7x)")
    return ratio3


# ------------------------------------------------------------------ 2. one tick of many llm users
def _cpu_s() -> float:
    """CPU seconds of this process, all threads (the runtime's event loop included)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bench_tick(args: Args) -> dict[str, float]:
    import copy

    import numpy as np

    from recworld.agents.brains.llm import build_brain_from_config
    from recworld.agents.population import SampledPopulation, item_quality
    from recworld.agents.recommenders import make_recommender
    from recworld.catalog import Catalog
    from recworld.data import load_movielens
    from recworld.world import World

    ml = load_movielens()
    q, _ = item_quality(ml)
    catalog = Catalog.build(ml.items, quality=q)
    # Compile the world's kernels first (numba caches them on disk, but a
    # fresh checkout compiles on its first page): the tick measures serving.
    from recworld.agents.brains import UtilityBrain

    warm_cat = copy.deepcopy(catalog)
    warm = World(warm_cat, SampledPopulation(warm_cat, 20, seed=1), UtilityBrain(), make_recommender(args.recommender, {}), seed=1)
    warm.users.next_return[:] = warm.tick
    warm.step()
    latency, cap, n_srv = args.tick_latency_ms / 1000.0, args.tick_cap, args.tick_servers
    conc = max(1, round(args.concurrency_factor * n_srv * cap))  # queue depth at the servers: see the scaling part
    t_build = time.perf_counter()
    cat = copy.deepcopy(catalog)
    with scripted_pool(n_srv, latency, cap, script="decide", leave_share=args.leave_share) as (urls, counts):
        llm = {"backend": "openai", "base_urls": urls, "model": "scripted", "cache_path": None, "concurrency": conc, "timeout_s": 60.0}
        brain = build_brain_from_config("llm", {}, llm, seed=0)
        world = World(cat, SampledPopulation(cat, args.users, seed=0), brain, make_recommender(args.recommender, {}), seed=0)
        world.add_layer(brain)
        build_s = time.perf_counter() - t_build
        rt = brain.runtime
        bursts: list[tuple[int, float]] = []
        orig = rt.complete_many

        def timed(reqs):
            t0 = time.perf_counter()
            out = orig(reqs)
            bursts.append((len(reqs), time.perf_counter() - t0))
            return out

        rt.complete_many = timed  # type: ignore[method-assign]
        world.users.next_return[:] = world.tick  # a peak tick: every user is due now
        t0, c0 = time.perf_counter(), _cpu_s()
        world.step()
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
        s = dict(brain.stats)
        totals = rt.totals
        per_server = [totals.endpoints.get(u, 0) for u in urls]
        brain.close()
    pages, calls = s["pages"], s["calls"]
    capacity = n_srv * cap / latency
    llm_s = sum(t for _, t in bursts)
    ideal_in_bursts = sum(float(np.ceil(n / (n_srv * cap))) * latency for n, _ in bursts)
    return {
        "users": args.users,
        "servers": n_srv,
        "cap": cap,
        "latency_ms": args.tick_latency_ms,
        "build_s": build_s,
        "pages": pages,
        "calls": calls,
        "fallbacks": s["fallbacks"],
        "bursts": len(bursts),
        "wall_s": wall,
        "pages_per_min": pages / wall * 60.0,
        "tokens_per_page": (s["tokens_in"] + s["tokens_out"]) / max(pages, 1),
        "tokens_in_per_page": s["tokens_in"] / max(pages, 1),
        "capacity": capacity,
        "efficiency": (calls / wall) / capacity,
        "efficiency_bursts": ideal_in_bursts / max(llm_s, 1e-9),
        "llm_share": llm_s / wall,
        "cpu_ms_per_page": cpu / max(pages, 1) * 1000.0,
        "cpu_share": cpu / wall,
        "per_server": "/".join(str(c) for c in per_server),
        "server_max_active": "/".join(str(c[2]) for c in counts),
    }


def print_tick(r: dict[str, float]) -> None:
    print(
        f"\nOne tick of {r['users']:,} llm-brain users, all due (a peak tick), {r['servers']} ScriptedLLMServers at "
        f"{r['latency_ms']:g} ms per call, at most {r['cap']} calls at once each (capacity {r['capacity']:.0f} calls/s)"
    )
    print("| metric | value |\n|---|---:|")
    rows = [
        ("world build (s)", f"{r['build_s']:.1f}"),
        ("user pages decided (one LLM call each)", f"{r['pages']:,}"),
        ("page rounds (bursts of concurrent calls)", f"{r['bursts']}"),
        ("fallbacks", f"{r['fallbacks']}"),
        ("tick wall time (s)", f"{r['wall_s']:.1f}"),
        ("**pages per minute**", f"**{r['pages_per_min']:,.0f}**"),
        ("prompt + completion tokens per page", f"{r['tokens_per_page']:.0f} ({r['tokens_in_per_page']:.0f} in)"),
        ("**client efficiency** (calls/s / pool capacity)", f"**{r['efficiency']:.2f}**"),
        ("  within bursts (ideal / actual LLM time)", f"{r['efficiency_bursts']:.2f}"),
        ("  share of the tick spent waiting on the LLM", f"{r['llm_share']:.2f}"),
        ("client CPU per page, all threads (ms)", f"{r['cpu_ms_per_page']:.1f}"),
        ("  cores the client process got (CPU s / wall s)", f"{r['cpu_share']:.2f}"),
        ("  => client ceiling on one free core (pages/min, arithmetic)", f"{60000.0 / r['cpu_ms_per_page']:,.0f}"),
        ("calls answered per server", r["per_server"]),
        ("most calls served at once, per server", r["server_max_active"]),
    ]
    for k, v in rows:
        print(f"| {k} | {v} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f, v in Args().__dict__.items():
        flag = f"--{f.replace('_', '-')}"
        if isinstance(v, bool):
            p.add_argument(flag, action="store_true")
        else:
            p.add_argument(flag, type=type(v), default=v)
    args = Args(**vars(p.parse_args()))
    if not args.skip_scaling:
        bench_scaling(args)
    if not args.skip_tick:
        print_tick(bench_tick(args))


if __name__ == "__main__":
    main()
