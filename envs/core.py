"""The simulation core shared by the RecWorld environments.

A :class:`FeedCore` owns one :class:`~recworld.world.World`. The first
``num_focal`` users of the world are *focal*: their pages come from the
caller (an RL agent); the other (background) users are served by a
background recommender. Pages are served one at a time per user (sessions
span steps). Two time models:

* ``"immediate"`` (Feed envs): a step is one page for every focal user.
  When a focal session ends and the user did not churn, the next session
  starts at once, with the user's state updated as if the away time the
  world drew had passed (fatigue recovery). Focal users live on this
  compressed clock, so an episode of T steps is T pages of the user's life.
  The platform around them (background users, the background recommender,
  item popularity) advances one tick every ``background_every`` steps, in
  which each background user in session sees one page; once a day
  newcomers replace background users who churned, so it keeps its size.
* ``"world"`` (Platform / competition envs): a step is one tick in which
  every user in session sees one page; users come back when the world's
  return-time model says so, and steps in between serve them nothing.

With the utility brain (or one fitted in its form) an ``"immediate"`` core
runs on compiled kernels (:mod:`recworld.envs.kernels`) instead of
``World.serve_page``: same model, no event log, much less per-step overhead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recworld.catalog import Catalog
from recworld.config import WorldConfig
from recworld.envs import kernels as K
from recworld.errors import ConfigError
from recworld.events import EventBatch
from recworld.protocols import Feedback
from recworld.world import World

_CATALOG: Catalog | None = None
# The compiled path logs no events; recommenders get this shared empty batch.
_NO_EVENTS = EventBatch.empty()
_NEVER = np.iinfo(np.int64).max // 2
_CATALOG_LOCK = threading.Lock()


def default_catalog() -> Catalog:
    """The MovieLens-100K catalog, built once per process (embeddings are cached on disk)."""
    global _CATALOG
    with _CATALOG_LOCK:
        if _CATALOG is None:
            from recworld.agents.population import item_quality
            from recworld.data import load_movielens

            ml = load_movielens()
            q, _ = item_quality(ml)
            _CATALOG = Catalog.build(ml.items, quality=q)
        return _CATALOG


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
            (background users, the background recommender; ``"immediate"`` cores only).
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


# Observation layout (shared with PolicyRecommender, which rebuilds it from logs).
USER_SCALARS = ("page_in_session", "last_watch_share", "last_rating", "sessions")
N_USER_SCALARS = len(USER_SCALARS)


def user_dim(embed_dims: int) -> int:
    """Length of the user feature vector."""
    return N_USER_SCALARS + embed_dims


def item_dim(embed_dims: int) -> int:
    """Length of one candidate's feature vector: embedding dims + popularity + quality."""
    return embed_dims + 2


def item_static_features(catalog: Catalog, embed_dims: int) -> np.ndarray:
    """(n_items, embed_dims + 1): scaled leading embedding dims and quality, in [-1, 1]."""
    d = min(embed_dims, catalog.dim)
    emb = catalog.embeddings[:, :d] * np.sqrt(catalog.dim / d)
    out = np.zeros((len(catalog), embed_dims + 1), np.float32)
    out[:, :d] = np.clip(emb, -1, 1)
    out[:, embed_dims] = np.clip(catalog.quality / 2.0, -1, 1)
    return out


def user_features(
    recent: np.ndarray, pages: np.ndarray, max_pages: int, last_share: np.ndarray, last_rating: np.ndarray, sessions: np.ndarray, embed_dims: int, dim: int
) -> np.ndarray:
    """(B, user_dim) features from what a platform logs about a user."""
    b = recent.shape[0]
    d = min(embed_dims, dim)
    out = np.zeros((b, user_dim(embed_dims)), np.float32)
    out[:, 0] = np.minimum(pages / max(max_pages, 1), 1.0)
    out[:, 1] = last_share
    out[:, 2] = last_rating
    out[:, 3] = np.minimum(np.log1p(sessions) / np.log(101.0), 1.0)
    out[:, N_USER_SCALARS : N_USER_SCALARS + d] = np.clip(recent[:, :d] * np.sqrt(dim / d), -1, 1)
    return out


