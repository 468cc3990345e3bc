"""Configuration of the LLM runtime: one frozen, validated object per run."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Backend = Literal["embedded", "openai", "transformers"]
ApiMode = Literal["auto", "chat", "completion"]


class LLMConfig(BaseModel):
    """How the runtime reaches a model and how it behaves under load and faults.

    Attributes:
        backend: ``"embedded"`` (Gemma 3 270M served in-process by xllamacpp, the
            offline default), ``"openai"`` (any OpenAI-compatible server at
            ``base_url``) or ``"transformers"`` (a local Hugging Face model in
            ``model_dir``).
        base_url: Server URL including ``/v1`` (``"openai"`` backend); None means
            the OpenAI default.
        base_urls: A pool of OpenAI-compatible servers serving the same model
            (vLLM replicas), instead of ``base_url``: each request goes to the
            live server with the fewest requests in flight (ties: the first
            listed), each server has its own circuit breaker, and a request
            that fails on one server moves to another at once. Which server
            answered is recorded (``LLMCall.endpoint``) but never changes a
            result: the cache key has no URL in it. ``"openai"`` backend only.
        model: Model name sent to the server, recorded with every call and part
            of the cache key.
        api_key_env: Name of the environment variable that holds the API key.
            The key itself is never stored, logged or put in a repr.
        api_mode: ``"chat"`` (``/chat/completions``), ``"completion"`` (plain
            ``/completions`` with the messages rendered as text) or ``"auto"``:
            completion for the embedded base model, chat otherwise.
        concurrency: Most requests in flight at once, over all servers of a pool
            (for a vLLM pool: about 2 x servers x ``--max-num-seqs``, so that
            each server has its next requests queued while answers travel).
        timeout_s: Limit of one HTTP attempt.
        max_retries: Extra attempts after a failed one (transport faults only);
            with ``base_urls``, moving to another server after a failure is
            free, so a call makes at most ``1 + max_retries`` attempts per server.
        backoff_s: First retry delay; doubles each retry, capped at ``max_backoff_s``.
        max_backoff_s: Cap of one retry delay, also applied to ``Retry-After``.
        temperature: Default sampling temperature of a request.
        max_tokens: Default completion length limit of a request.
        seed: Sampling seed sent to the server; part of the cache key.
        repair_attempts: Re-asks with the validation error when a structured
            answer does not validate (0 disables).
        cache_path: SQLite response cache; None disables caching.
        n_parallel: Server slots of the embedded backend.
        n_ctx: Total context of the embedded server (shared by its slots).
        n_threads: CPU threads of the embedded server; None lets llama.cpp choose.
        model_path: A GGUF file for the embedded backend instead of the packaged Gemma.
        model_dir: Hugging Face model directory of the transformers backend.
        breaker_failures: Consecutive failed calls that open a server's circuit breaker.
        breaker_cooldown_s: Seconds a breaker stays open before one probe call.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Backend = "embedded"
    base_url: str | None = None
    base_urls: tuple[str, ...] | None = None
    model: str = "gemma-3-270m-q4_k_m"
    api_key_env: str | None = None
    api_mode: ApiMode = "auto"
    concurrency: int = Field(default=8, ge=1, le=1024)
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=20)
    backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=10.0, ge=0)
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=256, ge=1)
    seed: int = 0
    repair_attempts: int = Field(default=1, ge=0, le=5)
    cache_path: str | None = "runs/llm_cache.db"
    n_parallel: int = Field(default=4, ge=1, le=256)
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = Field(default=None, ge=1)
    model_path: str | None = None
    model_dir: str | None = None
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=10.0, ge=0)

    @field_validator("base_urls")
    @classmethod
    def _check_base_urls(cls, urls: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if urls is None:
            return None
        if not urls:
            raise ValueError("base_urls is empty; list at least one server URL, e.g. [http://10.0.0.1:8000/v1]")
        for i, url in enumerate(urls):
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"base_urls[{i}]: expected an http(s) URL such as http://10.0.0.1:8000/v1, got {url!r}")
        seen: set[str] = set()
        for url in urls:
            key = url.rstrip("/")
            if key in seen:
                raise ValueError(f"base_urls lists {url!r} twice; list each server once")
            seen.add(key)
        return urls

    @model_validator(mode="after")
    def _check_backend(self) -> LLMConfig:
        if self.base_urls is not None:
            if self.base_url is not None:
                raise ValueError("give base_url (one server) or base_urls (a pool of servers), not both")
            if self.backend != "openai":
                raise ValueError(f"base_urls needs backend 'openai' (got {self.backend!r}); add backend: openai")
        if self.backend == "transformers" and not self.model_dir:
            raise ValueError("backend 'transformers' needs model_dir (a local Hugging Face model directory)")
        if self.api_key_env is not None and not self.api_key_env.replace("_", "").isalnum():
            # Guards against pasting the key itself where its variable name belongs.
            raise ValueError(f"api_key_env must be an environment variable name, got {len(self.api_key_env)} chars")
        return self

    @property
    def endpoints(self) -> tuple[str | None, ...]:
        """The server URLs calls are spread over: ``base_urls``, else ``(base_url,)``."""
        return self.base_urls if self.base_urls is not None else (self.base_url,)

    @property
    def resolved_api_mode(self) -> Literal["chat", "completion"]:
        """The API mode actually used: ``"auto"`` resolved for this backend."""
        if self.api_mode != "auto":
            return self.api_mode
        # Measured: Gemma 3 270M is a base model; through the chat template it
        # echoes template tokens, while plain completions read naturally.
        return "completion" if self.backend in ("embedded", "transformers") else "chat"
