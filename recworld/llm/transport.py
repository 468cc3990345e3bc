"""Transports: how one attempt reaches a model. The runtime adds retries, breaker, cache."""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from recworld.errors import require_extra
from recworld.llm.structured import render_prompt, response_format, schema_of

# Every backend (the embedded server too) is reached through the OpenAI client.
openai = require_extra("openai", "llm", "the LLM runtime (brain.kind hybrid or llm)")
try:  # openai >= 3 ships its own httpx fork; older releases use httpx itself
    import httpx2 as _httpx
except ImportError:  # pragma: no cover
    import httpx as _httpx  # type: ignore[no-redef]


@dataclass(frozen=True)
class Attempt:
    """One request as sent to a model (defaults already resolved)."""

    mode: Literal["chat", "completion"]
    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float
    seed: int
    schema_model: type[BaseModel] | None = None
    stop: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Reply:
    """A model's answer; token counts are None when the server did not report them."""

    text: str
    tokens_in: int | None = None
    tokens_out: int | None = None


class TransportError(Exception):
    """A failed attempt: ``kind`` is the recorded error, ``retryable`` says whether to try again."""

    def __init__(self, kind: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.retryable = retryable
        self.retry_after = retry_after


class Transport(Protocol):
    """Sends one attempt; raises :class:`TransportError` on any fault."""

    async def send(self, attempt: Attempt, timeout_s: float) -> Reply:
        """Send ``attempt`` and return the model's reply within ``timeout_s``."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# 408/409/429 and 5xx are transient by HTTP's own definition; other 4xx are our bug.
_RETRYABLE_STATUS = {408, 409, 425, 429}


def map_openai_error(err: BaseException) -> TransportError:
    """Turn an ``openai`` exception into a :class:`TransportError` (no secrets in ``kind``)."""
    if isinstance(err, openai.APITimeoutError):
        return TransportError("timeout", True)
    if isinstance(err, openai.APIConnectionError):
        return TransportError("connection error", True)
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        retry_after = parse_retry_after(err.response.headers.get("retry-after"))
        return TransportError(f"HTTP {status}", status >= 500 or status in _RETRYABLE_STATUS, retry_after)
    if isinstance(err, openai.APIResponseValidationError):
        return TransportError("bad response", True)
    # A 200 whose body is not the JSON it claims (malformed, truncated) lands here.
    return TransportError(f"bad response: {type(err).__name__}", True)


class OpenAITransport:
    """Any OpenAI-compatible server through ``openai.AsyncOpenAI``.

    The client's own retries are off: the runtime retries, so that every
    attempt is counted and the circuit breaker sees every failure.

    Args:
        base_url: Server URL including ``/v1``; None for OpenAI itself.
        api_key: The key (held only by the ``openai`` client).
        model: Model name sent with each request.
        llguidance_json: Add llguidance's compact-whitespace hint to schemas
            sent to plain completions (the embedded llama.cpp build; a base
            model otherwise fills the grammar's optional whitespace).
    """

    def __init__(self, base_url: str | None, api_key: str, model: str, *, llguidance_json: bool = False) -> None:
        self.model = model
        self.llguidance_json = llguidance_json
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)

    def __repr__(self) -> str:
        return f"OpenAITransport(base_url={str(self._client.base_url)!r}, model={self.model!r})"

    async def send(self, attempt: Attempt, timeout_s: float) -> Reply:
        """Send one chat or completion request."""
        try:
            if attempt.mode == "chat":
                return await self._chat(attempt, timeout_s)
            return await self._completion(attempt, timeout_s)
        except TransportError:
            raise
        except Exception as err:
            raise map_openai_error(err) from err

    async def _post(self, path: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        # The client's low-level post: its auth, base URL, timeout and HTTP
        # error classes, without its typed request/response models, which
        # cost about 0.8 ms of CPU a call (measured) -- a third of a call's
        # client-side cost, and the limit at high concurrency on 2 cores.
        resp = await self._client.post(path, body=body, cast_to=_httpx.Response, options={"timeout": timeout_s})
        data = json.loads(resp.content)
        if not isinstance(data, dict) or not data.get("choices"):
            raise TransportError("bad response: no choices", True)
        return data

    async def _chat(self, attempt: Attempt, timeout_s: float) -> Reply:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": attempt.messages,
            "max_tokens": attempt.max_tokens,
            "temperature": attempt.temperature,
            "seed": attempt.seed,
        }
        if attempt.schema_model is not None:
            body["response_format"] = response_format(attempt.schema_model)
        if attempt.stop:
            body["stop"] = list(attempt.stop)
        data = await self._post("/chat/completions", body, timeout_s)
        message = data["choices"][0].get("message") or {}
        return _reply(message.get("content") or "", data)

    async def _completion(self, attempt: Attempt, timeout_s: float) -> Reply:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": render_prompt(attempt.messages),
            "max_tokens": attempt.max_tokens,
            "temperature": attempt.temperature,
            "seed": attempt.seed,
        }
        if attempt.schema_model is not None:
            schema = schema_of(attempt.schema_model)
            if self.llguidance_json:
                schema = {**schema, "x-guidance": {"whitespace_flexible": False}}
            # llama.cpp's /completions takes a bare json_schema field.
            body["json_schema"] = schema
        if attempt.stop:
            body["stop"] = list(attempt.stop)
        data = await self._post("/completions", body, timeout_s)
        return _reply(data["choices"][0].get("text") or "", data)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()


def _reply(text: str, data: dict[str, Any]) -> Reply:
    usage = data.get("usage") or {}
    t_in, t_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Reply(str(text), int(t_in) if t_in is not None else None, int(t_out) if t_out is not None else None)
