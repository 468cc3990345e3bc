"""A real HTTP server speaking the OpenAI API, with scripted answers and injected faults.

For tests and benchmarks of anything that talks to an LLM (brains, the
runtime, reliability): it listens on 127.0.0.1 on a free port, answers
``POST /v1/chat/completions`` and ``POST /v1/completions`` with what a script
function returns, and can fail on demand. Example::

    from recworld.llm.testing import Fault, ScriptedLLMServer

    with ScriptedLLMServer(lambda req: '{"watch": true}') as srv:
        srv.inject(Fault.http(500), Fault.rate_limit(retry_after=0.1))
        config = LLMConfig(backend="openai", base_url=srv.base_url, cache_path=None)
        ...
        assert srv.request_count == 3

Faults are consumed one per request, in order, before the script runs;
``go_down()`` closes the port (connections refused) until ``come_up()``;
``crash_after(n)`` does the same from inside, on the n-th request from now
(that request and every one in flight are dropped: a server killed mid-run).
``max_concurrency`` models a real server's throughput cap (vLLM's
``--max-num-seqs``): at most that many requests are answered at once, each
taking ``latency_s``; the rest wait in arrival order.
The server runs an asyncio loop in a daemon thread, so it costs no thread
per connection and can hold many slow requests open.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Fault", "FaultKind", "ScriptedLLMServer", "ScriptedRequest", "Script", "echo_script"]

FaultKind = Literal["http", "delay", "reset", "close", "malformed_json", "truncated_json"]


@dataclass(frozen=True)
class Fault:
    """One injected fault, applied to one request. Build with the class methods."""

    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0

    @classmethod
    def http(cls, status: int = 500, retry_after: float | None = None) -> Fault:
        """Answer with HTTP ``status`` (an OpenAI-style error body), optionally ``Retry-After``."""
        return cls("http", status=status, retry_after=retry_after)

    @classmethod
    def server_error(cls) -> Fault:
        """HTTP 500."""
        return cls.http(500)

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1.0) -> Fault:
        """HTTP 429 with a ``Retry-After`` header (seconds)."""
        return cls.http(429, retry_after)

    @classmethod
    def unavailable(cls, retry_after: float | None = None) -> Fault:
        """HTTP 503, optionally with ``Retry-After``."""
        return cls.http(503, retry_after)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait ``seconds`` before answering normally: longer than the client timeout = a timeout."""
        return cls("delay", seconds=seconds)

    @classmethod
    def timeout(cls, seconds: float = 30.0) -> Fault:
        """Alias of :meth:`delay` that reads as intent."""
        return cls.delay(seconds)

    @classmethod
    def reset(cls) -> Fault:
        """Abort the connection (TCP RST) without answering."""
        return cls("reset")

    @classmethod
    def close(cls) -> Fault:
        """Close the connection cleanly without answering."""
        return cls("close")

    @classmethod
    def malformed_json(cls) -> Fault:
        """HTTP 200, ``application/json``, a body that is not JSON."""
        return cls("malformed_json")

    @classmethod
    def truncated_json(cls) -> Fault:
        """HTTP 200 with the first half of a valid answer's JSON body."""
        return cls("truncated_json")


