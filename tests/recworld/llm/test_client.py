"""LLMRuntime against a real HTTP server with injected faults: results, retries, fallbacks, accounting."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from pydantic import BaseModel, ValidationError

from recworld.errors import ConfigError, LLMError
from recworld.llm import LLMConfig, LLMRequest, LLMRuntime
from recworld.llm.records import ERROR_CIRCUIT_OPEN
from recworld.llm.structured import schema_of
from recworld.llm.testing import Fault, ScriptedLLMServer, ScriptedRequest


class Decision(BaseModel):
    watch: list[int]
    reason: str


def ask(text: str = "page", **kw: object) -> LLMRequest:
    return LLMRequest([{"role": "user", "content": text}], **kw)  # type: ignore[arg-type]


def decide_script(req: ScriptedRequest) -> str:
    return 'Here you go: {"watch": [1, 3], "reason": "likes sci-fi"} hope it helps'


def test_structured_decision_is_parsed(server, make_runtime):
    server.script = decide_script
    rt, records = make_runtime()
    res = rt.complete(ask(json_schema=Decision, purpose="decide", user_id=7, tick=3))
    assert not res.fell_back and res.error is None
    assert res.parsed == Decision(watch=[1, 3], reason="likes sci-fi")
    assert json.loads(res.text) == {"watch": [1, 3], "reason": "likes sci-fi"}
    sent = server.requests[0]
    assert sent.is_chat
    assert sent.body["response_format"]["type"] == "json_schema"
    assert sent.json_schema == schema_of(Decision)
    [rec] = records
    assert (rec.tick, rec.user_id, rec.purpose, rec.model) == (3, 7, "decide", "scripted")
    assert rec.tokens_in == 1 and rec.tokens_out > 0 and rec.latency_ms > 0
    assert (rec.cached, rec.retries, rec.fell_back, rec.error) == (False, 0, False, None)


def test_completion_mode_renders_prompt_and_sends_json_schema(server, make_runtime):
    server.script = decide_script
    rt, _ = make_runtime(api_mode="completion")
    res = rt.complete(LLMRequest([{"role": "system", "content": "You are Ann."}, {"role": "user", "content": "Page"}], json_schema=Decision, stop=("\n\n",)))
    assert res.parsed == Decision(watch=[1, 3], reason="likes sci-fi")
    sent = server.requests[0]
    assert not sent.is_chat
    assert sent.body["prompt"] == "You are Ann.\n\nPage\n"
    assert sent.body["json_schema"] == schema_of(Decision)
    assert sent.body["stop"] == ["\n\n"]


RECOVERABLE = [
    pytest.param(Fault.http(500), id="http500"),
    pytest.param(Fault.rate_limit(retry_after=0.05), id="429"),
    pytest.param(Fault.unavailable(), id="503"),
    pytest.param(Fault.timeout(1.0), id="timeout"),
    pytest.param(Fault.reset(), id="reset"),
    pytest.param(Fault.close(), id="close"),
    pytest.param(Fault.malformed_json(), id="malformed"),
    pytest.param(Fault.truncated_json(), id="truncated"),
]


@pytest.mark.parametrize("fault", RECOVERABLE)
def test_one_fault_is_retried_and_counted(server, make_runtime, fault):
    server.script = decide_script
    rt, records = make_runtime(timeout_s=0.3)
    server.inject(fault)
    res = rt.complete(ask(json_schema=Decision))
    assert not res.fell_back and res.parsed is not None
    assert res.retries == 1 and records[0].retries == 1
    assert server.request_count == 2
    assert rt.totals.retries == 1 and rt.totals.fallbacks == 0


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.http(500), "HTTP 500"),
        (Fault.rate_limit(retry_after=0.01), "HTTP 429"),
        (Fault.unavailable(), "HTTP 503"),
        (Fault.timeout(1.0), "timeout"),
        (Fault.reset(), "connection error"),
        (Fault.close(), "connection error"),
        (Fault.malformed_json(), "bad response"),
        (Fault.truncated_json(), "bad response"),
    ],
    ids=["500", "429", "503", "timeout", "reset", "close", "malformed", "truncated"],
)
def test_persistent_fault_falls_back_after_max_retries(server, make_runtime, fault, error):
    # A short timeout only where the fault is a timeout: on a loaded machine a reset could take longer than 0.3 s to arrive.
    rt, records = make_runtime(timeout_s=0.3 if error == "timeout" else 5.0, max_retries=2)
    server.fail_next(3, fault)
    res = rt.complete(ask(json_schema=Decision))
    assert res.fell_back and res.parsed is None
    assert res.error is not None and res.error.startswith(error)
    assert res.retries == 2 and server.request_count == 3
    [rec] = records
    assert rec.fell_back and rec.retries == 2 and rec.error == res.error and not rec.cached
    assert rt.totals.fallbacks == 1 and rt.totals.calls == 1


def test_retry_after_is_honoured(server, make_runtime):
    rt, _ = make_runtime(backoff_s=0.001)
    server.inject(Fault.rate_limit(retry_after=0.3))
    t0 = time.perf_counter()
    res = rt.complete(ask())
    assert not res.fell_back and res.retries == 1
    assert time.perf_counter() - t0 >= 0.3


def test_client_errors_are_not_retried(server, make_runtime):
    rt, records = make_runtime()
    server.inject(Fault.http(400))
    res = rt.complete(ask())
    assert res.fell_back and res.error == "HTTP 400" and res.retries == 0
    assert server.request_count == 1


def test_invalid_structured_answer_is_repaired_once(server, make_runtime):
    answers = iter(['{"watch": "all of them"}', '{"watch": [2], "reason": "ok"}'])
    server.script = lambda req: next(answers)
    rt, records = make_runtime()
    res = rt.complete(ask(json_schema=Decision))
    assert res.parsed == Decision(watch=[2], reason="ok") and not res.fell_back
    assert res.retries == 1 and server.request_count == 2
    repair = server.requests[1].messages
    assert repair[-2] == {"role": "assistant", "content": '{"watch": "all of them"}'}
    assert "invalid" in repair[-1]["content"] and "reason" in repair[-1]["content"]
    assert res.tokens_out > 0 and records[0].retries == 1


def test_still_invalid_after_repair_falls_back(server, make_runtime):
    server.script = lambda req: "I would rather not answer in JSON"
    rt, records = make_runtime()
    res = rt.complete(ask(json_schema=Decision))
    assert res.fell_back and res.parsed is None
    assert res.error is not None and res.error.startswith("invalid output")
    assert res.text == "I would rather not answer in JSON"
    assert res.retries == 1 and server.request_count == 2
    assert records[0].fell_back and rt.totals.fallbacks == 1
    # A model fault is not a server fault: the breaker stays closed.
    assert rt.breaker.state == "closed"


def test_circuit_breaker_opens_and_recovers(server, make_runtime):
    rt, records = make_runtime(concurrency=1, max_retries=1, breaker_failures=3, breaker_cooldown_s=0.3)
    server.go_down()
    results = rt.complete_many([ask(str(i)) for i in range(10)])
    assert all(r.fell_back for r in results)
    assert [r.error for r in results[:3]] == ["connection error"] * 3
    assert [r.error for r in results[3:]] == [ERROR_CIRCUIT_OPEN] * 7
    assert all(r.retries == 0 for r in results[3:])
    assert rt.breaker.state == "open" and server.request_count == 0
    # Still open before the cooldown: immediate fallbacks, no waiting on a dead port.
    t0 = time.perf_counter()
    assert rt.complete(ask()).error == ERROR_CIRCUIT_OPEN
    assert time.perf_counter() - t0 < 0.1

    server.come_up()
    time.sleep(0.35)
    results = rt.complete_many([ask(str(i)) for i in range(5)])
    assert [r.fell_back for r in results] == [False] * 5
    assert [r.text for r in results] == [f"echo: {i}" for i in range(5)]
    assert rt.breaker.state == "closed" and server.request_count == 5
    assert sum(r.fell_back for r in records) == 11


def test_failed_probe_reopens_the_breaker(server, make_runtime):
    rt, _ = make_runtime(concurrency=1, max_retries=0, breaker_failures=2, breaker_cooldown_s=0.2)
    server.fail_next(3)
    assert [r.error for r in rt.complete_many([ask(), ask(), ask()])] == ["HTTP 500", "HTTP 500", ERROR_CIRCUIT_OPEN]
    time.sleep(0.25)
    # The probe gets the third 500 and re-opens it; the next call is refused at once.
    assert [r.error for r in rt.complete_many([ask(), ask()])] == ["HTTP 500", ERROR_CIRCUIT_OPEN]
    assert rt.breaker.state == "open" and server.request_count == 3
    time.sleep(0.25)
    assert rt.complete(ask("back")).text == "echo: back"
    assert rt.breaker.state == "closed"


def test_order_is_preserved_and_concurrency_bounded(server, make_runtime):
    rt, records = make_runtime(concurrency=8)
    # Early requests answer late, so completion order differs from request order.
    server.inject(*[Fault.delay(0.02 * (8 - i)) for i in range(8)])
    results = rt.complete_many([ask(str(i), user_id=i) for i in range(40)])
    assert [r.text for r in results] == [f"echo: {i}" for i in range(40)]
    assert [r.user_id for r in records] == list(range(40))
    assert server.max_in_flight == 8
    assert rt.totals.calls == 40


def test_concurrency_gives_parallel_speedup(server, make_runtime):
    server.latency_s = 0.2
    rt, _ = make_runtime(concurrency=16, timeout_s=5.0)
    rt.complete(ask("warm"))
    res = rt.complete_many([ask(str(i)) for i in range(32)])
    assert all(r.text for r in res)
    # Requests overlap at the server (a serial client never has two open); counted there, not timed,
    # so a busy machine cannot fail it: 32 calls of 200 ms at 16 wide keep many in flight at once.
    assert server.max_in_flight >= 8


def test_api_key_is_used_but_never_recorded(server, make_runtime, monkeypatch):
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("RW_TEST_LLM_KEY", secret)
    rt, records = make_runtime(api_key_env="RW_TEST_LLM_KEY")
    server.inject(Fault.http(500))
    res = rt.complete(ask())
    assert server.requests[0].headers["authorization"] == f"Bearer {secret}"
    for thing in (
        repr(rt),
        repr(rt.config),
        rt.config.model_dump_json(),
        repr(res),
        repr(records),
        repr(rt.totals),
        repr(rt._pool),
        repr(server.requests[0]),
    ):
        assert secret not in thing


def test_missing_api_key_env_is_a_config_error(server):
    with pytest.raises(ConfigError, match="RW_SURELY_UNSET_KEY"):
        LLMRuntime(LLMConfig(backend="openai", base_url=server.base_url, api_key_env="RW_SURELY_UNSET_KEY", cache_path=None))


def test_config_is_frozen_and_strict():
    config = LLMConfig(backend="openai")
    with pytest.raises(ValidationError):
        config.concurrency = 3  # type: ignore[misc]
    with pytest.raises(Exception, match="concurency"):
        LLMConfig(concurency=3)  # type: ignore[call-arg]
    with pytest.raises(Exception, match="model_dir"):
        LLMConfig(backend="transformers")
    with pytest.raises(Exception, match="api_key_env"):
        LLMConfig(api_key_env="sk-abc-123")
    assert LLMConfig().resolved_api_mode == "completion"
    assert LLMConfig(backend="openai").resolved_api_mode == "chat"


def test_tokens_are_estimated_without_usage(make_runtime):
    with ScriptedLLMServer(usage=False) as srv:
        rt, records = make_runtime(base_url=srv.base_url)
        res = rt.complete(ask("a fairly long prompt for counting"))
        assert res.tokens_in > 0 and res.tokens_out > 0
        assert rt.totals.tokens == res.tokens_in + res.tokens_out


def test_usable_from_plain_thread_and_running_loop(server, make_runtime):
    rt, _ = make_runtime()
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(rt.complete(ask("thread")).text))
    t.start()
    t.join(5)
    assert out == ["echo: thread"]

    async def main() -> list[str]:
        return [r.text for r in await rt.acomplete_many([ask("a"), ask("b")])]

    assert asyncio.run(main()) == ["echo: a", "echo: b"]


def test_close_is_idempotent_and_final(server, make_runtime):
    rt, _ = make_runtime()
    with rt:
        assert rt.complete(ask()).text == "echo: page"
    rt.close()
    with pytest.raises(LLMError, match="closed"):
        rt.complete(ask())
    assert rt._thread is not None and not rt._thread.is_alive()


def test_empty_batch(make_runtime):
    rt, records = make_runtime()
    assert rt.complete_many([]) == [] and records == []


def test_submit_many_returns_at_once_and_accounts_on_collection(server, make_runtime, tmp_path):
    """The language pipeline's call: the caller goes on while the server answers; answers are cached as they land."""
    server.latency_s = 0.3
    rt, records = make_runtime(cache_path=str(tmp_path / "c.db"), timeout_s=5.0)
    t0 = time.perf_counter()
    pending = rt.submit_many([ask(f"q{i}", purpose="feeling") for i in range(6)])
    assert time.perf_counter() - t0 < 0.25 and not pending.done() and records == []
    results = pending.results()
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(6)]
    assert len(records) == 6 and pending.results() is results and len(records) == 6  # accounted once
    # Answers went to the cache when they came back: the same requests now make no server request.
    n = server.request_count
    again = rt.submit_many([ask(f"q{i}", purpose="feeling") for i in range(6)])
    assert again.done() and all(r.cached for r in again.results()) and server.request_count == n
