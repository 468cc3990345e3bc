"""Brains: who makes a user's page decisions (utility, scripted; llm and hybrid in agents.brains.llm; distilled in agents.brains.distilled)."""

from recworld.agents.brains.scripted import ScriptedBrain
from recworld.agents.brains.utility import UtilityBrain, UtilityParams

__all__ = ["ScriptedBrain", "UtilityBrain", "UtilityParams"]
