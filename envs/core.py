"""The simulation core shared by the RecWorld environments.

A core owns one :class:`~recworld.world.World`. The first ``num_focal``
users of the world are *focal*: their pages come from the caller (an RL
agent); the other (background) users are served by a background recommender.
One interface, :class:`FeedCore`, two clocks (:mod:`recworld.envs.clocks`):

* :class:`~recworld.envs.clocks.ImmediateCore` (Feed envs): a step is one
  page for every focal user, who lives on a compressed clock; the platform
  around them advances one tick every ``background_every`` steps.
* :class:`~recworld.envs.clocks.WorldClockCore` (Platform / competition
  envs): a step is one tick of the world.

and two ways to serve a page (:mod:`recworld.envs.pages`): compiled kernels
for user-model brains, or ``World.serve_page`` for any brain. Both run the
same user model (:mod:`recworld.usermodel`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recworld.catalog import Catalog
from recworld.config import WorldConfig
from recworld.envs import kernels as K
from recworld.envs.features import ObsSpec, item_static_features
from recworld.errors import ConfigError
from recworld.protocols import WorldLayer
from recworld.usermodel.bundled import bundled_catalog, bundled_model
from recworld.usermodel.fit import FittedModel
from recworld.world import World


def default_catalog() -> Catalog:
    """The MovieLens-100K catalog, built once per process (embeddings are cached on disk)."""
    return bundled_catalog()[0]


@dataclass(frozen=True)
class FeedConfig:
    """Frozen, validated configuration of a feed simulation.

    Attributes:
        num_candidates: N candidate items offered per page (drawn from unseen items).
        slate_size: k items shown per page.
        embed_dims: leading principal components of the item embedding in features.
        n_background: background users living in the same world.
        brain: user brain name (``"utility"``, ``"scripted"``) or a Brain instance.
        background_recommender: recommender name (or instance) serving background users.
        watch_reward: reward per watched item.
        rating_weight: reward per rated item times ``(rating - 3) / 2``.
        return_bonus: reward when a session ends and the user will come back.
        churn_penalty: subtracted when the user churns.
        warmup_ticks: ticks the background world lives before focal users arrive.
        background_every: focal pages per tick of the platform around them
            (background users, the background recommender; Feed envs only).
        activity_mean, patience, conformity, diversity_seeking, taste_noise: population spec.
        world: the kernel's :class:`WorldConfig` (``slate_size`` is overridden by ``slate_size``).
    """

    num_candidates: int = 10
    slate_size: int = 2
    embed_dims: int = 8
    n_background: int = 200
    brain: Any = "utility"
    background_recommender: Any = "popularity"
    watch_reward: float = 1.0
    rating_weight: float = 0.5
    return_bonus: float = 0.2
    churn_penalty: float = 5.0
    warmup_ticks: int = 24
    background_every: int = 8
    activity_mean: float = 1.0
    patience: float = 0.55
    conformity: float = 0.5
    diversity_seeking: float = 0.5
    taste_noise: float = 0.6
    world: WorldConfig = field(default_factory=WorldConfig)

    def __post_init__(self) -> None:
        if self.num_candidates < 1:
            raise ConfigError(f"num_candidates must be >= 1, got {self.num_candidates}")
        if not 1 <= self.slate_size <= self.num_candidates:
            raise ConfigError(f"slate_size must be in 1..num_candidates={self.num_candidates}, got {self.slate_size}")
        if self.embed_dims < 1:
            raise ConfigError(f"embed_dims must be >= 1, got {self.embed_dims}")
        if self.n_background < 0:
            raise ConfigError(f"n_background must be >= 0, got {self.n_background}")
        if self.warmup_ticks < 0:
            raise ConfigError(f"warmup_ticks must be >= 0, got {self.warmup_ticks}")
        if self.background_every < 1:
            raise ConfigError(f"background_every must be >= 1, got {self.background_every}")


def make_brain(spec: Any, model: FittedModel | None = None) -> Any:
    """A Brain from a name (user-model brains with ``model``'s fitted decisions) or an instance."""
    if not isinstance(spec, str):
        return spec
    from recworld.agents.brains import ScriptedBrain, UtilityBrain

    decision = model.decision if model is not None else None
    if spec == "utility":
        return UtilityBrain(decision)
    if spec == "scripted":
        return ScriptedBrain()
    if spec in ("hybrid", "llm"):
        # The embedded model by default; pass a built brain for another server.
        from recworld.agents.brains.llm import build_brain_from_config

        return build_brain_from_config(spec, {}, {}, seed=0, decision=decision)
    raise ConfigError(f"brain={spec!r}; expected 'utility', 'scripted', 'hybrid', 'llm' or a Brain instance")


def _make_rec(spec: Any) -> Any:
    if not isinstance(spec, str):
        return spec
    from recworld.agents.recommenders import make_recommender

    return make_recommender(spec)


@dataclass
class StepResult:
    """What happened to the focal users in one :meth:`FeedCore.step`."""

    served: np.ndarray  # (F,) bool, focal user saw a page this step
    slates: np.ndarray  # (F, k) item ids (-1 where not served)
    watched: np.ndarray  # (F, k) bool
    ratings: np.ndarray  # (F, k) float, NaN when not rated
    session_end: np.ndarray  # (F,) bool
    churned: np.ndarray  # (F,) bool, churned on this step
    reward: np.ndarray  # (F,) float

    @classmethod
    def empty(cls, served: np.ndarray, k: int) -> StepResult:
        """A result in which nobody saw a page (rows are filled for those who did)."""
        f = served.size
        return cls(served, np.full((f, k), -1, np.int64), np.zeros((f, k), bool), np.full((f, k), np.nan), np.zeros(f, bool), np.zeros(f, bool), np.zeros(f))

    def fill(
        self, rows: np.ndarray, slates: np.ndarray, watched: np.ndarray, ratings: np.ndarray, leave: np.ndarray, churn: np.ndarray, reward: np.ndarray
    ) -> None:
        """Write the outcome of focal users ``rows``."""
        self.slates[rows], self.watched[rows], self.ratings[rows] = slates, watched, ratings
        self.session_end[rows], self.churned[rows], self.reward[rows] = leave, churn, reward


class FeedCore:
    """One world, ``num_focal`` focal users steered by the caller, background users living around them.

    Subclasses set the clock (:meth:`step`, :meth:`begin`); construct them
    with :func:`make_core`.

    Args:
        config: the feed configuration.
        num_focal: focal users (indices ``0..num_focal-1`` in the world).
        seed: root seed of the world and population (all randomness derives from it).
        catalog: the catalog (default: the cached MovieLens catalog).
    """

    def __init__(self, config: FeedConfig, num_focal: int, seed: int, catalog: Catalog | None = None) -> None:
        from recworld.agents.population import SampledPopulation

        self.cfg = config
        self.F = int(num_focal)
        self.catalog = catalog or default_catalog()
        # The bundled catalog comes with its fitted user model; another catalog runs the content-only model.
        model = bundled_model() if catalog is None or catalog is default_catalog() else None
        if config.num_candidates > len(self.catalog):
            raise ConfigError(f"num_candidates={config.num_candidates} exceeds the catalog's {len(self.catalog)} items; lower num_candidates")
        self.k = config.slate_size
        self.N = config.num_candidates
        root = np.random.SeedSequence(int(seed))
        s_world, s_pop, s_new, s_stream = root.spawn(4)
        self._new_user_rng = np.random.default_rng(s_new)
        # The compiled stream's state (see envs/kernels.py): candidate draws and compiled pages.
        self.stream = s_stream.generate_state(1, np.uint64)
        wcfg = config.world.model_copy(update={"slate_size": self.k})
        pop = SampledPopulation(
            self.catalog,
            self.F + config.n_background,
            seed=int(s_pop.generate_state(1)[0]),
            activity_mean=config.activity_mean,
            patience=config.patience,
            conformity=config.conformity,
            diversity_seeking=config.diversity_seeking,
            taste_noise=config.taste_noise,
            model=model,
        )
        self._population = pop
        items = model.item_table() if model is not None else None
        brain, rec = make_brain(config.brain, model), _make_rec(config.background_recommender)
        self.world = World(self.catalog, pop, brain, rec, wcfg, seed=int(s_world.generate_state(1)[0]), items=items)
        self.world.set_light_metrics()  # envs read rewards from decisions, not from exposure metrics
        if isinstance(self.world.brain, WorldLayer):  # LLM brains set up memory and the instruction encoder
            self.world.add_layer(self.world.brain)
        self.focal = np.arange(self.F)
        self.background = np.arange(self.F, self.world.n_users)
        self.spec = ObsSpec(config.embed_dims)
        self.static = item_static_features(self.catalog.embeddings, self.catalog.quality, config.embed_dims)
        # The platform's log of each focal user: last page's share and rating, recent consumption.
        self.last_share = np.zeros(self.F, np.float32)
        self.last_rating = np.full(self.F, 0.5, np.float32)
        self.recent = np.zeros((self.F, config.embed_dims), np.float32)
        self.candidates = np.zeros((self.F, self.N), np.int64)
        self.steps = 0

    # ------------------------------------------------------------ the clock (subclasses)
    def step(self, focal_slates: np.ndarray | None) -> StepResult:
        """One step: a page for every focal user in session, from ``focal_slates`` (F, k) item ids."""
        raise NotImplementedError

    def begin(self) -> np.ndarray | None:
        """Start what is due at the start of a step (sessions of a world tick); returns who started, if that applies."""
        return None

    def step_action(self, action: np.ndarray) -> StepResult:
        """One step from an action of candidate indices (F, k): :meth:`slates_from_action`, then :meth:`step`."""
        return self.step(self.slates_from_action(action))

    def step_observe(self, action: np.ndarray) -> tuple[StepResult, dict[str, np.ndarray]]:
        """:meth:`step_action`, then :meth:`next_page` (the clock may fuse the two)."""
        return self.step_action(action), self.next_page()

    # ------------------------------------------------------------ users
    def replace_users(self, idx: np.ndarray) -> None:
        """Replace users by fresh users (same spec as the population); they arrive after a first-visit wait."""
        if idx.size == 0:
            return
        w, u = self.world, self.world.users
        fresh = self._population.sample_arrays(int(idx.size), self._new_user_rng)[0]
        for name, arr in fresh.items():
            getattr(u, name)[idx] = arr
        for name in ("fatigue", "watches", "sessions", "pages_in_session"):
            getattr(u, name)[idx] = 0
        u.recent[idx] = 0.0
        u.satisfaction[idx] = 0.6
        u.churned[idx] = False
        u.in_session[idx] = False
        u.first_session[idx] = -1
        u.last_session[idx] = -1
        first = np.floor(self._new_user_rng.exponential(24.0 / np.maximum(fresh["activity"], 0.1))).astype(np.int64)
        u.next_return[idx] = w.tick + first
        w.seen[idx] = False
        f = idx[idx < self.F]
        self.last_share[f] = 0.0
        self.last_rating[f] = 0.5
        self.recent[f] = 0.0

    # ------------------------------------------------------------ observations
    def next_page(self) -> dict[str, np.ndarray]:
        """Open due sessions, draw every focal user's candidates, and return their observation."""
        self.begin()
        return self._observe(self.focal, draw=True)

    def draw_candidates(self, rows: np.ndarray | None = None) -> None:
        """Draw N distinct candidates (unseen ones first) for focal users ``rows`` (default: all)."""
        rows = self.focal if rows is None else np.asarray(rows, np.int64)
        if rows.size == 0:
            return
        out = np.empty((rows.size, self.N), np.int64)
        K.draw_candidates(rows, self.stream, len(self.catalog), self.world.seen.bits, out)
        self.candidates[rows] = out

    def observation(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Fresh observation arrays of focal users ``rows`` (default all): ``user`` (B, U), ``candidates`` (B, N, I)."""
        return self._observe(self.focal if rows is None else np.asarray(rows, np.int64), draw=False)

    def _observe(self, rows: np.ndarray, draw: bool) -> dict[str, np.ndarray]:
        w, u = self.world, self.world.users
        user = np.empty((rows.size, self.spec.user_dim), np.float32)
        cand = np.empty((rows.size, self.N, self.spec.item_dim), np.float32)
        K.observe_rows(
            rows, self.stream, draw, len(self.catalog), w.seen.bits, self.candidates, self.static, w.watch_counts,
            u.pages_in_session, w.config.max_pages, self.last_share, self.last_rating, u.sessions, self.recent, user, cand,
        )  # fmt: skip
        return {"user": user, "candidates": cand}

    def slates_from_action(self, action: np.ndarray) -> np.ndarray:
        """(F, k) item ids from (F, k) candidate indices (a repeated or out-of-range index becomes the lowest unused one)."""
        act = np.ascontiguousarray(np.asarray(action, np.int64).reshape(self.F, -1))
        idx = np.empty_like(act)
        K.dedupe_into(act, self.N, idx)
        return np.take_along_axis(self.candidates, idx, axis=1)

    def reward(self, watched: np.ndarray, ratings: np.ndarray, session_end: np.ndarray, churned: np.ndarray) -> np.ndarray:
        """The Feed reward of pages (numpy form of the compiled path's reward, see ``envs/kernels.py``)."""
        c = self.cfg
        rated = watched & ~np.isnan(ratings)
        bonus = np.where(rated, (np.nan_to_num(ratings, nan=3.0) - 3.0) / 2.0, 0.0).sum(axis=1)
        r = c.watch_reward * watched.sum(axis=1) + c.rating_weight * bonus
        r = r + c.return_bonus * (session_end & ~churned) - c.churn_penalty * churned
        return r.astype(np.float64)


def dedupe_slates(action: np.ndarray, n: int) -> np.ndarray:
    """(B, k) candidate indices -> k distinct indices per row (a repeat or out-of-range index becomes the lowest unused one)."""
    act = np.ascontiguousarray(np.asarray(action, np.int64).reshape(np.asarray(action).shape[0], -1))
    out = np.empty_like(act)
    K.dedupe_into(act, n, out)
    return out


def make_core(config: FeedConfig, num_focal: int, seed: int, catalog: Catalog | None = None, clock: str = "immediate", start: bool = True) -> FeedCore:
    """A core with the given clock: ``"immediate"`` (Feed envs) or ``"world"`` (Platform / competition envs).

    Args:
        start: open the first step after the warm-up (``False``: the caller calls ``begin()``).
    """
    from recworld.envs.clocks import ImmediateCore, WorldClockCore

    if clock == "immediate":
        return ImmediateCore(config, num_focal, seed, catalog, start=start)
    if clock == "world":
        return WorldClockCore(config, num_focal, seed, catalog, start=start)
    raise ConfigError(f"clock={clock!r}; expected 'immediate' or 'world'")


__all__ = ["FeedConfig", "FeedCore", "StepResult", "dedupe_slates", "default_catalog", "make_brain", "make_core"]
