"""ScriptedLLMServer: a real OpenAI-compatible HTTP server with scripted answers and faults."""

from __future__ import annotations

import socket
import time

import openai
import pytest

from recworld.llm.testing import Fault, ScriptedLLMServer, ScriptedRequest


def client(srv: ScriptedLLMServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=2.0)


def test_answers_chat_and_completions_with_the_script():
    seen: list[ScriptedRequest] = []

    def script(req: ScriptedRequest) -> str:
        seen.append(req)
        return "chat answer" if req.is_chat else "completion answer"

    with ScriptedLLMServer(script, model="m1") as srv:
        assert srv.port > 0 and srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
        c = client(srv)
        chat = c.chat.completions.create(model="m1", messages=[{"role": "user", "content": "hello there"}])
        assert chat.choices[0].message.content == "chat answer"
        assert chat.usage is not None and chat.usage.prompt_tokens == 2 and chat.usage.completion_tokens == 2
        comp = c.completions.create(model="m1", prompt="once upon", extra_body={"json_schema": {"type": "object"}})
        assert comp.choices[0].text == "completion answer"
        assert srv.request_count == 2 and [r.index for r in srv.requests] == [0, 1]
        assert seen[1].prompt_text == "once upon" and seen[1].json_schema == {"type": "object"}
        assert [m.id for m in c.models.list()] == ["m1"]


def test_faults_are_served_in_order_then_normal_answers():
    with ScriptedLLMServer() as srv:
        srv.inject(Fault.http(500), Fault.rate_limit(retry_after=2), Fault.unavailable(retry_after=1))
        c = client(srv)
        with pytest.raises(openai.InternalServerError):
            c.completions.create(model="x", prompt="a")
        with pytest.raises(openai.RateLimitError) as rate:
            c.completions.create(model="x", prompt="a")
        assert rate.value.response.headers["retry-after"] == "2"
        with pytest.raises(openai.APIStatusError) as unavailable:
            c.completions.create(model="x", prompt="a")
        assert unavailable.value.status_code == 503
        assert c.completions.create(model="x", prompt="a").choices[0].text == "echo: a"
        assert srv.faults_served == 3 and srv.pending_faults == 0 and srv.request_count == 4


@pytest.mark.parametrize("fault", [Fault.reset(), Fault.close(), Fault.malformed_json(), Fault.truncated_json()])
def test_broken_responses_raise_in_the_client(fault):
    with ScriptedLLMServer() as srv:
        srv.inject(fault)
        # Resets and closes surface as connection errors; broken bodies as JSON errors.
        with pytest.raises((openai.APIConnectionError, ValueError)):
            client(srv).completions.create(model="x", prompt="a")
        assert srv.request_count == 1
        assert client(srv).completions.create(model="x", prompt="b").choices[0].text == "echo: b"


def test_delay_and_latency():
    with ScriptedLLMServer(latency_s=0.05) as srv:
        c = client(srv)
        t0 = time.perf_counter()
        c.completions.create(model="x", prompt="a")
        assert time.perf_counter() - t0 >= 0.05
        srv.inject(Fault.delay(1.0))
        with pytest.raises(openai.APITimeoutError):
            c.with_options(timeout=0.2).completions.create(model="x", prompt="a")


def test_down_refuses_connections_then_comes_back_on_the_same_port():
    with ScriptedLLMServer() as srv:
        port = srv.port
        srv.go_down()
        assert not srv.is_up
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        with pytest.raises(openai.APIConnectionError):
            client(srv).completions.create(model="x", prompt="a")
        assert srv.request_count == 0
        srv.come_up()
        assert srv.port == port and srv.is_up
        assert client(srv).completions.create(model="x", prompt="a").choices[0].text == "echo: a"


def test_stop_releases_the_port_and_is_idempotent():
    srv = ScriptedLLMServer().start()
    port = srv.port
    srv.stop()
    srv.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_script_errors_become_http_500_and_unknown_routes_404():
    def boom(req: ScriptedRequest) -> str:
        raise RuntimeError("bad script")

    with ScriptedLLMServer(boom) as srv:
        with pytest.raises(openai.InternalServerError, match="bad script"):
            client(srv).completions.create(model="x", prompt="a")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=2) as s:
            s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 404")


def test_reset_counts():
    with ScriptedLLMServer() as srv:
        client(srv).completions.create(model="x", prompt="a")
        srv.reset_counts()
        assert srv.request_count == 0 and srv.faults_served == 0 and srv.max_in_flight <= 1


def _burst(srv: ScriptedLLMServer, n: int) -> list[object]:
    """``n`` concurrent completions from ``n`` threads; exceptions are returned, not raised."""
    from concurrent.futures import ThreadPoolExecutor

    c = client(srv)  # one client (thread-safe): the requests start together

    def one(i: int) -> object:
        try:
            return c.completions.create(model="x", prompt=f"p{i}").choices[0].text
        except Exception as err:  # noqa: BLE001 - the test inspects what each request got
            return err

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_max_concurrency_caps_throughput_and_queues_the_rest():
    with ScriptedLLMServer(latency_s=0.1, max_concurrency=2) as srv:
        t0 = time.perf_counter()
        answers = _burst(srv, 6)
        dt = time.perf_counter() - t0
        assert answers == [f"echo: p{i}" for i in range(6)]
        # 6 requests, 2 at a time, 0.1 s each: three waves, not one.
        assert dt >= 0.3
        srv.settle()  # the last answer can reach the client before the server counts it
        assert srv.max_active == 2 and srv.max_in_flight > 2
        assert srv.answered == 6 and srv.active == 0 and srv.in_flight == 0
    with ScriptedLLMServer(latency_s=0.3) as uncapped:
        _burst(uncapped, 6)
        uncapped.settle()
        assert uncapped.max_active == 6
    with pytest.raises(ValueError, match="max_concurrency"):
        ScriptedLLMServer(max_concurrency=0)


def test_crash_after_drops_the_request_and_those_in_flight_then_refuses():
    with ScriptedLLMServer(latency_s=0.3) as srv:
        c = client(srv)
        assert c.completions.create(model="x", prompt="a").choices[0].text == "echo: a"
        srv.crash_after(4)  # the 4th request from now arrives while 3 are in flight
        answers = _burst(srv, 4)
        assert all(isinstance(a, openai.APIConnectionError) for a in answers)
        assert not srv.is_up and srv.request_count == 5 and srv.answered == 1
        with pytest.raises(openai.APIConnectionError):
            c.completions.create(model="x", prompt="b")
        assert srv.request_count == 5  # refused connections are not requests
        srv.come_up()
        assert c.completions.create(model="x", prompt="c").choices[0].text == "echo: c"
        with pytest.raises(ValueError, match="n >= 1"):
            srv.crash_after(0)
