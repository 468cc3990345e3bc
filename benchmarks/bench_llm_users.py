"""LLM users: calls and tokens per page, simulator efficiency, and embedded-model throughput.

1. ``llm`` brain against a ScriptedLLMServer (own process, fixed latency L):
   LLM calls per user page, prompt+completion tokens per page (estimated as
   characters / 4: the server reports no usage), and simulator efficiency =
   achieved calls/s ÷ (concurrency ÷ L) for one peak page-batch of many users
   at concurrency 16 (prompt building, memory retrieval, parsing included).
2. ``hybrid`` brain on the embedded Gemma 3 270M (``--embedded-ticks N``):
   user pages per minute, LLM calls, LLM seconds, and the LLM time of a
   943-user, 168-tick run extrapolated from N ticks.

    .venv/bin/python benchmarks/bench_llm_users.py [--users 943] [--ticks 6] [--latency-ms 50] [--embedded-ticks 0]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from dataclasses import dataclass

import numpy as np

from recworld.agents.brains.llm import build_brain_from_config
from recworld.agents.population import MovieLensPopulation
from recworld.agents.recommenders import make_recommender
from recworld.catalog import Catalog
from recworld.data import item_quality, load_movielens
from recworld.world import World

DECISION = json.dumps({"watch": [2, 5], "ratings": [4, 3], "feeling": "A decent page with a couple of picks for me.", "leave": False, "instruction": ""})


@dataclass
class Args:
    users: int = 943
    ticks: int = 6
    latency_ms: float = 50.0
    concurrency: int = 16
    peak_users: int = 320
    embedded_ticks: int = 0


def _script(req) -> str:
    return DECISION if req.json_schema is not None else 'Not bad at all."'


def _serve(latency: float, urls: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    from recworld.llm.testing import ScriptedLLMServer

    with ScriptedLLMServer(_script, latency_s=latency, usage=False) as srv:
        urls.put(srv.base_url)
        stop.wait()


def _world(ml, catalog, brain, n: int, seed: int = 0) -> World:
    import copy

    cat = copy.deepcopy(catalog)
    w = World(cat, MovieLensPopulation(ml, cat, n_users=n, seed=seed), brain, make_recommender("linucb", {}), seed=seed)
    w.add_layer(brain)
    return w


def _timed(brain) -> list[tuple[int, float]]:
    bursts: list[tuple[int, float]] = []
    rt = brain.runtime
    orig = rt.complete_many

    def timed(reqs):
        t0 = time.perf_counter()
        out = orig(reqs)
        bursts.append((len(reqs), time.perf_counter() - t0))
        return out

    rt.complete_many = timed
    return bursts


def scripted(args: Args, ml, catalog) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    urls: mp.Queue = ctx.Queue()
    stop = ctx.Event()
    proc = ctx.Process(target=_serve, args=(args.latency_ms / 1000.0, urls, stop), daemon=True)
    proc.start()
    try:
        url = urls.get(timeout=60)
        llm = {"backend": "openai", "base_url": url, "model": "scripted", "cache_path": None, "concurrency": args.concurrency}
        brain = build_brain_from_config("llm", {}, llm, seed=0)
        world = _world(ml, catalog, brain, args.users)
        bursts = _timed(brain)
        t0 = time.perf_counter()
        world.run(args.ticks)
        wall = time.perf_counter() - t0
        s = dict(brain.stats)
        pages = s["pages"]
        # Peak page-batch: many users on a page at once, one burst.
        users = np.arange(min(args.peak_users, world.n_users))
        slates = world.recommender.recommend(users, world.config.slate_size, world.context())
        t1 = time.perf_counter()
        brain.decide(world, users, slates)
        peak = time.perf_counter() - t1
        brain.close()
    finally:
        stop.set()
        proc.join(timeout=10)
    ideal = args.concurrency / (args.latency_ms / 1000.0)
    return {
        "pages": pages,
        "calls": s["calls"],
        "calls_per_page": s["calls"] / max(pages, 1),
        "tokens_per_page": (s["tokens_in"] + s["tokens_out"]) / max(pages, 1),
        "tokens_in_per_page": s["tokens_in"] / max(pages, 1),
        "peak_calls": int(users.size),
        "peak_s": peak,
        "efficiency_peak": (users.size / peak) / ideal,
        "efficiency_bursts": sum(np.ceil(n / args.concurrency) * args.latency_ms / 1000.0 for n, _ in bursts) / max(sum(t for _, t in bursts), 1e-9),
        "run_wall_s": wall,
    }


def embedded(args: Args, ml, catalog) -> dict[str, float]:
    brain = build_brain_from_config("hybrid", {}, {"cache_path": None}, seed=0)
    world = _world(ml, catalog, brain, args.users)
    from recworld.agents.social import SocialLayer

    layer = SocialLayer.from_config(world, {}, brain=brain, seed=0)
    world.add_layer(layer)
    bursts = _timed(brain)
    brain.runtime.start()
    t0 = time.perf_counter()
    world.run(args.embedded_ticks)
    wall = time.perf_counter() - t0
    brain.close()
    s = brain.stats
    llm_s = sum(t for _, t in bursts)
    return {
        "ticks": args.embedded_ticks,
        "pages": s["pages"],
        "calls": s["calls"],
        "fallbacks": s["fallbacks"],
        "templated": s["templated"],
        "wall_s": wall,
        "llm_s": llm_s,
        "pages_per_min": s["pages"] / (wall / 60.0),
        "s_per_call": llm_s / max(s["calls"], 1),
        "demo_llm_min": llm_s / max(args.embedded_ticks, 1) * 168 / 60.0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f, v in Args().__dict__.items():
        p.add_argument(f"--{f.replace('_', '-')}", type=type(v), default=v)
    args = Args(**vars(p.parse_args()))
    ml = load_movielens()
    q, _ = item_quality(ml)
    catalog = Catalog.build(ml.items, quality=q)
    r = scripted(args, ml, catalog)
    print(
        f"\nLLM users, scripted server (latency {args.latency_ms:g} ms, concurrency {args.concurrency}), {args.users} users x {args.ticks} ticks, {r['pages']} pages"
    )
    print(f"| {'metric':<42} | {'RecWorld llm':>12} | {'target':>7} | {'RecAgent':>9} | {'Agent4Rec':>9} |")
    print(f"|{'-' * 44}|{'-' * 14}|{'-' * 9}|{'-' * 11}|{'-' * 11}|")
    print(f"| {'LLM calls per user page':<42} | {r['calls_per_page']:>12.2f} | {'<= 1':>7} | {'>= 4':>9} | {'2':>9} |")
    print(f"| {'tokens (prompt+completion) per page':<42} | {r['tokens_per_page']:>12.0f} | {'<= 800':>7} | {'':>9} | {'~2100':>9} |")
    print(f"| {'simulator efficiency, peak page-batch':<42} | {r['efficiency_peak']:>12.2f} | {'>= 0.9':>7} | {'':>9} | {'':>9} |")
    print(f"| {'  (peak batch: calls, seconds)':<42} | {r['peak_calls']:>5} {r['peak_s']:>5.2f}s | {'':>7} | {'':>9} | {'':>9} |")
    print(f"| {'efficiency within all run bursts (ideal/actual)':<42} | {r['efficiency_bursts']:>12.2f} | {'':>7} | {'':>9} | {'':>9} |")
    if args.embedded_ticks:
        e = embedded(args, ml, catalog)
        print(f"\nHybrid users on the embedded Gemma 3 270M, {args.users} users x {e['ticks']} ticks (default params, social on)")
        print("| metric | value |\n|---|---|")
        for k in ("pages", "calls", "fallbacks", "templated", "wall_s", "llm_s", "pages_per_min", "s_per_call", "demo_llm_min"):
            v = e[k]
            print(f"| {k} | {v:.2f} |" if isinstance(v, float) else f"| {k} | {v} |")


if __name__ == "__main__":
    main()
