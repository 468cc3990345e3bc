"""Fixtures for the LLM runtime tests: a scripted OpenAI server and runtimes pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from recworld.llm import LLMCallRecord, LLMConfig, LLMRuntime
from recworld.llm.testing import ScriptedLLMServer


@pytest.fixture
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer() as srv:
        yield srv


@pytest.fixture
def make_runtime(server: ScriptedLLMServer) -> Iterator[Callable[..., tuple[LLMRuntime, list[LLMCallRecord]]]]:
    """Build runtimes against ``server`` with fast retry settings; closes them all afterwards."""
    made: list[LLMRuntime] = []

    def make(**overrides: Any) -> tuple[LLMRuntime, list[LLMCallRecord]]:
        fields: dict[str, Any] = dict(
            backend="openai",
            base_url=server.base_url,
            model="scripted",
            cache_path=None,
            backoff_s=0.01,
            max_backoff_s=1.0,
            timeout_s=0.5,
        )
        fields.update(overrides)
        records: list[LLMCallRecord] = []
        rt = LLMRuntime(LLMConfig(**fields), on_call=[records.append])
        made.append(rt)
        return rt, records

    yield make
    for rt in made:
        rt.close()
