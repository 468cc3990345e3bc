"""The utility brain: a vectorised choice model over embeddings.

Per item on a page, utility = taste affinity + item quality + conformity to
platform popularity - boredom (similarity to what was just consumed) - position
bias - fatigue - a penalty for items seen before. Choices follow a rank-ordered
(exploded) multinomial logit truncated at a no-click option: with i.i.d.
Gumbel noise on every item and on the no-click option, the items whose noisy
utility beats the no-click option's are watched. The first choice is exactly
MNL with a no-click option; the shared no-click draw makes a page's watches
correlate (a good or bad "mood"). Ratings: a bias model (global mean + user
bias + item quality) plus taste affinity and noise, calibrated on held-out
MovieLens-100K ratings (see tests/agents/brains/test_utility.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from recworld.protocols import PageDecision

if TYPE_CHECKING:  # pragma: no cover
    from recworld.world import World


class UtilityParams(BaseModel):
    """Parameters of the utility brain (all have calibrated defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    affinity: float = Field(1.6, description="logit weight of taste affinity (per std of affinity)")
    quality: float = Field(0.8, description="logit weight of item quality (rating points)")
    popularity: float = Field(0.5, description="logit weight of platform popularity, times conformity")
    boredom: float = Field(1.5, description="logit penalty of similarity to recent consumption, times diversity-seeking")
    position: float = Field(0.35, description="logit penalty per log2(1 + position)")
    fatigue: float = Field(1.0, description="logit penalty per unit of fatigue")
    seen_penalty: float = Field(1.5, description="logit penalty for an item shown before")
    no_click: float = Field(2.2, description="utility of the no-click option")
    rating_mean: float = Field(3.53, description="global mean rating")
    rating_affinity: float = Field(0.2, description="rating points per std of affinity")
    rating_affinity_offset: float = Field(0.4, description="affinity (in stds) of a typical rated item; ratings centre on it")
    rating_quality: float = Field(1.0, description="weight of item quality in ratings")
    rating_noise: float = Field(0.95, description="std of rating noise (rating points)")
    rate_probability: float = Field(0.7, description="chance a watched item gets an explicit rating")
    leave_base: float = Field(-0.3, description="leave hazard intercept (logit)")
    leave_fatigue: float = Field(1.6, description="leave hazard per unit of fatigue")
    leave_patience: float = Field(1.5, description="leave hazard reduction per unit of patience")
    leave_quality: float = Field(5.0, description="leave hazard reduction per share of the page watched")


class UtilityBrain:
    """Fast, vectorised user decisions (see module docstring)."""

    name = "utility"

    def __init__(self, params: UtilityParams | None = None) -> None:
        self.params = params or UtilityParams()
        self._aff_scale: float | None = None

    def affinity_scale(self, world: World) -> float:
        """1 / std of taste-item cosine over the population and catalog (computed once)."""
        if self._aff_scale is None:
            rng = np.random.default_rng(0)
            users = rng.choice(world.n_users, size=min(500, world.n_users), replace=False)
            sims = world.users.taste0[users] @ world.catalog.embeddings.T
            self._aff_scale = 1.0 / max(float(sims.std()), 1e-3)
        return self._aff_scale

    def utilities(self, world: World, users: np.ndarray, slates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Utilities (B, k) of the items and standardised affinities (B, k)."""
        p = self.params
        u = world.users
        emb = world.catalog.embeddings
        e = emb[slates]  # (B, k, d)
        aff = np.einsum("bd,bkd->bk", u.taste[users], e) * self.affinity_scale(world)
        bored = np.maximum(np.einsum("bd,bkd->bk", u.recent[users], e), 0.0)
        wc = world.watch_counts[slates]
        pop = np.log1p(wc) / np.log1p(max(int(world.watch_counts.max()), 1))
        k = slates.shape[1]
        pos = np.log2(1.0 + np.arange(k, dtype=np.float32))
        seen = world.seen[users[:, None], slates]
        util = (
            p.affinity * aff
            + p.quality * world.catalog.quality[slates]
            + p.popularity * u.conformity[users, None] * pop
            - p.boredom * (0.5 + u.diversity_seeking[users, None]) * bored
            - p.position * pos[None, :]
            - p.fatigue * u.fatigue[users, None]
            - p.seen_penalty * seen
        )
        return util.astype(np.float32), aff.astype(np.float32)

    def decide(self, world: World, users: np.ndarray, slates: np.ndarray) -> PageDecision:
        """Watch/skip, ratings and leave for a batch of pages."""
        p = self.params
        rng = world.brain_rng
        util, aff = self.utilities(world, users, slates)
        b, k = slates.shape
        g = rng.gumbel(size=(b, k + 1)).astype(np.float32)
        watched = util + g[:, :k] > p.no_click + g[:, k:]
        frac = np.where(watched, np.clip(0.55 + 0.15 * (util - p.no_click) + 0.1 * rng.standard_normal((b, k)), 0.05, 1.0), 0.0)
        ratings = self.ratings(world, users, slates, aff, rng)
        rated = watched & (rng.random((b, k)) < p.rate_probability)
        ratings = np.where(rated, ratings, np.nan)
        share = watched.mean(axis=1)
        u = world.users
        hazard = p.leave_base + p.leave_fatigue * u.fatigue[users] - p.leave_patience * u.patience[users] - p.leave_quality * share
        leave = rng.random(b) < 1.0 / (1.0 + np.exp(-hazard))
        return PageDecision(watched=watched, ratings=ratings, leave=leave, watch_frac=frac)

    def ratings(self, world: World, users: np.ndarray, slates: np.ndarray, aff: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Ratings 1..5 the users would give the items (B, k), before 'did they rate'."""
        p = self.params
        raw = (
            p.rating_mean
            + world.users.rating_bias[users, None]
            + p.rating_quality * world.catalog.quality[slates]
            + p.rating_affinity * (aff - p.rating_affinity_offset)
            + p.rating_noise * rng.standard_normal(slates.shape)
        )
        return np.clip(np.rint(raw), 1, 5)