@dataclass(frozen=True)
class ScriptedRequest:
    """A request the server received.

    Attributes:
        path: ``/v1/chat/completions`` or ``/v1/completions``.
        body: The parsed JSON body.
        headers: Lower-cased request headers.
        index: 0-based arrival order.
    """

    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(repr=False)
    index: int = 0

    @property
    def is_chat(self) -> bool:
        """A chat-completions request."""
        return self.path.endswith("/chat/completions")

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Chat messages (a completion's prompt as one user message)."""
        if self.is_chat:
            return list(self.body.get("messages") or [])
        return [{"role": "user", "content": str(self.body.get("prompt", ""))}]

    @property
    def prompt_text(self) -> str:
        """All message contents joined: the text a script usually inspects."""
        return "\n".join(str(m.get("content") or "") for m in self.messages)

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The JSON schema asked for (``response_format`` or llama.cpp's ``json_schema``)."""
        rf = self.body.get("response_format")
        if isinstance(rf, dict) and rf.get("type") == "json_schema":
            return (rf.get("json_schema") or {}).get("schema")
        js = self.body.get("json_schema")
        return js if isinstance(js, dict) else None


Script = Callable[[ScriptedRequest], str]


def echo_script(request: ScriptedRequest) -> str:
    """Default script: echoes the last message's content, prefixed with ``echo: ``."""
    msgs = request.messages
    return "echo: " + (str(msgs[-1].get("content") or "") if msgs else "")


def _word_count(text: str) -> int:
    return len(text.split())


class ScriptedLLMServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1 with scripted answers and faults.

    Args:
        script: ``request -> answer text``; called on the server thread, keep it fast.
            Raising in the script answers HTTP 500.
        latency_s: Fixed delay before every answer (models server compute time).
        max_concurrency: Requests served at once at most (the server's batch
            size); more wait in arrival order, so throughput is capped at
            ``max_concurrency / latency_s`` calls per second. None: no cap.
        port: Port to bind; 0 picks a free one (kept across ``go_down``/``come_up``).
        usage: Report ``usage`` token counts (whitespace words); False omits them.
        model: Model name echoed in answers.

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1`` (valid after :meth:`start`).
        requests: Every request received, in arrival order (faulted ones included).
        faults_served: Injected faults consumed so far.
        in_flight: Requests received and not yet answered (queued ones included);
            ``max_in_flight`` its peak.
        active: Requests being served now (past the ``max_concurrency`` queue);
            ``max_active`` its peak.
        answered: Requests answered with HTTP 200 and a complete body.
    """

    def __init__(
        self,
        script: Script = echo_script,
        *,
        latency_s: float = 0.0,
        max_concurrency: int | None = None,
        port: int = 0,
        usage: bool = True,
        model: str = "scripted",
    ) -> None:
        self.script = script
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1 or None, got {max_concurrency}")
        self.latency_s = latency_s
        self.max_concurrency = max_concurrency
        self.usage = usage
        self.model = model
        self.requests: list[ScriptedRequest] = []
        self._port = port
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.faults_served = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.active = 0
        self.max_active = 0
        self.answered = 0
        self._slots: asyncio.Semaphore | None = None
        self._crash_at: int | None = None

    # -- lifecycle -------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (0 before :meth:`start`)."""
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` of this server."""
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def request_count(self) -> int:
        """Requests received so far (refused connections while down are not requests)."""
        with self._lock:
            return len(self.requests)

    @property
    def is_up(self) -> bool:
        """Whether the port is accepting connections."""
        return self._server is not None

    def start(self) -> ScriptedLLMServer:
        """Start the loop thread and listen; returns self."""
        if self._loop is not None:
            return self
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="scripted-llm", daemon=True)
        self._thread.start()
        if self.max_concurrency is not None:
            self._slots = asyncio.Semaphore(self.max_concurrency)  # FIFO: waiters are served in arrival order
        self.come_up()
        return self

    def stop(self) -> None:
        """Close every connection, stop listening and end the thread (idempotent)."""
        loop = self._loop
        if loop is None:
            return
        self._call(self._shutdown())
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> ScriptedLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def go_down(self) -> None:
        """Stop listening and drop open connections: clients get connection errors."""
        self._call(self._shutdown())

    def come_up(self) -> None:
        """Listen again on the same port."""
        self._call(self._listen())

    def crash_after(self, n: int) -> None:
        """Go down when the ``n``-th request from now arrives.

        That request and every request in flight get their connection
        aborted, and new connections are refused until :meth:`come_up`:
        a server killed in the middle of a burst.
        """
        if n < 1:
            raise ValueError(f"crash_after needs n >= 1, got {n}")
        with self._lock:
            self._crash_at = len(self.requests) + n

    # -- scripting -------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each of the next requests consumes one, in order."""
        with self._lock:
            self._faults.extend(faults)

    def fail_next(self, n: int, fault: Fault | None = None) -> None:
        """Queue ``n`` copies of ``fault`` (default HTTP 500)."""
        self.inject(*([fault or Fault.server_error()] * n))

    def clear_faults(self) -> None:
        """Drop faults not yet served."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """Faults queued and not yet served."""
        with self._lock:
            return len(self._faults)

    def reset_counts(self) -> None:
        """Forget received requests, served faults, answers and the in-flight maxima."""
        with self._lock:
            self.requests.clear()
            self.faults_served = 0
            self.answered = 0
            self.max_in_flight = self.in_flight
            self.max_active = self.active

    # -- internals -------------------------------------------------------------

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None, "start() the server first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        sock.listen(512)
        self._port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._handle, sock=sock)

    async def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for w in list(self._writers):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        if server is not None:
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._writers.add(writer)
        self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self._respond(method, path, headers, body, writer):
                    return
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            writer.transport.abort()
            return
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
        writer.close()

    async def _respond(self, method: str, path: str, headers: dict[str, str], raw: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection was dropped on purpose."""
        path = path.split("?", 1)[0]
        if method == "GET" and path.rstrip("/").endswith("/models"):
            await self._send(writer, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
            return True
        if method != "POST" or not (path.endswith("/chat/completions") or path.endswith("/completions")):
            await self._send(writer, 404, _error_body(f"no route {method} {path}", "not_found"))
            return True
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            await self._send(writer, 400, _error_body("request body is not JSON", "invalid_request_error"))
            return True
        with self._lock:
            req = ScriptedRequest(path, body, headers, index=len(self.requests))
            self.requests.append(req)
            crash = self._crash_at is not None and len(self.requests) >= self._crash_at
            if crash:
                self._crash_at = None
            fault = None if crash or not self._faults else self._faults.popleft()
            if fault is not None:
                self.faults_served += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if crash:
                writer.transport.abort()
                # Shut down from a task of its own: _shutdown cancels this handler's task.
                asyncio.get_running_loop().create_task(self._shutdown())
                return False
            if self._slots is None:
                return await self._serve_counted(req, fault, writer)
            async with self._slots:
                return await self._serve_counted(req, fault, writer)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _serve_counted(self, req: ScriptedRequest, fault: Fault | None, writer: asyncio.StreamWriter) -> bool:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            return await self._serve(req, fault, writer)
        finally:
            with self._lock:
                self.active -= 1

    async def _serve(self, req: ScriptedRequest, fault: Fault | None, writer: asyncio.StreamWriter) -> bool:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        if fault is not None:
            if fault.kind == "reset":
                writer.transport.abort()
                return False
            if fault.kind == "close":
                writer.close()
                return False
            if fault.kind == "http":
                extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                await self._send(writer, fault.status, _error_body(f"injected HTTP {fault.status}", "server_error"), extra)
                return True
            if fault.kind == "malformed_json":
                await self._send_raw(writer, 200, b'{"id": "x", "choices": [ this is not json', "application/json")
                return True
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
        try:
            text = self.script(req)
        except Exception as err:  # noqa: BLE001 - a failing script is reported as a server error
            await self._send(writer, 500, _error_body(f"script raised {type(err).__name__}: {err}", "server_error"))
            return True
        answer = self._answer(req, text)
        if fault is not None and fault.kind == "truncated_json":
            blob = json.dumps(answer).encode()
            await self._send_raw(writer, 200, blob[: len(blob) // 2], "application/json")
            return True
        await self._send(writer, 200, answer)
        with self._lock:
            self.answered += 1
        return True

    def settle(self, timeout_s: float = 5.0) -> None:
        """Wait until no request is in flight (a client can read its answer a moment before the server's counters move).

        Raises:
            TimeoutError: requests are still in flight after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                if self.in_flight == 0:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.in_flight} request(s) still in flight after {timeout_s} s")
            time.sleep(0.002)

    def _answer(self, req: ScriptedRequest, text: str) -> dict[str, Any]:
        now = int(time.time())
        if req.is_chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
            obj = "text_completion"
        answer: dict[str, Any] = {
            "id": f"scripted-{req.index}",
            "object": obj,
            "created": now,
            "model": self.model,
            "choices": [choice],
        }
        if self.usage:
            p, c = _word_count(req.prompt_text), _word_count(text)
            answer["usage"] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        return answer

    async def _send(self, writer: asyncio.StreamWriter, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        await self._send_raw(writer, status, json.dumps(obj).encode(), "application/json", headers)

    async def _send_raw(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        blob: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(blob)}",
            "Connection: keep-alive",
        ]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + blob)
        await writer.drain()


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _error_body(message: str, type_: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": None}}
