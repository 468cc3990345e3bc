"""Value types of the LLM runtime: a request, its result, its accounting record, totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

# Error strings recorded for faults; stable so that metrics can group by them.
ERROR_CIRCUIT_OPEN = "circuit open"
ERROR_INVALID_OUTPUT = "invalid output"


@dataclass(frozen=True)
class LLMRequest:
    """One request to the model.

    Attributes:
        messages: OpenAI-style chat messages (``{"role": ..., "content": ...}``).
        purpose: What the call is for (``decide``, ``post``, ``chat``, ...); recorded
            and part of the cache key.
        user_id: The simulated user the call is for, if any (recorded only).
        tick: Simulation tick (recorded only).
        max_tokens: Completion length limit; None uses the config default.
        temperature: Sampling temperature; None uses the config default.
        json_schema: A pydantic model the answer must validate against; the
            server is asked for schema-constrained JSON and the result carries
            the parsed instance.
        stop: Sequences that end the completion (useful with base models).
    """

    messages: list[dict[str, Any]]
    purpose: str = "generic"
    user_id: int | None = None
    tick: int = 0
    max_tokens: int | None = None
    temperature: float | None = None
    json_schema: type[BaseModel] | None = None
    stop: tuple[str, ...] | None = None


@dataclass(frozen=True)
class LLMResult:
    """What came back for one request. Never an exception: faults are ``fell_back``.

    Attributes:
        text: The answer text (for structured requests: the validated JSON object).
        parsed: The validated ``json_schema`` instance, or None.
        tokens_in: Prompt tokens (from the server's ``usage``, else estimated).
        tokens_out: Completion tokens.
        latency_ms: Wall time of the call including retries and backoff.
        cached: Served from the response cache (no server request made).
        retries: Extra requests made after the first: transport retries plus
            structured-output repair re-asks. A served call made ``1 + retries``
            HTTP requests.
        fell_back: The call failed or its answer did not validate; the caller
            must use its fallback decision.
        error: Why it fell back (``"HTTP 500"``, ``"timeout"``, ``"circuit open"``,
            ``"invalid output: ..."``), else None.
        endpoint: The server that gave the answer (for a fallback: the last one
            tried); None when no request was made (cached, all breakers open).
        failovers: Times the call moved to another server after a failure
            (counted in ``retries`` too).
    """

    text: str
    parsed: BaseModel | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    cached: bool = False
    retries: int = 0
    fell_back: bool = False
    error: str | None = None
    endpoint: str | None = None
    failovers: int = 0


@dataclass(frozen=True)
class LLMCallRecord:
    """Accounting of one call: the ``LLMCall`` storage row without ``run_id``.

    ``rejected`` is set by the caller when the answer came back but its text
    failed the grounding check (:mod:`recworld.llm.grounding`): the reason.
    """

    tick: int
    user_id: int | None
    purpose: str
    model: str
    tokens_in: int
    tokens_out: int
    latency_ms: float
    cached: bool
    retries: int
    fell_back: bool
    error: str | None
    endpoint: str | None = None
    rejected: str | None = None

    @classmethod
    def of(cls, request: LLMRequest, result: LLMResult, model: str) -> LLMCallRecord:
        """The accounting record of ``request`` answered by ``result``."""
        return cls(
            tick=request.tick,
            user_id=request.user_id,
            purpose=request.purpose,
            model=model,
            tokens_in=result.tokens_in,
            tokens_out=result.tokens_out,
            latency_ms=result.latency_ms,
            cached=result.cached,
            retries=result.retries,
            fell_back=result.fell_back,
            error=result.error,
            endpoint=result.endpoint,
        )


@dataclass
class LLMTotals:
    """Running totals of a runtime. ``tokens_*`` count only tokens spent on a server.

    ``endpoints`` counts calls by the server that answered them (fallbacks
    by the last server tried); ``failovers`` counts moves to another server
    after a failure. Per-request counters of each server: ``LLMRuntime.endpoint_stats()``.
    """

    calls: int = 0
    cached: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    retries: int = 0
    fallbacks: int = 0
    failovers: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    endpoints: dict[str, int] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        """Tokens in plus out."""
        return self.tokens_in + self.tokens_out

    def add(self, result: LLMResult) -> None:
        """Count one finished call."""
        self.calls += 1
        self.retries += result.retries
        if result.cached:
            self.cached += 1
        else:
            self.tokens_in += result.tokens_in
            self.tokens_out += result.tokens_out
        self.failovers += result.failovers
        if result.endpoint is not None:
            self.endpoints[result.endpoint] = self.endpoints.get(result.endpoint, 0) + 1
        if result.fell_back:
            self.fallbacks += 1
        if result.error:
            kind = result.error.split(":", 1)[0]
            self.errors[kind] = self.errors.get(kind, 0) + 1
