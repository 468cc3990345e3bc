"""Throughput of the LLM runtime: how close concurrency gets to its ideal.

Against a ScriptedLLMServer with a fixed per-call latency L, a client with
concurrency C can at best do C / L calls per second; efficiency is achieved
calls/s divided by that. With ``--embedded`` it also measures the embedded
Gemma server's generated tokens per second at 1 and 4 concurrent requests.

    .venv/bin/python benchmarks/bench_llm_client.py [--latency-ms 50] [--calls 320] [--embedded]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from recworld.llm import LLMConfig, LLMRequest, LLMRuntime
from recworld.llm.testing import ScriptedLLMServer


@dataclass
class Args:
    latency_ms: float = 50.0
    calls: int = 320
    concurrency: tuple[int, ...] = (1, 4, 16, 32)
    embedded: bool = False
    embedded_tokens: int = 64
    server_process: bool = False


def _serve(latency: float, urls: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    with ScriptedLLMServer(latency_s=latency) as srv:
        urls.put(srv.base_url)
        stop.wait()


@contextmanager
def scripted_server(latency: float, server_process: bool) -> Iterator[str]:
    """A ScriptedLLMServer's base_url, in this process or a child process.

    A child process keeps the fake server off the client's GIL, but on a
    2-core machine the extra process contends for CPU and measured worse.
    """
    if not server_process:
        with ScriptedLLMServer(latency_s=latency) as srv:
            yield srv.base_url
        return
    ctx = mp.get_context("spawn")
    urls, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(latency, urls, stop), daemon=True)
    proc.start()
    try:
        yield urls.get(timeout=60)
    finally:
        stop.set()
        proc.join(10)


def bench_scripted(args: Args) -> None:
    latency = args.latency_ms / 1000.0
    where = "in a child process" if args.server_process else "in this process"
    print(f"ScriptedLLMServer ({where}), fixed latency {args.latency_ms:g} ms, chat completions, cache off")
    print(f"{'concurrency':>11} {'calls':>6} {'seconds':>8} {'calls/s':>8} {'ideal/s':>8} {'efficiency':>10}")
    with scripted_server(latency, args.server_process) as url:
        for c in args.concurrency:
            config = LLMConfig(backend="openai", base_url=url, cache_path=None, concurrency=c, timeout_s=10)
            n = max(c * 4, min(args.calls, int(c / latency * 2)))  # about 2 s of ideal work per row
            with LLMRuntime(config) as rt:
                rt.complete_many([LLMRequest([{"role": "user", "content": "warm"}])] * c)  # open connections
                reqs = [LLMRequest([{"role": "user", "content": f"page {i}"}]) for i in range(n)]
                t0 = time.perf_counter()
                results = rt.complete_many(reqs)
                dt = time.perf_counter() - t0
            assert not any(r.fell_back for r in results)
            ideal = c / latency
            print(f"{c:>11} {n:>6} {dt:>8.2f} {n / dt:>8.1f} {ideal:>8.1f} {n / dt / ideal:>10.3f}")


def bench_embedded(args: Args) -> None:
    print(f"\nEmbedded Gemma 3 270M (xllamacpp), {args.embedded_tokens} tokens per request, cache off")
    print(f"{'concurrent':>10} {'requests':>8} {'seconds':>8} {'tokens out':>10} {'tok/s':>8}")
    for c in (1, 4):
        config = LLMConfig(backend="embedded", cache_path=None, concurrency=c, n_parallel=max(c, 1), max_tokens=args.embedded_tokens, temperature=0.8)
        with LLMRuntime(config) as rt:
            rt.start()
            rt.complete(LLMRequest([{"role": "user", "content": "warm up"}], max_tokens=4))
            n = c * 2
            reqs = [LLMRequest([{"role": "user", "content": f"Review of movie number {i}:"}]) for i in range(n)]
            t0 = time.perf_counter()
            results = rt.complete_many(reqs)
            dt = time.perf_counter() - t0
        tokens = sum(r.tokens_out for r in results)
        print(f"{c:>10} {n:>8} {dt:>8.2f} {tokens:>10} {tokens / dt:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=Args.latency_ms)
    parser.add_argument("--calls", type=int, default=Args.calls)
    parser.add_argument("--embedded", action="store_true", help="also measure the embedded model's tokens/s")
    parser.add_argument("--embedded-tokens", type=int, default=Args.embedded_tokens)
    parser.add_argument("--server-process", action="store_true", help="run the scripted server in a child process")
    ns = parser.parse_args()
    args = Args(latency_ms=ns.latency_ms, calls=ns.calls, embedded=ns.embedded, embedded_tokens=ns.embedded_tokens, server_process=ns.server_process)
    bench_scripted(args)
    if args.embedded:
        bench_embedded(args)


if __name__ == "__main__":
    main()
