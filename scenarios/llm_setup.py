"""Wiring of LLM-backed brains (hybrid, llm) from a scenario."""

from __future__ import annotations

from typing import Any

from recworld.errors import ConfigError
from recworld.scenarios.schema import Scenario
from recworld.usermodel.params import DecisionParams


def build_llm_brain(scenario: Scenario, decision: DecisionParams | None = None) -> Any:
    """Build the hybrid or llm brain described by ``scenario.brain`` and ``scenario.llm`` (decisions and fallbacks from ``decision``)."""
    try:
        from recworld.agents.brains.llm import build_brain_from_config
    except ImportError:
        raise ConfigError(f"brain.kind={scenario.brain.kind} is not available in this build; use brain.kind: utility") from None
    return build_brain_from_config(scenario.brain.kind, scenario.brain.params, scenario.llm, seed=scenario.seed, decision=decision)
