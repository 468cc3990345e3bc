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

    Choice: per item, with ``a`` = taste . item factor (the user's affinity)
    and ``m`` the user's appetite (how much they consume, centred),
    utility = ``affinity`` a + ``affinity_sq`` a^2 + ``affinity_appetite`` a m +
    ``appeal`` x the item's appeal (quality and fame: how known it is) +
    ``fame_appetite`` x fame x m (with ``affinity_sq`` < 0, a is capped where
    the quadratic peaks) + ``popularity`` x conformity x platform
    popularity - ``boredom`` x (0.5 + diversity seeking) x similarity to recent
    consumption - ``position`` x log2(1 + position) - ``fatigue`` x fatigue -
    ``seen_penalty`` x shown before. Watches follow a rank-ordered multinomial
    logit truncated at a no-click option of utility ``no_click`` + the user's
    own threshold (Gumbel noise on every item and on the no-click option),
    whose bar rises by ``satiation`` with each item already taken on the page
    (attention is limited): shown alone, an item is watched with probability
    sigmoid(utility - no_click - threshold). The first group of weights is
    fitted to interaction logs (``recworld fit``); ``popularity``, ``boredom``,
    ``position``, ``fatigue`` and ``seen_penalty`` describe the feed itself,
    which logs without impressions do not show: they are stated priors, as is ``satiation``.

    Rating: an ordered logit on the latent score user bias + item bias +
    rating taste . item factor, with standard logistic noise and cut points
    ``cut1..cut4`` (rating r when the noisy score falls between cut r-1 and cut r).

    Leave: after each page, a logistic hazard ``leave_base`` + ``leave_fatigue`` x
    fatigue - ``leave_patience`` x patience - ``leave_quality`` x share watched.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    affinity: float = Field(1.6, description="logit weight of taste affinity (taste . item factor)")
    affinity_sq: float = Field(0.0, description="logit weight of the squared affinity")
    affinity_appetite: float = Field(0.0, description="logit weight of affinity x the user's appetite")
    appeal: float = Field(1.0, description="logit weight of the item's appeal (quality and fame)")
    fame_appetite: float = Field(0.0, description="logit weight of the item's fame x the user's appetite")
    popularity: float = Field(0.5, description="logit weight of platform popularity, times conformity (a prior)")
    boredom: float = Field(
        0.0,
        description="logit penalty of similarity to recent consumption, times (0.5 + diversity seeking); 0 by default: in ML-100K held-out choices are MORE similar to what was consumed just before than equal-affinity alternatives (see README)",
    )
    position: float = Field(0.35, description="logit penalty per log2(1 + position) (a prior)")
    fatigue: float = Field(1.0, description="logit penalty per unit of fatigue (a prior)")
    seen_penalty: float = Field(1.5, description="logit penalty for an item shown before (a prior)")
    satiation: float = Field(1.5, ge=0, description="rise of the no-click bar per item already taken on the page (a prior; large = one item per page at most)")
    no_click: float = Field(2.2, description="utility of the no-click option (plus each user's threshold)")
    cut1: float = Field(-3.2, description="cut point between ratings 1 and 2 on the latent score")
    cut2: float = Field(-1.6, description="cut point between ratings 2 and 3")
    cut3: float = Field(0.3, description="cut point between ratings 3 and 4")
    cut4: float = Field(2.4, description="cut point between ratings 4 and 5")
    rate_probability: float = Field(0.7, ge=0, le=1, description="chance a watched item gets an explicit rating")
    leave_base: float = Field(-0.3, description="leave hazard intercept (logit)")
    leave_fatigue: float = Field(1.6, description="leave hazard per unit of fatigue")
    leave_patience: float = Field(1.5, description="leave hazard reduction per unit of patience")
    leave_quality: float = Field(5.0, description="leave hazard reduction per share of the page watched")


# Choice terms in the order the kernels compute them; each enters the utility with the named weight.
CHOICE_TERMS = ("affinity", "affinity_sq", "affinity_appetite", "appeal", "fame_appetite", "popularity", "boredom", "position", "fatigue", "seen_penalty")
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


def record(values: object, names: tuple[str, ...]) -> np.ndarray:
    """A 1-element numpy structured array with float64 fields ``names`` taken from ``values`` (for the kernels).

    Kernels take the array and read ``rec[0].name``: an array crosses into
    compiled code far faster than a structured scalar.
    """
    rec = np.zeros(1, np.dtype([(n, np.float64) for n in names]))
    for n in names:
        rec[n] = float(getattr(values, n))
    return rec


def decision_record(params: DecisionParams) -> np.ndarray:
    """The kernels' record of ``params``."""
    return record(params, DECISION_FIELDS)


def dynamics_record(config: WorldConfig) -> np.ndarray:
    """The kernels' record of the world's session, return and churn dynamics."""
    return record(config, DYNAMICS_FIELDS)


__all__ = ["CHOICE_TERMS", "DECISION_FIELDS", "DYNAMICS_FIELDS", "LEAVE_TERMS", "DecisionParams", "decision_record", "dynamics_record", "record"]
