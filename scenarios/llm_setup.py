"""Wiring of LLM-backed brains (hybrid, llm) from a scenario."""

from __future__ import annotations

from typing import Any

from recworld.errors import require_extra
from recworld.scenarios.schema import Scenario
from recworld.usermodel.params import DecisionParams


def build_llm_brain(scenario: Scenario, decision: DecisionParams | None = None) -> Any:
    """Build the hybrid or llm brain described by ``scenario.brain`` and ``scenario.llm`` (decisions and fallbacks from ``decision``)."""
    require_extra("openai", "llm", f"brain.kind={scenario.brain.kind}")
    from recworld.agents.brains.llm import build_brain_from_config

    return build_brain_from_config(scenario.brain.kind, scenario.brain.params, scenario.llm, seed=scenario.seed, decision=decision, horizon=scenario.ticks)
