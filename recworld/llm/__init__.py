"""The LLM runtime: batched, bounded, fault-tolerant, cached and accounted LLM calls.

Backends: ``embedded`` (Gemma 3 270M via xllamacpp, offline default),
``openai`` (any OpenAI-compatible server, or a pool of them: ``base_urls``) and ``transformers`` (a local
Hugging Face model). See :class:`LLMRuntime`; tests use
:class:`recworld.llm.testing.ScriptedLLMServer`.
"""

from recworld.llm.cache import ResponseCache, cache_key
from recworld.llm.client import LLMRuntime, OnCall, PendingCalls
from recworld.llm.config import LLMConfig
from recworld.llm.embedded import EmbeddedServer, ensure_model
from recworld.llm.pool import EndpointStats
from recworld.llm.records import LLMCallRecord, LLMRequest, LLMResult, LLMTotals

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
