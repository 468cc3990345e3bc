"""The LLM runtime: a synchronous batch API over async, bounded, fault-tolerant calls.

The simulator hands over all requests of a tick at once
(:meth:`LLMRuntime.complete_many`); they run concurrently on a private event
loop thread, so the runtime works from any thread, with or without a loop.
Faults never raise: they come back as ``fell_back`` results with ``error`` set.

With ``LLMConfig.base_urls`` the calls are spread over a pool of servers
(:mod:`recworld.llm.pool`): least outstanding requests first, a circuit
breaker per server, and a failed attempt moves to another server at once.
Only the ``LLMCall.endpoint`` column says which server answered; results,
the cache and so the event log do not depend on it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from recworld.errors import ConfigError, LLMError
from recworld.llm.breaker import CircuitBreaker
from recworld.llm.cache import CachedResponse, ResponseCache, cache_key
from recworld.llm.config import LLMConfig
from recworld.llm.pool import Endpoint, EndpointPool, EndpointStats, endpoint_label
from recworld.llm.records import (
    ERROR_CIRCUIT_OPEN,
    ERROR_INVALID_OUTPUT,
    LLMCallRecord,
    LLMRequest,
    LLMResult,
    LLMTotals,
)
from recworld.llm.structured import render_prompt, repair_messages, schema_of, validate
from recworld.llm.transport import Attempt, OpenAITransport, Reply, Transport, TransportError

__all__ = ["EndpointStats", "LLMCallRecord", "LLMRequest", "LLMResult", "LLMRuntime", "LLMTotals", "OnCall", "PendingCalls"]

OnCall = Callable[[LLMCallRecord], None]


def estimate_tokens(text: str) -> int:
    """Rough token count (about 4 characters a token) for servers that omit ``usage``."""
    return max(1, (len(text) + 3) // 4) if text else 0


@dataclass(frozen=True)
class _Prepared:
    request: LLMRequest
    attempt: Attempt
    key: str


class _CircuitOpen(Exception):
    pass


class PendingCalls:
    """Requests started by :meth:`LLMRuntime.submit_many`; :meth:`results` waits for them.

    Attributes:
        requests: the requests, in submission order.
    """

    def __init__(
        self, runtime: LLMRuntime, prepared: list[_Prepared], results: list[LLMResult | None], misses: list[int], future: Future[list[LLMResult]] | None
    ) -> None:
        self._runtime = runtime
        self._prepared = prepared
        self._results = results
        self._misses = misses
        self._future = future
        self._done: list[LLMResult] | None = None
        self.requests = [p.request for p in prepared]

    def __len__(self) -> int:
        return len(self._prepared)

    def done(self) -> bool:
        """Whether every answer is in (collecting would not wait)."""
        return self._future is None or self._future.done()

    def results(self, timeout: float | None = None) -> list[LLMResult]:
        """The results in request order; waits for the answers and accounts them once.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
        """
        if self._done is not None:
            return self._done
        if self._future is not None:
            for i, res in zip(self._misses, self._future.result(timeout)):
                self._results[i] = res
        done = [r for r in self._results if r is not None]
        self._runtime._account(self._prepared, done)
        self._done = done
        return done


class LLMRuntime:
    """Runs batches of LLM requests with concurrency, retries, breakers, a cache and a server pool.

    Where an attempt goes and what a failure does next:

    - each attempt goes to the server picked by :meth:`EndpointPool.pick`
      (breaker allows it, half-open probe first, fewest in flight, first listed);
    - after a transport fault the call moves at once to a server it has not
      tried yet (a *failover*; it costs no retry), and only when every
      available server has failed it backs off and starts over, at most
      ``max_retries`` times; a call that gets its answer from any server is
      not a fallback;
    - a server's breaker records one failure per call that gave up on it (moved
      away, or fell back) and one success per answer, so a single server
      behaves exactly as a pool of one;
    - a call whose every candidate's breaker is open falls back at once
      (``"circuit open"``), without waiting on a dead port.

    Example:
        >>> with LLMRuntime(LLMConfig(backend="openai", base_url=url)) as llm:  # doctest: +SKIP
        ...     [res] = llm.complete_many([LLMRequest([{"role": "user", "content": "Hi"}])])

    Args:
        config: The runtime configuration; defaults to the embedded model.
        on_call: Callbacks given an :class:`LLMCallRecord` per finished call
            (cached ones included), in request order, on the calling thread.
            Storage subscribes here; the runtime never writes storage itself.
        transport: A ready transport (tests, custom servers); overrides
            ``config.backend`` and ``base_url(s)`` (a pool of one).

    Raises:
        ConfigError: ``api_key_env`` names a variable that is not set.
    """

    def __init__(
        self,
        config: LLMConfig | None = None,
        *,
        on_call: Iterable[OnCall] = (),
        transport: Transport | None = None,
    ) -> None:
        self.config = config or LLMConfig()
        self.on_call: list[OnCall] = list(on_call)
        self.totals = LLMTotals()
        n_endpoints = 1 if transport is not None else len(self.config.endpoints)
        #: One circuit breaker per server, in ``config.endpoints`` order.
        self.breakers = [CircuitBreaker(self.config.breaker_failures, self.config.breaker_cooldown_s) for _ in range(n_endpoints)]
        self._mode: Literal["chat", "completion"] = self.config.resolved_api_mode
        self._injected: Transport | None = transport
        self._pool: EndpointPool | None = None
        self._server: Any = None  # EmbeddedServer when backend == "embedded"
        self._cache = ResponseCache(self.config.cache_path) if self.config.cache_path else None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sem: asyncio.Semaphore | None = None
        self._closed = False
        if self.config.api_key_env and self.config.api_key_env not in os.environ:
            raise ConfigError(
                f"api_key_env: environment variable {self.config.api_key_env!r} is not set; export it or set api_key_env=None for servers without keys"
            )

    def __repr__(self) -> str:
        c = self.config
        return f"LLMRuntime(backend={c.backend!r}, model={c.model!r}, base_url={self.base_url!r}, mode={self._mode!r})"

    # -- lifecycle ---------------------------------------------------------

    @property
    def base_url(self) -> str | None:
        """The (first) server URL in use (the embedded server's once started)."""
        if self._server is not None:
            return str(self._server.base_url)
        return self.config.endpoints[0]

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker of the first (without ``base_urls``: the only) server."""
        return self.breakers[0]

    def endpoint_stats(self) -> list[EndpointStats]:
        """Per-server counters (requests, answered, failed, in flight, breaker state), in config order.

        Empty until the first uncached call (or :meth:`start`) set the servers up.
        """
        with self._lock:
            pool = self._pool
        return pool.stats() if pool is not None else []

    def start(self) -> LLMRuntime:
        """Start the backend now (otherwise it starts on the first uncached call).

        Raises:
            LLMError: The backend could not be set up (model missing, server failed).
        """
        self._ensure_pool()
        return self

    def close(self) -> None:
        """Close connections, stop the loop thread and any embedded server (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread, pool = self._loop, self._thread, self._pool
        if loop is not None:
            if pool is not None:
                try:
                    asyncio.run_coroutine_threadsafe(pool.aclose(), loop).result(timeout=5)
                except Exception:  # noqa: BLE001 - closing must not fail on a dead connection
                    pass
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=5)
            loop.close()
        elif pool is not None:
            asyncio.run(pool.aclose())
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._cache is not None:
            self._cache.close()

    def __enter__(self) -> LLMRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise LLMError("the LLM runtime is closed; create a new LLMRuntime")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="recworld-llm", daemon=True)
                self._thread.start()
            return self._loop

    def _ensure_pool(self) -> EndpointPool:
        with self._lock:
            if self._pool is not None:
                return self._pool
            c = self.config
            api_key = os.environ[c.api_key_env] if c.api_key_env else "not-needed"
            endpoints: list[tuple[str, Transport]]
            if self._injected is not None:
                endpoints = [("custom", self._injected)]
            elif c.backend == "openai":
                endpoints = [(endpoint_label(url), OpenAITransport(url, api_key, c.model)) for url in c.endpoints]
            elif c.backend == "embedded":
                from recworld.llm.embedded import EmbeddedServer

                self._server = EmbeddedServer.from_config(c).start()
                endpoints = [("embedded", OpenAITransport(self._server.base_url, api_key, c.model, llguidance_json=True))]
            else:
                from recworld.llm.transformers_backend import TransformersTransport

                endpoints = [("transformers", TransformersTransport(c.model_dir or "", seed=c.seed))]
            self._pool = EndpointPool([Endpoint(i, label, t, self.breakers[i]) for i, (label, t) in enumerate(endpoints)])
            return self._pool

    # -- public API ----------------------------------------------------------

    def complete(self, request: LLMRequest) -> LLMResult:
        """Run one request; see :meth:`complete_many`."""
        return self.complete_many([request])[0]

    def complete_many(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        """Run requests concurrently; results come back in request order.

        Cached answers make no server request. Network and server faults,
        an open circuit breaker and answers that fail their ``json_schema``
        after the repair attempt all give ``fell_back=True`` results; this
        method does not raise for them.

        Raises:
            LLMError: The runtime is closed or its backend could not be set up.
        """
        return self.submit_many(requests).results()

    def submit_many(self, requests: Sequence[LLMRequest]) -> PendingCalls:
        """Start requests in the background and return at once; :meth:`PendingCalls.results` waits.

        What :meth:`complete_many` does, split in two so a caller can go on
        working while the model answers (the language pipeline of the LLM
        brains). Cache hits are resolved now; misses run on the runtime's loop
        thread, bounded by ``config.concurrency`` together with every other
        call, and are written to the cache as soon as they finish. The
        ``on_call`` callbacks run when the results are collected, on the
        collecting thread, in request order.

        Raises:
            LLMError: The runtime is closed or its backend could not be set up.
        """
        prepared = [self._prepare(r) for r in requests]
        results: list[LLMResult | None] = [None] * len(prepared)
        hits = self._cache.get_many([p.key for p in prepared]) if self._cache else {}
        misses: list[int] = []
        for i, p in enumerate(prepared):
            hit = hits.get(p.key)
            res = self._from_cache(p, hit) if hit is not None else None
            if res is None:
                misses.append(i)
            else:
                results[i] = res
        fut: Future[list[LLMResult]] | None = None
        if misses:
            self._ensure_pool()
            loop = self._ensure_loop()
            fut = asyncio.run_coroutine_threadsafe(self._run_and_cache([prepared[i] for i in misses]), loop)
        return PendingCalls(self, prepared, results, misses, fut)

    async def acomplete_many(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        """:meth:`complete_many` for async callers (runs in a worker thread)."""
        return await asyncio.to_thread(self.complete_many, requests)

    # -- internals -----------------------------------------------------------

    def _prepare(self, request: LLMRequest) -> _Prepared:
        c = self.config
        attempt = Attempt(
            mode=self._mode,
            messages=list(request.messages),
            max_tokens=request.max_tokens if request.max_tokens is not None else c.max_tokens,
            temperature=request.temperature if request.temperature is not None else c.temperature,
            seed=c.seed,
            schema_model=request.json_schema,
            stop=request.stop,
        )
        if self._cache is None:
            return _Prepared(request, attempt, "")  # no cache: skip hashing the prompt
        key = cache_key(
            model=c.model,
            api_mode=self._mode,
            messages=attempt.messages + ([{"stop": list(request.stop)}] if request.stop else []),
            temperature=attempt.temperature,
            max_tokens=attempt.max_tokens,
            schema=schema_of(request.json_schema) if request.json_schema else None,
            seed=c.seed,
            purpose=request.purpose,
        )
        return _Prepared(request, attempt, key)

    def _from_cache(self, p: _Prepared, hit: CachedResponse) -> LLMResult | None:
        parsed: BaseModel | None = None
        if p.request.json_schema is not None:
            parsed, _, problem = validate(p.request.json_schema, hit.text)
            if parsed is None:
                return None  # stale entry: ask the server again
        return LLMResult(hit.text, parsed, hit.tokens_in, hit.tokens_out, 0.0, cached=True)

    def _account(self, prepared: list[_Prepared], results: list[LLMResult]) -> None:
        records = [LLMCallRecord.of(p.request, r, self.config.model) for p, r in zip(prepared, results)]
        with self._lock:
            for r in results:
                self.totals.add(r)
        for rec in records:
            for cb in self.on_call:
                cb(rec)

    async def _run_batch(self, batch: list[_Prepared]) -> list[LLMResult]:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.config.concurrency)
        return list(await asyncio.gather(*(self._one(p) for p in batch)))

    async def _run_and_cache(self, batch: list[_Prepared]) -> list[LLMResult]:
        results = await self._run_batch(batch)
        if self._cache is not None:
            # Written as soon as the batch is answered: a process killed before
            # the answers are used finds them here when it replays.
            self._cache.put_many(
                [
                    (p.key, self.config.model, p.request.purpose, CachedResponse(r.text, r.tokens_in, r.tokens_out))
                    for p, r in zip(batch, results)
                    if not r.fell_back
                ]
            )
        return results

    async def _one(self, p: _Prepared) -> LLMResult:
        # A slot is held for the whole call, backoff included: ``concurrency``
        # bounds calls in flight, and queued calls see the breaker open at once
        # instead of piling retries onto a failing server.
        assert self._sem is not None
        async with self._sem:
            return await self._one_unbounded(p)

    async def _one_unbounded(self, p: _Prepared) -> LLMResult:
        t0 = time.perf_counter()
        attempt = p.attempt
        retries = tokens_in = tokens_out = failovers = 0
        endpoint: str | None = None
        repairs_left = self.config.repair_attempts

        def result(text: str, **kw: Any) -> LLMResult:
            ms = (time.perf_counter() - t0) * 1000.0
            return LLMResult(text, tokens_in=tokens_in, tokens_out=tokens_out, latency_ms=ms, retries=retries, endpoint=endpoint, failovers=failovers, **kw)

        while True:
            try:
                sent = await self._send(attempt)
            except _CircuitOpen:
                return result("", fell_back=True, error=ERROR_CIRCUIT_OPEN)
            except _Failed as failed:
                retries += failed.retries
                failovers += failed.failovers
                endpoint = failed.endpoint
                return result("", fell_back=True, error=failed.kind)
            reply = sent.reply
            retries += sent.retries
            failovers += sent.failovers
            endpoint = sent.endpoint
            if reply.tokens_in is not None:
                tokens_in += reply.tokens_in
            else:
                tokens_in += estimate_tokens(render_prompt(attempt.messages))
            tokens_out += reply.tokens_out if reply.tokens_out is not None else estimate_tokens(reply.text)
            schema = attempt.schema_model
            if schema is None:
                return result(reply.text)
            parsed, json_text, problem = validate(schema, reply.text)
            if parsed is not None:
                return result(json_text, parsed=parsed)
            if repairs_left <= 0:
                return result(reply.text, fell_back=True, error=f"{ERROR_INVALID_OUTPUT}: {problem}"[:300])
            # One more request, counted as a retry: re-ask with what was wrong.
            repairs_left -= 1
            retries += 1
            attempt = Attempt(
                attempt.mode,
                repair_messages(attempt.messages, reply.text, problem, schema),
                attempt.max_tokens,
                attempt.temperature,
                attempt.seed,
                schema,
                attempt.stop,
            )

    async def _send(self, attempt: Attempt) -> _Sent:
        """One logical request: failovers across servers, retries with backoff.

        Raises:
            _CircuitOpen: Every server's breaker refused the very first attempt (no request made).
            _Failed: All attempts failed, or every breaker left opened between them.
        """
        pool = self._pool
        assert pool is not None
        c = self.config
        tried: set[int] = set()  # servers this call failed on since its last backoff
        retries = failovers = backoffs = 0
        left: Endpoint | None = None  # failed the last attempt; its breaker not told yet
        err: TransportError | None = None
        last: Endpoint | None = None
        while True:
            picked = pool.pick(exclude=tried)
            if picked is None:
                if left is not None:
                    self._gave_up_on(left)
                if last is None:
                    raise _CircuitOpen
                assert err is not None
                raise _Failed(err.kind, retries, failovers, last.label)
            ep, probe = picked
            if left is not None and ep is not left:
                self._gave_up_on(left)  # the call moves away from a server that failed it
            left = None
            if last is not None:
                retries += 1
                failovers += int(ep is not last)
            last = ep
            try:
                reply = await pool.send(ep, attempt, c.timeout_s)
                ep.breaker.record_success()
                return _Sent(reply, retries, failovers, ep.label)
            except TransportError as e:
                err = e
            except BaseException:
                if probe:  # cancelled (runtime closing): the breaker must not wait for this probe forever
                    ep.breaker.record_failure()
                raise
            tried.add(ep.index)
            if probe:
                ep.breaker.record_failure()  # a probe's one answer decides its breaker's state
            else:
                left = ep
            if not err.retryable:
                # Our request is wrong (4xx): another server would refuse it too.
                if left is not None:
                    self._gave_up_on(left)
                raise _Failed(err.kind, retries, failovers, ep.label)
            if pool.any_available(exclude=tried):
                continue  # failover: another server is left, go there at once
            if backoffs >= c.max_retries or not pool.any_available():
                # Out of retries, or every breaker is open now: stop early.
                if left is not None:
                    self._gave_up_on(left)
                raise _Failed(err.kind, retries, failovers, ep.label)
            delay = min(c.backoff_s * (2**backoffs), c.max_backoff_s)
            if err.retry_after is not None:
                delay = min(max(delay, err.retry_after), c.max_backoff_s)
            await asyncio.sleep(delay)
            backoffs += 1
            tried.clear()

    @staticmethod
    def _gave_up_on(ep: Endpoint) -> None:
        # Only a closed breaker counts the failure: failing again on an open one
        # would push its cooldown back, and on a half-open one would be taken
        # for the probe's answer while the probe is another call's.
        if ep.breaker.state == "closed":
            ep.breaker.record_failure()


@dataclass(frozen=True)
class _Sent:
    reply: Reply
    retries: int
    failovers: int
    endpoint: str


class _Failed(Exception):
    def __init__(self, kind: str, retries: int, failovers: int, endpoint: str) -> None:
        super().__init__(kind)
        self.kind = kind
        self.retries = retries
        self.failovers = failovers
        self.endpoint = endpoint
