"""The LLM runtime: batched, bounded, fault-tolerant, cached and accounted LLM calls.

Backends: ``embedded`` (Gemma 3 270M via xllamacpp, offline default),
``openai`` (any OpenAI-compatible server, or a pool of them: ``base_urls``) and ``transformers`` (a local
Hugging Face model). See :class:`LLMRuntime`; tests use
:class:`recworld.llm.testing.ScriptedLLMServer`.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from recworld.llm.cache import ResponseCache, cache_key
    from recworld.llm.client import LLMRuntime, OnCall, PendingCalls
    from recworld.llm.config import LLMConfig
    from recworld.llm.embedded import EmbeddedServer, ensure_model
    from recworld.llm.pool import EndpointStats
    from recworld.llm.records import LLMCallRecord, LLMRequest, LLMResult, LLMTotals

# Loaded on first use: the records and the grounding check need no extra, the
# runtime needs the ``llm`` extra (openai), and a utility-brain run with the
# social layer imports the former without the latter.
_WHERE = {
    "ResponseCache": "cache",
    "cache_key": "cache",
    "LLMRuntime": "client",
    "OnCall": "client",
    "PendingCalls": "client",
    "LLMConfig": "config",
    "EmbeddedServer": "embedded",
    "ensure_model": "embedded",
    "EndpointStats": "pool",
    "LLMCallRecord": "records",
    "LLMRequest": "records",
    "LLMResult": "records",
    "LLMTotals": "records",
}


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'recworld.llm' has no attribute {name!r}")
    return getattr(importlib.import_module(f"recworld.llm.{mod}"), name)


__all__ = [
    "EmbeddedServer",
    "EndpointStats",
    "LLMCallRecord",
    "LLMConfig",
    "LLMRequest",
    "LLMResult",
    "LLMRuntime",
    "LLMTotals",
    "OnCall",
    "PendingCalls",
    "ResponseCache",
    "cache_key",
    "ensure_model",
]
