"""A deterministic brain for tests: rules, no randomness."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recworld.protocols import PageContext, PageDecision


class ScriptedBrain:
    """Watches items whose index satisfies ``rule``; rates them ``rating``; leaves after ``pages`` pages.

    Args:
        rule: item index -> watched (default: even item ids).
        rating: rating given to every watched item.
        pages: pages per session before leaving.
        instruction: if set, a reflective instruction given when leaving a page with no watch.
    """

    name = "scripted"

    def __init__(self, rule: Callable[[np.ndarray], np.ndarray] | None = None, rating: float = 4.0, pages: int = 2, instruction: str | None = None) -> None:
        self.rule = rule or (lambda items: items % 2 == 0)
        self.rating = rating
        self.pages = pages
        self.instruction = instruction

    def decide(self, ctx: PageContext) -> PageDecision:
        users, slates = ctx.users, ctx.slates
        watched = np.asarray(self.rule(slates), bool)
        ratings = np.where(watched, self.rating, np.nan)
        leave = ctx.state.pages_in_session[users] + 1 >= self.pages
        instr = {}
        if self.instruction:
            instr = {i: self.instruction for i in np.flatnonzero(leave & ~watched.any(axis=1))}
        return PageDecision(watched=watched, ratings=ratings, leave=leave, instructions=instr)
