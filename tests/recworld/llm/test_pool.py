"""LLM server pools: least-outstanding balancing, a breaker per server, failover, recovery, accounting.

Unit tests drive :class:`EndpointPool` with a fake clock; the rest run a real
LLMRuntime against three ScriptedLLMServers on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from recworld.llm import LLMConfig, LLMRequest, LLMRuntime
from recworld.llm.breaker import CircuitBreaker
from recworld.llm.pool import Endpoint, EndpointPool, endpoint_label
from recworld.llm.records import ERROR_CIRCUIT_OPEN, LLMCallRecord, LLMResult
from recworld.llm.testing import Fault, ScriptedLLMServer


def ask(text: str = "page") -> LLMRequest:
    return LLMRequest([{"role": "user", "content": text}])


# ------------------------------------------------------------------ unit: picking
class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _pool(n: int, clock: _Clock, failures: int = 1, cooldown_s: float = 10.0) -> EndpointPool:
    return EndpointPool([Endpoint(i, f"http://s{i}/v1", object(), CircuitBreaker(failures, cooldown_s, clock)) for i in range(n)])  # type: ignore[arg-type]


def test_pick_least_outstanding_then_first_listed():
    pool = _pool(3, _Clock())
    a, b, c = pool.endpoints
    assert pool.pick() == (a, False)  # all idle: the first listed
    a.in_flight = 2
    assert pool.pick() == (b, False)
    b.in_flight = 1
    c.in_flight = 1
    assert pool.pick() == (b, False)  # tie at 1: b is listed before c
    assert pool.pick(exclude={1}) == (c, False)
    assert pool.pick(exclude={0, 1, 2}) is None


def test_pick_skips_open_breakers_and_sends_the_probe_first():
    clock = _Clock()
    pool = _pool(3, clock, failures=1, cooldown_s=5.0)
    a, b, c = pool.endpoints
    b.breaker.record_failure()  # open
    c.in_flight = 4
    assert pool.pick() == (a, False)
    a.in_flight = 9
    assert pool.pick() == (c, False)  # b refuses even though it is idle
    clock.now = 5.0
    # Cooldown over: b's probe goes first, whatever the others' load, and only once.
    assert pool.pick() == (b, True)
    assert b.breaker.state == "half_open" and not b.breaker.available
    assert pool.pick() == (c, False)
    b.breaker.record_success()
    assert pool.pick() == (b, False) and b.breaker.state == "closed"
    for ep in pool.endpoints:
        ep.breaker.record_failure()
    assert pool.pick() is None and not pool.any_available()


def test_endpoint_label_drops_credentials_and_query():
    assert endpoint_label("http://alice:s3cret@10.0.0.1:8000/v1/?key=x") == "http://10.0.0.1:8000/v1"
    assert endpoint_label("https://example.org/v1") == "https://example.org/v1"
    assert endpoint_label(None) == "https://api.openai.com/v1"


# ------------------------------------------------------------------ three real servers
@pytest.fixture
def servers() -> Iterator[list[ScriptedLLMServer]]:
    srvs = [ScriptedLLMServer().start() for _ in range(3)]
    try:
        yield srvs
    finally:
        for s in srvs:
            s.stop()


@pytest.fixture
def make_pool_runtime(servers) -> Iterator[Callable[..., tuple[LLMRuntime, list[LLMCallRecord]]]]:
    made: list[LLMRuntime] = []

    def make(**overrides: Any) -> tuple[LLMRuntime, list[LLMCallRecord]]:
        fields: dict[str, Any] = dict(
            backend="openai",
            base_urls=[s.base_url for s in servers],
            model="scripted",
            cache_path=None,
            backoff_s=0.01,
            max_backoff_s=1.0,
            timeout_s=2.0,
        )
        fields.update(overrides)
        records: list[LLMCallRecord] = []
        rt = LLMRuntime(LLMConfig(**fields), on_call=[records.append])
        made.append(rt)
        return rt, records

    yield make
    for rt in made:
        rt.close()


def check_accounting(rt: LLMRuntime, records: list[LLMCallRecord], results: list[LLMResult]) -> None:
    """Every HTTP request is counted once: per call (1 + retries) and per endpoint."""
    stats = rt.endpoint_stats()
    made_requests = [r for r in results if r.endpoint is not None]
    assert sum(1 + r.retries for r in made_requests) == sum(s.requests for s in stats)
    assert sum(s.answered + s.failed for s in stats) == sum(s.requests for s in stats)
    assert all(s.in_flight == 0 for s in stats)
    assert sum(rt.totals.endpoints.values()) == len(made_requests)
    assert [r.endpoint for r in records] == [r.endpoint for r in results]


def test_calls_spread_least_outstanding_first(servers, make_pool_runtime):
    for s in servers:
        s.latency_s = 0.05
    rt, records = make_pool_runtime(concurrency=9)
    results = rt.complete_many([ask(str(i)) for i in range(90)])
    assert [r.text for r in results] == [f"echo: {i}" for i in range(90)]
    # 9 slots over 3 equal servers: 3 in flight each, never more.
    assert [s.max_in_flight for s in servers] == [3, 3, 3]
    assert all(25 <= s.request_count <= 35 for s in servers)
    stats = rt.endpoint_stats()
    assert [st.endpoint for st in stats] == [s.base_url for s in servers]
    assert [st.requests for st in stats] == [s.request_count for s in servers]
    assert rt.totals.endpoints == {s.base_url: s.request_count for s in servers}
    check_accounting(rt, records, results)


def test_a_slow_server_gets_fewer_calls(servers, make_pool_runtime):
    # Least outstanding, not round robin: a slow (or queueing) server keeps its
    # slots busy longer, so it is picked less often.
    servers[0].latency_s = servers[1].latency_s = 0.02
    servers[2].latency_s = 0.3
    rt, records = make_pool_runtime(concurrency=6)
    results = rt.complete_many([ask(str(i)) for i in range(120)])
    assert not any(r.fell_back for r in results)
    fast = min(servers[0].request_count, servers[1].request_count)
    assert servers[2].request_count * 4 < fast
    check_accounting(rt, records, results)


def test_a_dead_server_costs_no_fallback(servers, make_pool_runtime):
    servers[0].go_down()
    rt, records = make_pool_runtime(concurrency=6, breaker_failures=2, breaker_cooldown_s=60)
    results = rt.complete_many([ask(str(i)) for i in range(30)])
    assert [r.fell_back for r in results] == [False] * 30
    assert [r.text for r in results] == [f"echo: {i}" for i in range(30)]
    assert {r.endpoint for r in results} <= {servers[1].base_url, servers[2].base_url}
    dead, *live = rt.endpoint_stats()
    assert dead.state == "open" and dead.times_opened == 1 and dead.answered == 0
    # Each refused attempt moved its call to a live server at once: one failover each.
    assert dead.failed == dead.requests == rt.totals.failovers == rt.totals.retries >= 2
    assert [st.state for st in live] == ["closed", "closed"]
    assert [st.requests for st in live] == [servers[1].request_count, servers[2].request_count]
    check_accounting(rt, records, results)


def test_a_server_killed_mid_burst_loses_nothing(servers, make_pool_runtime):
    for s in servers:
        s.latency_s = 0.05
    servers[1].crash_after(5)  # dies with its 5th request, others of its in flight
    rt, records = make_pool_runtime(concurrency=9, breaker_failures=2, breaker_cooldown_s=60)
    results = rt.complete_many([ask(str(i)) for i in range(90)])
    assert [r.fell_back for r in results] == [False] * 90
    assert [r.text for r in results] == [f"echo: {i}" for i in range(90)]
    stats = rt.endpoint_stats()
    assert stats[1].state == "open" and stats[1].failed >= 2
    # The dead server answered what it answered before dying, the rest moved.
    assert stats[1].answered == servers[1].answered <= 4
    for i in (0, 2):
        assert stats[i].requests == stats[i].answered == servers[i].request_count == servers[i].answered
    assert rt.totals.endpoints == {s.base_url: st.answered for s, st in zip(servers, stats) if st.answered}
    assert rt.totals.fallbacks == 0 and rt.totals.failovers == stats[1].failed
    check_accounting(rt, records, results)


def test_breaker_recovers_per_server_with_one_probe(servers, make_pool_runtime):
    servers[0].go_down()
    rt, records = make_pool_runtime(concurrency=1, breaker_failures=1, breaker_cooldown_s=0.3)
    first = rt.complete(ask("a"))
    # Refused by the first listed server, whose breaker opens; answered by the next.
    assert first.text == "echo: a" and first.failovers == 1 and first.endpoint == servers[1].base_url
    assert [st.state for st in rt.endpoint_stats()] == ["open", "closed", "closed"]
    rt.complete_many([ask(str(i)) for i in range(4)])
    assert rt.endpoint_stats()[0].requests == 1  # no request while open
    time.sleep(0.35)
    # Half-open: still dead, the probe fails and re-opens it; its call moves, not a fallback.
    probe = rt.complete(ask("probe 1"))
    assert not probe.fell_back and probe.failovers == 1 and probe.endpoint == servers[1].base_url
    st = rt.endpoint_stats()[0]
    assert st.state == "open" and st.times_opened == 2 and st.requests == 2
    servers[0].come_up()
    assert rt.complete(ask("still open")).endpoint == servers[1].base_url
    assert rt.endpoint_stats()[0].requests == 2
    time.sleep(0.35)
    # Back up: the probe goes to it first and closes its breaker; the others never opened.
    back = rt.complete(ask("probe 2"))
    assert back.endpoint == servers[0].base_url and back.failovers == 0 and back.text == "echo: probe 2"
    assert [(st.state, st.times_opened) for st in rt.endpoint_stats()] == [("closed", 2), ("closed", 0), ("closed", 0)]
    assert servers[0].request_count == 1 and rt.totals.fallbacks == 0
    assert [r.endpoint for r in records] == [servers[1].base_url] * 7 + [servers[0].base_url]


def test_every_server_down_falls_back_at_once(servers, make_pool_runtime):
    for s in servers:
        s.go_down()
    rt, records = make_pool_runtime(concurrency=1, max_retries=1, breaker_failures=1, breaker_cooldown_s=60)
    res = rt.complete(ask())
    # One attempt per server, then (max_retries=1) one retry after a backoff at the
    # last one, whose breaker was still closed; then every breaker is open.
    assert res.fell_back and res.error == "connection error" and res.retries == 3 and res.failovers == 2
    assert [st.state for st in rt.endpoint_stats()] == ["open"] * 3
    t0 = time.perf_counter()
    again = rt.complete(ask())
    assert again.error == ERROR_CIRCUIT_OPEN and again.endpoint is None and again.retries == 0
    assert time.perf_counter() - t0 < 0.1
    assert records[-1].endpoint is None and records[0].endpoint == servers[2].base_url


def test_rate_limited_server_moves_the_call_without_waiting(servers, make_pool_runtime):
    servers[0].inject(Fault.rate_limit(retry_after=5))
    rt, _ = make_pool_runtime(concurrency=1)
    t0 = time.perf_counter()
    res = rt.complete(ask("x"))
    assert time.perf_counter() - t0 < 2.0  # not the 5 s Retry-After: another server answered
    assert res.text == "echo: x" and res.retries == 1 and res.failovers == 1
    assert res.endpoint == servers[1].base_url and not res.fell_back
    assert rt.endpoint_stats()[0].state == "closed"  # one failure, threshold 5


def test_client_errors_are_not_moved(servers, make_pool_runtime):
    servers[0].inject(Fault.http(400))
    rt, _ = make_pool_runtime(concurrency=1)
    res = rt.complete(ask())
    # A 400 is our request's fault: another server would refuse it too.
    assert res.fell_back and res.error == "HTTP 400" and res.retries == 0
    assert [s.request_count for s in servers] == [1, 0, 0]


def test_retries_back_off_only_when_every_server_failed(servers, make_pool_runtime):
    for s in servers:
        s.inject(Fault.http(503))
    rt, _ = make_pool_runtime(concurrency=1, max_retries=1, backoff_s=0.2)
    t0 = time.perf_counter()
    res = rt.complete(ask("y"))
    # Two failovers at once, one backoff, then the first listed server answers.
    assert res.text == "echo: y" and res.retries == 3 and res.failovers == 3
    assert res.endpoint == servers[0].base_url
    assert time.perf_counter() - t0 >= 0.2
    assert [s.request_count for s in servers] == [2, 1, 1]


# ------------------------------------------------------------------ a real run
def decide_by_prompt(req) -> str:
    """A deterministic 'model': the decision is a function of the prompt alone, like a cached answer."""
    import hashlib
    import json

    if req.json_schema is None:
        return 'Fine."'
    h = hashlib.sha256(req.prompt_text.encode()).digest()
    watch = sorted({1 + h[0] % 10, 1 + h[1] % 10})[: 1 + h[2] % 2]
    return json.dumps({"watch": watch, "ratings": [1 + h[3] % 5] * len(watch), "feeling": "", "leave": h[4] % 4 == 0, "instruction": ""})


@pytest.mark.slow
def test_llm_run_with_a_server_killed_mid_run_loses_nothing(small_scenario):
    """Three servers, ``llm`` brain, one server dies mid-run: same events as on one healthy server."""
    from sqlalchemy import func, select
    from tests_support import event_log_hash

    from recworld.events import EventType
    from recworld.scenarios.runner import run_scenario
    from recworld.storage import Event, LLMCall, TickMetrics, connect

    servers = [ScriptedLLMServer(decide_by_prompt, latency_s=0.01).start() for _ in range(3)]
    try:
        base = {"population.n_users": 80, "ticks": 12, "brain.kind": "llm", "recommender.name": "mf"}
        llm = {"backend": "openai", "model": "scripted", "cache_path": None, "concurrency": 6, "timeout_s": 2.0, "backoff_s": 0.01}
        pool = {**llm, "base_urls": [s.base_url for s in servers], "breaker_failures": 3, "breaker_cooldown_s": 600}
        servers[1].crash_after(12)
        runtimes: list[LLMRuntime] = []
        out = run_scenario(small_scenario(**base, llm=pool), progress=False, on_tick=lambda w: runtimes.append(w.brain.runtime))
        assert out.status == "completed"
        assert not servers[1].is_up and servers[1].answered >= 1  # it served, then died mid-run
        live_after_crash = [s.request_count for s in servers]
        ref = run_scenario(small_scenario(**base, llm={**llm, "base_url": servers[0].base_url}), progress=False)
        assert servers[0].request_count > live_after_crash[0]
    finally:
        for s in servers:
            s.stop()
    eng = connect(small_scenario().storage.url, create=False)
    # Which server answered does not change what users did.
    assert event_log_hash(eng, out.run_id) == event_log_hash(eng, ref.run_id)
    with eng.connect() as con:
        calls = con.execute(select(LLMCall.purpose, LLMCall.endpoint, LLMCall.retries, LLMCall.fell_back).where(LLMCall.run_id == out.run_id)).all()
        shown = con.execute(select(func.sum(TickMetrics.impressions)).where(TickMetrics.run_id == out.run_id)).scalar()
        fallbacks = con.execute(select(func.count()).where(Event.run_id == out.run_id, Event.type == int(EventType.FALLBACK))).scalar()
    rows = [c for c in calls if c.purpose == "decide"]
    # Every page decided by the LLM, one row per call, none fallen back.
    assert len(rows) * 10 == shown and fallbacks == 0 and not any(r.fell_back for r in rows)
    stats = runtimes[-1].endpoint_stats()
    urls = [s.base_url for s in servers]
    per_endpoint = {u: sum(1 for c in calls if c.endpoint == u) for u in urls}
    assert sum(per_endpoint.values()) == len(calls) and all(per_endpoint.values())
    # Exact accounting: each HTTP request once, per call (all purposes) and per server.
    assert sum(1 + c.retries for c in calls) == sum(st.requests for st in stats)
    assert [per_endpoint[u] for u in urls] == [st.answered for st in stats]
    for i in (0, 2):
        assert stats[i].state == "closed" and stats[i].failed == 0 and stats[i].requests == live_after_crash[i]
    dead = stats[1]
    assert dead.state == "open" and dead.times_opened == 1 and dead.failed >= 3
    assert dead.answered <= servers[1].answered <= dead.requests
    assert sum(c.retries for c in calls) == dead.failed  # each failure there moved one call, once
