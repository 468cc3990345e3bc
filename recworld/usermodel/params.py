"""Named parameter records of the user model.

The parameters are pydantic models (frozen, validated, JSON round-trip) for
configuration and fitted-model files, and numpy structured scalars for the
compiled kernels, which read them by field name (``p.affinity``) instead of
taking long positional lists.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from recworld.config import WorldConfig


class DecisionParams(BaseModel):
    """How a user decides on a page: watch or skip, rating, leave.

    Choice: per item, utility = ``affinity`` x taste.item-factor + ``appeal`` x the
    item's appeal + ``popularity`` x conformity x platform popularity -
    ``boredom`` x (0.5 + diversity seeking) x similarity to recent consumption -
    ``position`` x log2(1 + position) - ``fatigue`` x fatigue - ``seen_penalty`` x
    shown before; watches follow a rank-ordered multinomial logit truncated at a
    no-click option of utility ``no_click`` + the user's own threshold (Gumbel
    noise on every item and on the no-click option): shown alone, an item is
    watched with probability sigmoid(utility - no_click - threshold).

    Rating: an ordered logit on the latent score ``rating_mean`` + user bias +
    item bias + ``rating_affinity`` x taste.item-factor, with logistic noise of
    scale ``rating_scale`` and cut points ``cut1..cut4`` (rating r when the noisy
    score falls between cut r-1 and cut r).

    Leave: after each page, a logistic hazard ``leave_base`` + ``leave_fatigue`` x
    fatigue - ``leave_patience`` x patience - ``leave_quality`` x share watched.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    affinity: float = Field(1.6, description="logit weight of taste affinity (taste . item factor)")
    appeal: float = Field(0.8, description="logit weight of the item's appeal (how known and liked it is)")
    popularity: float = Field(0.5, description="logit weight of platform popularity, times conformity")
    boredom: float = Field(1.5, description="logit penalty of similarity to recent consumption, times (0.5 + diversity seeking)")
    position: float = Field(0.35, description="logit penalty per log2(1 + position)")
    fatigue: float = Field(1.0, description="logit penalty per unit of fatigue")
    seen_penalty: float = Field(1.5, description="logit penalty for an item shown before")
    no_click: float = Field(2.2, description="utility of the no-click option (plus each user's threshold)")
    rating_mean: float = Field(3.45, description="global mean of the latent rating score")
    rating_affinity: float = Field(0.2, description="rating points per unit of taste affinity")
    rating_scale: float = Field(0.55, gt=0, description="scale of the logistic rating noise")
    cut1: float = Field(1.5, description="cut point between ratings 1 and 2")
    cut2: float = Field(2.5, description="cut point between ratings 2 and 3")
    cut3: float = Field(3.5, description="cut point between ratings 3 and 4")
    cut4: float = Field(4.5, description="cut point between ratings 4 and 5")
    rate_probability: float = Field(0.7, ge=0, le=1, description="chance a watched item gets an explicit rating")
    leave_base: float = Field(-0.3, description="leave hazard intercept (logit)")
    leave_fatigue: float = Field(1.6, description="leave hazard per unit of fatigue")
    leave_patience: float = Field(1.5, description="leave hazard reduction per unit of patience")
    leave_quality: float = Field(5.0, description="leave hazard reduction per share of the page watched")


# Choice terms in the order the kernels compute them; each enters the utility with the named weight.
CHOICE_TERMS = ("affinity", "appeal", "popularity", "boredom", "position", "fatigue", "seen_penalty")
LEAVE_TERMS = ("leave_fatigue", "leave_patience", "leave_quality")

DECISION_FIELDS = tuple(DecisionParams.model_fields)
DYNAMICS_FIELDS = (
    "max_pages",
    "satisfaction_rate",
    "fatigue_per_page",
    "drift_rate",
    "churn_base",
    "churn_sensitivity",
    "mean_return_ticks",
    "return_sensitivity",
    "fatigue_recovery_ticks",
    "anchor_rate",
)


def record(values: BaseModel, names: tuple[str, ...]) -> np.void:
    """A numpy structured scalar with float64 fields ``names`` taken from ``values`` (for the kernels)."""
    rec = np.zeros(1, np.dtype([(n, np.float64) for n in names]))
    for n in names:
        rec[n] = float(getattr(values, n))
    return rec[0]


def decision_record(params: DecisionParams) -> np.void:
    """The kernels' record of ``params``."""
    return record(params, DECISION_FIELDS)


def dynamics_record(config: WorldConfig) -> np.void:
    """The kernels' record of the world's session, return and churn dynamics."""
    return record(config, DYNAMICS_FIELDS)


__all__ = ["CHOICE_TERMS", "DECISION_FIELDS", "DYNAMICS_FIELDS", "LEAVE_TERMS", "DecisionParams", "decision_record", "dynamics_record", "record"]
