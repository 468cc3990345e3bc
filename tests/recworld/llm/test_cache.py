"""The SQLite response cache: keys, persistence, replay with zero server calls, two processes."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from pydantic import BaseModel

from recworld.llm import LLMRequest, ResponseCache, cache_key
from recworld.llm.cache import CachedResponse
from recworld.llm.testing import Fault


class Choice(BaseModel):
    watch: bool


BASE = dict(model="m", api_mode="chat", messages=[{"role": "user", "content": "hi"}], temperature=0.7, max_tokens=64, schema=None, seed=1, purpose="decide")


def test_key_covers_every_input():
    k = cache_key(**BASE)
    assert k == cache_key(**dict(BASE)) and len(k) == 64
    variants = [
        dict(model="n"),
        dict(api_mode="completion"),
        dict(messages=[{"role": "user", "content": "ho"}]),
        dict(temperature=0.0),
        dict(max_tokens=65),
        dict(schema={"type": "object"}),
        dict(seed=2),
        dict(purpose="post"),
    ]
    keys = {cache_key(**{**BASE, **v}) for v in variants}
    assert len(keys) == len(variants) and k not in keys


def test_roundtrip_and_persistence(tmp_path: Path):
    path = tmp_path / "sub" / "cache.db"
    cache = ResponseCache(path)
    cache.put_many([("k1", "m", "decide", CachedResponse("text", 3, 4))])
    cache.close()
    again = ResponseCache(path)
    assert again.get("k1") == CachedResponse("text", 3, 4)
    assert again.get("nope") is None and len(again) == 1
    assert again._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def _writer(path: str, tag: str, n: int) -> None:
    cache = ResponseCache(path)
    for i in range(n):
        cache.put_many([(f"{tag}-{i}", "m", "p", CachedResponse(f"{tag}{i}", i, i))])
    cache.close()


def test_two_processes_write_safely(tmp_path: Path):
    path = str(tmp_path / "shared.db")
    ResponseCache(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, tag, 150)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = ResponseCache(path)
    assert len(cache) == 300 and cache.get("b-149") == CachedResponse("b149", 149, 149)
    cache.close()


def test_replay_from_cache_makes_zero_server_calls(server, make_runtime, tmp_path: Path):
    server.script = lambda req: '{"watch": true}'
    db = str(tmp_path / "llm.db")
    reqs = [LLMRequest([{"role": "user", "content": f"page {i}"}], json_schema=Choice, user_id=i) for i in range(6)]
    first, _ = make_runtime(cache_path=db)
    originals = first.complete_many(reqs)
    first.close()
    assert server.request_count == 6 and not any(r.cached for r in originals)

    second, records = make_runtime(cache_path=db)
    replay = second.complete_many(reqs)
    assert server.request_count == 6  # nothing new reached the server
    assert all(r.cached and r.parsed == Choice(watch=True) for r in replay)
    assert [r.text for r in replay] == [r.text for r in originals]
    assert [r.tokens_out for r in replay] == [r.tokens_out for r in originals]
    assert len(records) == 6 and all(rec.cached and rec.retries == 0 for rec in records)
    assert second.totals.cached == 6 and second.totals.tokens == 0


def test_fallbacks_are_not_cached(server, make_runtime, tmp_path: Path):
    rt, _ = make_runtime(cache_path=str(tmp_path / "llm.db"), max_retries=0)
    server.inject(Fault.http(500))
    assert rt.complete(LLMRequest([{"role": "user", "content": "x"}])).fell_back
    server.script = lambda req: "not json"
    assert rt.complete(LLMRequest([{"role": "user", "content": "y"}], json_schema=Choice)).fell_back
    assert len(rt._cache) == 0  # type: ignore[arg-type]
    server.script = lambda req: "fine"
    res = rt.complete(LLMRequest([{"role": "user", "content": "x"}]))
    assert res.text == "fine" and not res.cached
    assert rt.complete(LLMRequest([{"role": "user", "content": "x"}])).cached