def candidate_features(static: np.ndarray, watch_counts: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """(B, N, item_dim) features of candidate items ``cand`` (B, N)."""
    b, n = cand.shape
    e = static.shape[1] - 1
    out = np.empty((b, n, e + 2), np.float32)
    g = static[cand]  # whole rows: one contiguous gather
    out[:, :, :e] = g[:, :, :e]
    out[:, :, e + 1] = g[:, :, e]
    top = np.log1p(max(int(watch_counts.max()) if watch_counts.size else 0, 1))
    out[:, :, e] = np.log1p(watch_counts[cand].astype(np.float32)) / np.float32(top)
    return out


def sample_unseen(rng: np.random.Generator, seen: np.ndarray, n_items: int, n: int, users: np.ndarray | None = None) -> np.ndarray:
    """(B, n) distinct items per row, unseen ones first (uniformly at random).

    ``seen`` is either the (B, >=n_items) rows themselves or, with ``users``,
    the whole seen matrix (no copy of the rows is made).

    Rejection sampling on a few extra draws per row keeps this O(B * n); rows that
    have seen almost everything fall back to an exact draw (seen items fill up).
    """
    user_rows = np.arange(seen.shape[0]) if users is None else np.asarray(users)
    b = user_rows.shape[0]
    if b == 0:
        return np.zeros((0, n), np.int64)
    m = min(2 * n + 8, max(n_items, n))
    # 16-bit ids when they fit: numpy's stable sort is then a radix sort (much faster).
    draw = rng.integers(0, n_items, size=(b, m), dtype=np.int16 if n_items <= np.iinfo(np.int16).max else np.int64)
    rows = np.arange(b)[:, None]
    # Repeated draws: a stable sort puts repeats after their first occurrence;
    # flag them and scatter the flags back to the draw order (O(B m log m)).
    order = np.argsort(draw, axis=1, kind="stable")
    srt = np.take_along_axis(draw, order, axis=1)
    dup = np.zeros((b, m), bool)
    dup[rows, order[:, 1:]] = srt[:, 1:] == srt[:, :-1]
    valid = ~seen[user_rows[:, None], draw] & ~dup
    ok = valid.sum(axis=1) >= n
    take = valid & (np.cumsum(valid, axis=1) <= n)
    out = np.empty((b, n), np.int64)
    if ok.all():
        out[:] = draw[take].reshape(b, n)
    else:
        out[ok] = draw[ok][take[ok]].reshape(-1, n)
    bad = np.flatnonzero(~ok)
    for r in bad:
        unseen = np.flatnonzero(~seen[user_rows[r], :n_items])
        if unseen.size >= n:
            out[r] = rng.choice(unseen, size=n, replace=False)
        else:
            rest = np.setdiff1d(np.arange(n_items), unseen)
            out[r] = np.concatenate([rng.permutation(unseen), rng.choice(rest, size=n - unseen.size, replace=False)])
    return out.astype(np.int64)


def dedupe_slates(action: np.ndarray, n: int) -> np.ndarray:
    """Turn (B, k) candidate indices into k *distinct* indices per row.

    A position that repeats an earlier position's candidate (or is out of
    range) is replaced by the lowest-index candidate not used yet in that row.
    """
    a = np.asarray(action, np.int64).reshape(action.shape[0], -1).copy()
    b, k = a.shape
    used = np.zeros((b, n), bool)
    rows = np.arange(b)
    for j in range(k):
        col = a[:, j]
        bad = (col < 0) | (col >= n)
        col = np.clip(col, 0, n - 1)
        bad |= used[rows, col]
        if bad.any():
            col = np.where(bad, np.argmax(~used, axis=1), col)
        used[rows, col] = True
        a[:, j] = col
    return a


def make_brain(spec: Any) -> Any:
    """A Brain from a name or an instance."""
    if not isinstance(spec, str):
        return spec
    from recworld.agents.brains import ScriptedBrain, UtilityBrain

    if spec == "utility":
        return UtilityBrain()
    if spec == "scripted":
        return ScriptedBrain()
    if spec in ("hybrid", "llm"):
        # The embedded model by default; pass a built brain for another server.
        from recworld.agents.brains.llm import build_brain_from_config

        return build_brain_from_config(spec, {}, {}, seed=0)
    raise ConfigError(f"brain={spec!r}; expected 'utility', 'scripted', 'hybrid', 'llm' or a Brain instance")


def _make_rec(spec: Any) -> Any:
    if not isinstance(spec, str):
        return spec
    from recworld.agents.recommenders import make_recommender

    return make_recommender(spec)


def supports_fast_path(world: World) -> bool:
    """Whether the compiled kernels implement this world's model exactly (utility-family brain, no tick hooks)."""
    from recworld.agents.brains.utility import UtilityBrain

    b = type(world.brain)
    same = isinstance(world.brain, UtilityBrain) and all(getattr(b, m) is getattr(UtilityBrain, m) for m in ("decide", "utilities", "ratings"))
    return same and not world.tick_hooks and not world.observers


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


class FeedCore:
    """One world, ``num_focal`` focal users steered by the caller, background users living around them.

    Args:
        config: the feed configuration.
        num_focal: focal users (indices ``0..num_focal-1`` in the world).
        seed: root seed of the world and population (all randomness derives from it).
        catalog: the catalog (default: the cached MovieLens catalog).
        returns: ``"immediate"`` or ``"world"`` (see the module docstring).
        start: open the first tick after the warm-up (``False``: the caller calls :meth:`begin`).
    """

    def __init__(self, config: FeedConfig, num_focal: int, seed: int, catalog: Catalog | None = None, returns: str = "immediate", start: bool = True) -> None:
        from recworld.agents.population import SampledPopulation

        if returns not in ("immediate", "world"):
            raise ConfigError(f"returns={returns!r}; expected 'immediate' or 'world'")
        self.cfg = config
        self.F = int(num_focal)
        self.returns = returns
        self.catalog = catalog or default_catalog()
        if config.num_candidates > len(self.catalog):
            raise ConfigError(f"num_candidates={config.num_candidates} exceeds the catalog's {len(self.catalog)} items; lower num_candidates")
        self.k = config.slate_size
        self.N = config.num_candidates
        root = np.random.SeedSequence(int(seed))
        s_world, s_pop, s_new, s_cand, s_fast = root.spawn(5)
        self._new_user_rng = np.random.default_rng(s_new)
        self.cand_rng = np.random.default_rng(s_cand)
        # State of the compiled path's random stream (see envs/kernels.py).
        self._rng_state = s_fast.generate_state(1, np.uint64)
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
        )
        self._population = pop
        self.world = World(self.catalog, pop, make_brain(config.brain), _make_rec(config.background_recommender), wcfg, seed=int(s_world.generate_state(1)[0]))
        self.world.light_metrics = True  # envs read rewards from decisions, not from exposure metrics
        attach = getattr(self.world.brain, "attach", None)
        if callable(attach):  # LLM brains set up memory and the instruction encoder
            attach(self.world)
        self.focal = np.arange(self.F)
        self.background = np.arange(self.F, self.world.n_users)
        self.static = item_static_features(self.catalog, config.embed_dims)
        self.last_share = np.zeros(self.F, np.float32)
        self.last_rating = np.full(self.F, 0.5, np.float32)
        self.candidates = np.zeros((self.F, self.N), np.int64)
        self.steps = 0
        # Compiled fast path (envs/kernels.py) where the model is one it implements.
        self.fast = returns == "immediate" and supports_fast_path(self.world)
        if self.fast:
            self._setup_fast()
        self._pending_obs: tuple[Any, dict[str, np.ndarray]] | None = None
        self._bg_churn = False
        self._focal_feedback: list[tuple[np.ndarray, ...]] = []
        u = self.world.users
        if returns == "immediate":
            # Focal users arrive after the warm-up, on their own clock (see _arrive).
            u.next_return[: self.F] = _NEVER
            if not self.fast:
                self.world.begin_tick()
            for _ in range(config.warmup_ticks):
                self._background_tick()
            if start:
                self._arrive(self.focal)
        else:
            u.next_return[: self.F] += config.warmup_ticks
            for _ in range(config.warmup_ticks):
                self.begin()
                self.step(None)
        if start:
            self.begin()
            self.draw_candidates()

    # ------------------------------------------------------------ stepping
    def step(self, focal_slates: np.ndarray | None) -> StepResult:
        """One step: a page for every focal user in session, from ``focal_slates`` (F, k) item ids.

        ``"immediate"``: the platform around them advances one tick every
        ``background_every`` steps. ``"world"``: every step is a tick in which
        everyone in session sees a page.
        """
        if self.returns == "world":
            return self._step_world(focal_slates)
        res = self._focal_page_fast(focal_slates) if self.fast else self._focal_page_numpy(focal_slates)
        self.steps += 1
        if self.steps % self.cfg.background_every == 0:
            self._background_tick()
        return res

    def begin(self) -> np.ndarray | None:
        """``"world"``: start the sessions due at the (new) current tick and return who started.

        ``"immediate"``: nothing to do (focal sessions start on arrival and
        restart right after a session ends; background ticks run in :meth:`step`).
        """
        if self.returns == "world":
            self._replace_background()
            return self.world.begin_tick()
        return None

    def _focal_page_numpy(self, focal_slates: np.ndarray | None) -> StepResult:
        w, u, F, k = self.world, self.world.users, self.F, self.k
        served = u.in_session[:F].copy()
        fids = np.flatnonzero(served)
        res = StepResult(
            served, np.full((F, k), -1, np.int64), np.zeros((F, k), bool), np.full((F, k), np.nan), np.zeros(F, bool), np.zeros(F, bool), np.zeros(F)
        )
        if fids.size:
            if focal_slates is None:
                raise ConfigError("focal users are in session but no slates were given")
            page = w.serve_page(fids, np.asarray(focal_slates, np.int64)[fids])
            self._record_focal(res, fids, page.slates, page.decision.watched, page.decision.ratings, page.leave)
            back = fids[page.leave & ~u.churned[fids]]
            if back.size:
                # Back at once, with the away time the world drew (fatigue recovers over it).
                u.last_session[back] = w.tick - (u.next_return[back] - w.tick)
                w.start_sessions(back)
        res.reward = self.reward(res.watched, res.ratings, res.session_end, res.churned)
        return res

    def _record_focal(self, res: StepResult, fids: np.ndarray, slates: np.ndarray, watched: Any, ratings: Any, leave: np.ndarray) -> None:
        u, k = self.world.users, self.k
        res.slates[fids] = slates
        res.watched[fids] = np.asarray(watched, bool)
        res.ratings[fids] = np.asarray(ratings, np.float64)
        res.session_end[fids] = leave
        res.churned[fids] = u.churned[fids] & leave
        wt, rt = res.watched[fids], res.ratings[fids]
        self.last_share[fids] = wt.sum(axis=1) / k
        rated = ~np.isnan(rt) & wt
        rsum = np.where(rated, (rt - 1.0) / 4.0, 0.0).sum(axis=1)
        self.last_rating[fids] = np.where(rated.any(axis=1), rsum / np.maximum(rated.sum(axis=1), 1), 0.5)

    def _step_world(self, focal_slates: np.ndarray | None) -> StepResult:
        w, u, F, k = self.world, self.world.users, self.F, self.k
        served = u.in_session[:F].copy()
        fids = np.flatnonzero(served)
        bg = F + np.flatnonzero(u.in_session[F:])
        res = StepResult(
            served, np.full((F, k), -1, np.int64), np.zeros((F, k), bool), np.full((F, k), np.nan), np.zeros(F, bool), np.zeros(F, bool), np.zeros(F)
        )
        parts_u, parts_s = [], []
        if fids.size:
            if focal_slates is None:
                raise ConfigError("focal users are in session but no slates were given")
            parts_u.append(fids)
            parts_s.append(np.asarray(focal_slates, np.int64)[fids])
        if bg.size:
            parts_u.append(bg)
            parts_s.append(w.recommender.recommend(bg, k, w.context()))
        if parts_u:
            page = w.serve_page(np.concatenate(parts_u), np.concatenate(parts_s).astype(np.int64))
            nf = fids.size
            if nf:
                self._record_focal(res, fids, page.slates[:nf], page.decision.watched[:nf], page.decision.ratings[:nf], page.leave[:nf])
        res.reward = self.reward(res.watched, res.ratings, res.session_end, res.churned)
        # Sessions span ticks in env time: keep them open across the tick boundary.
        w.end_tick(close_sessions=False)
        return res

    def _background_tick(self) -> None:
        """Advance the platform one tick: background users in session see a page, newcomers arrive daily."""
        w, u, k = self.world, self.world.users, self.k
        self._flush_focal_feedback()
        if self.fast:
            self._replace_background()
            self._start_fast(self.background)
            bg = self.F + np.flatnonzero(u.in_session[self.F :])
            if bg.size:
                slates = np.asarray(w.recommender.recommend(bg, k, w.context()), np.int64)
                out = self._serve_fast(bg, slates)
                w.recommender.observe(Feedback(w.tick, bg, slates, out[0], out[1], out[2], _NO_EVENTS))
            w.tick += 1
            return
        bg = self.F + np.flatnonzero(u.in_session[self.F :])
        if bg.size:
            w.serve_page(bg)
        w.end_tick(close_sessions=False)
        self._replace_background()
        w.begin_tick()

    def _replace_background(self) -> None:
        # Once a day newcomers take the places of churned background users, so the platform keeps its size.
        if self.world.tick % self.world.config.period_ticks or not (self._bg_churn or not self.fast):
            return
        gone = self.F + np.flatnonzero(self.world.users.churned[self.F :])
        if gone.size:
            self.replace_users(gone)
        self._bg_churn = False

    def _arrive(self, focal_idx: np.ndarray) -> None:
        """Focal users start their first session now."""
        u, w = self.world.users, self.world
        u.next_return[focal_idx] = w.tick
        if self.fast:
            self._start_fast(focal_idx)
        else:
            w.start_sessions(focal_idx)

    # ------------------------------------------------------------ fast path
    def _setup_fast(self) -> None:
        w, brain = self.world, self.world.brain
        self._bp = K.pack(brain.params, K.BRAIN_PARAMS)
        self._wp = K.pack(w.config, K.WORLD_PARAMS)
        self._rp = K.pack(self.cfg, K.REWARD_PARAMS)
        self._aff_scale = float(brain.affinity_scale(w))

    def _start_fast(self, users: np.ndarray) -> None:
        w, u = self.world, self.world.users
        K.start_sessions(
            users,
            w.tick,
            u.churned,
            u.in_session,
            u.next_return,
            u.first_session,
            u.last_session,
            u.sessions,
            u.pages_in_session,
            u.fatigue,
            u.taste,
            u.taste0,
            self._wp,
        )

    def _serve_fast(self, users: np.ndarray, slates: np.ndarray) -> tuple[np.ndarray, ...]:
        w, u = self.world, self.world.users
        b, k = slates.shape
        out = (np.empty((b, k), bool), np.empty((b, k)), np.empty(b, bool), np.empty(b, bool), np.empty(b))
        self._bg_churn |= 0 < K.serve_pages(
            users, slates, self._rng_state, w.tick, self.F, self._bp, self._wp, self._rp, self._aff_scale,
            u.taste, u.taste0, u.recent, u.conformity, u.diversity_seeking, u.fatigue, u.patience, u.rating_bias, u.satisfaction, u.activity,
            u.pages_in_session, u.watches, u.sessions, u.in_session, u.churned, u.first_session, u.last_session, u.next_return,
            w.seen, w.exposure, w.watch_counts, w.catalog.embeddings, w.catalog.quality, self.last_share, self.last_rating, *out,
        )  # fmt: skip
        return out

    def _focal_page_fast(self, focal_slates: np.ndarray | None) -> StepResult:
        u, F = self.world.users, self.F
        served = u.in_session[:F].copy()
        if served.all():
            fids, slates = self.focal, np.asarray(focal_slates, np.int64)
        else:
            fids = np.flatnonzero(served)
            slates = np.asarray(focal_slates, np.int64)[fids] if fids.size else np.zeros((0, self.k), np.int64)
        if fids.size and focal_slates is None:
            raise ConfigError("focal users are in session but no slates were given")
        watched, ratings, leave, churn, reward = self._serve_fast(fids, slates)
        self._focal_feedback.append((fids, slates, watched, ratings, leave))
        if fids.size == F:
            return StepResult(served, slates, watched, ratings, leave, churn, reward)
        res = StepResult(
            served,
            np.full((F, self.k), -1, np.int64),
            np.zeros((F, self.k), bool),
            np.full((F, self.k), np.nan),
            np.zeros(F, bool),
            np.zeros(F, bool),
            np.zeros(F),
        )
        for name, arr in (("slates", slates), ("watched", watched), ("ratings", ratings), ("session_end", leave), ("churned", churn), ("reward", reward)):
            getattr(res, name)[fids] = arr
        return res

    def _flush_focal_feedback(self) -> None:
        # The background recommender learns from the focal pages too, once per tick.
        fb, self._focal_feedback = self._focal_feedback, []
        if not fb:
            return
        parts = [np.concatenate(x) for x in zip(*fb)] if len(fb) > 1 else list(fb[0])
        if parts[0].size:
            self.world.recommender.observe(Feedback(self.world.tick, *parts, _NO_EVENTS))

    def reward(self, watched: np.ndarray, ratings: np.ndarray, session_end: np.ndarray, churned: np.ndarray) -> np.ndarray:
        c = self.cfg
        rated = watched & ~np.isnan(ratings)
        bonus = np.where(rated, (np.nan_to_num(ratings, nan=3.0) - 3.0) / 2.0, 0.0).sum(axis=1)
        r = c.watch_reward * watched.sum(axis=1) + c.rating_weight * bonus
        r = r + c.return_bonus * (session_end & ~churned) - c.churn_penalty * churned
        return r.astype(np.float64)

    # ------------------------------------------------------------ users
    def replace_users(self, idx: np.ndarray) -> None:
        """Replace users by fresh users (same spec as the population).

        Focal users of an ``"immediate"`` core start their first session at
        once; everyone else arrives after a first-visit wait drawn from their activity.
        """
        if idx.size == 0:
            return
        w, u = self.world, self.world.users
        fresh = self._sample_users(int(idx.size))
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
        if f.size and self.returns == "immediate":
            self._arrive(f)

    def _sample_users(self, n: int) -> dict[str, np.ndarray]:
        # The population's own sampler, without personas: autoreset stays cheap.
        return self._population.sample_arrays(n, self._new_user_rng)[0]

    # ------------------------------------------------------------ observations
    def next_page(self) -> dict[str, np.ndarray]:
        """Open due sessions, draw every focal user's candidates, and return their observation."""
        self.begin()
        self.draw_candidates()
        return self.observation()

    def draw_candidates(self, rows: np.ndarray | None = None) -> None:
        """Draw N unseen candidates for focal users ``rows`` (default: all)."""
        rows = self.focal if rows is None else rows
        if self.fast:
            # Candidates and observation in one compiled pass; observation() hands the latter out.
            self._pending_obs = (rows, self._observe_fast(rows, draw=True))
            return
        if rows.size:
            self.candidates[rows] = sample_unseen(self.cand_rng, self.world.seen, len(self.catalog), self.N, users=rows)

    def _observe_fast(self, rows: np.ndarray, draw: bool) -> dict[str, np.ndarray]:
        w, u, b = self.world, self.world.users, rows.size
        e = self.cfg.embed_dims
        user = np.empty((b, user_dim(e)), np.float32)
        cand = np.empty((b, self.N, item_dim(e)), np.float32)
        K.draw_and_observe(
            rows, self._rng_state, draw, len(self.catalog), w.seen, self.candidates, self.static, w.watch_counts,
            u.recent, u.pages_in_session, u.sessions, self.last_share, self.last_rating, w.config.max_pages, self.catalog.dim, user, cand,
        )  # fmt: skip
        return {"user": user, "candidates": cand}

    def observation(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Fresh observation arrays of focal users ``rows`` (default all): ``user`` (B, U), ``candidates`` (B, N, I)."""
        r = self.focal if rows is None else rows
        if self.fast:
            pending, self._pending_obs = self._pending_obs, None
            if pending is not None and (pending[0] is r or np.array_equal(pending[0], r)):
                return pending[1]
            return self._observe_fast(np.asarray(r, np.int64), draw=False)
        u = self.world.users
        uf = user_features(
            u.recent[r],
            u.pages_in_session[r],
            self.world.config.max_pages,
            self.last_share[r],
            self.last_rating[r],
            u.sessions[r],
            self.cfg.embed_dims,
            self.catalog.dim,
        )
        it = candidate_features(self.static, self.world.watch_counts[: len(self.catalog)], self.candidates[r])
        return {"user": uf, "candidates": it}

    def slates_from_action(self, action: np.ndarray) -> np.ndarray:
        """(F, k) item ids from (F, k) candidate indices (duplicates replaced, see :func:`dedupe_slates`)."""
        if self.fast:
            act = np.asarray(action, np.int64).reshape(self.F, -1)
            out = np.empty((self.F, act.shape[1]), np.int64)
            K.slates_from_action(act, self.candidates, out)
            return out
        idx = dedupe_slates(np.asarray(action), self.N)
        return np.take_along_axis(self.candidates, idx, axis=1)


__all__ = [
    "FeedConfig",
    "FeedCore",
    "StepResult",
    "candidate_features",
    "dedupe_slates",
    "default_catalog",
    "item_dim",
    "item_static_features",
    "sample_unseen",
    "supports_fast_path",
    "user_dim",
    "user_features",
]
