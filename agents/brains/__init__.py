"""Brains: who makes a user's decisions (utility / user model, scripted, hybrid, llm, distilled)."""

from recworld.agents.brains.scripted import ScriptedBrain
from recworld.agents.brains.utility import UtilityBrain
from recworld.usermodel.params import DecisionParams

__all__ = ["DecisionParams", "ScriptedBrain", "UtilityBrain"]
