"""The utility brain: the user model's decisions, batched over all users of a page.

The model itself (choice, rating, leave) lives in one place,
:mod:`recworld.usermodel.kernels`; this brain holds its decision parameters
and calls it. See :class:`~recworld.usermodel.params.DecisionParams` for the
form of the model.
"""

from __future__ import annotations

import numpy as np

from recworld.protocols import PageContext, PageDecision
from recworld.usermodel import kernels as UK
from recworld.usermodel.params import DecisionParams, decision_record


class UtilityBrain:
    """Fast, vectorised user decisions from the user model.

    Args:
        params: decision parameters (default: the model's defaults).
    """

    name = "utility"

    def __init__(self, params: DecisionParams | None = None) -> None:
        self.params = params or DecisionParams()
        self.record = decision_record(self.params)

    def decide(self, ctx: PageContext) -> PageDecision:
        """Watch/skip, watched share, ratings and leave for a batch of pages."""
        b, k = ctx.slates.shape
        watched = np.empty((b, k), bool)
        frac = np.empty((b, k))
        ratings = np.empty((b, k))
        leave = np.empty(b, bool)
        UK.decide_pages(self.record, ctx.state, ctx.items, ctx.platform, ctx.users, ctx.slates, ctx.draws, watched, frac, ratings, leave)
        return PageDecision(watched=watched, ratings=ratings, leave=leave, watch_frac=frac)

    def watch_logits(self, ctx: PageContext) -> np.ndarray:
        """(B, k) utility minus the no-click utility of each item: ``sigmoid`` of it is P(watch) when shown alone."""
        out = np.empty(ctx.slates.shape)
        UK.utilities(self.record, ctx.state, ctx.items, ctx.platform, ctx.users, ctx.slates, out)
        return out
