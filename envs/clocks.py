"""The two clocks of the env cores (see :mod:`recworld.envs.core`)."""

from __future__ import annotations

import numpy as np

from recworld.catalog import Catalog
from recworld.envs import kernels as K
from recworld.envs.core import FeedConfig, FeedCore, StepResult
from recworld.envs.features import record_pages
from recworld.envs.pages import CompiledPages, Pages, WorldPages, compiled_pages_apply
from recworld.errors import ConfigError
from recworld.events import EventBatch
from recworld.protocols import Feedback

# The compiled path logs no events; recommenders get this shared empty batch.
_NO_EVENTS = EventBatch.empty()
_NEVER = np.iinfo(np.int64).max // 2


class ImmediateCore(FeedCore):
    """The Feed envs' clock: a step is one page for every focal user.

    When a focal session ends and the user did not churn, the next session
    starts at once, with the user's state updated as if the away time the
    world drew had passed (fatigue recovery): an episode of T steps is T pages
    of the user's life. The platform around them (background users, the
    background recommender, item popularity) advances one tick every
    ``background_every`` steps, in which each background user in session sees
    one page; once a day newcomers replace background users who churned, so
    it keeps its size. Why not a tick per step: the background recommender's
    call is a fixed cost per tick, which would dominate a single env's step.
    """

    def __init__(self, config: FeedConfig, num_focal: int, seed: int, catalog: Catalog | None = None, start: bool = True) -> None:
        super().__init__(config, num_focal, seed, catalog)
        w = self.world
        self.compiled = compiled_pages_apply(w)
        self.pages: Pages = CompiledPages(w, self.stream, config) if self.compiled else WorldPages(w, self.reward, restart_focal=True)
        self._focal_feedback: list[tuple[np.ndarray, ...]] = []
        # Focal users arrive after the warm-up, on their own clock (see _arrive).
        w.users.next_return[: self.F] = _NEVER
        if not self.compiled:
            w.begin_tick()
        for _ in range(config.warmup_ticks):
            self._background_tick()
        if start:
            self._arrive(self.focal)
            self.draw_candidates()

    def step(self, focal_slates: np.ndarray | None) -> StepResult:
        """A page for every focal user in session; the platform ticks every ``background_every`` steps."""
        u, F = self.world.users, self.F
        served = u.in_session[:F].copy()
        fids = self.focal if served.all() else np.flatnonzero(served)
        if fids.size and focal_slates is None:
            raise ConfigError("focal users are in session but no slates were given")
        slates = np.asarray(focal_slates, np.int64)[fids] if fids.size else np.zeros((0, self.k), np.int64)
        watched, ratings, leave, churn, reward = self.pages.serve(fids, np.ascontiguousarray(slates), F)
        record_pages(fids, slates, watched, ratings, self.static, self.last_share, self.last_rating, self.recent)
        if self.compiled:
            self._focal_feedback.append((fids, slates, watched, ratings, leave))
        if fids.size == F:
            res = StepResult(served, slates, watched, ratings, leave, churn, reward)
        else:
            res = StepResult.empty(served, self.k)
            res.fill(fids, slates, watched, ratings, leave, churn, reward)
        self.steps += 1
        if self.steps % self.cfg.background_every == 0:
            self._background_tick()
        return res

    def step_action(self, action: np.ndarray) -> StepResult:
        """A step from candidate indices (F, k); on the compiled path, slates, page and log in one call."""
        if not self.compiled:
            return super().step_action(action)
        return self._step_compiled(action, observe=False)[0]

    def step_observe(self, action: np.ndarray) -> tuple[StepResult, dict[str, np.ndarray]]:
        """:meth:`step_action`, then :meth:`next_page`: on the compiled path in one call when the platform does not tick in between."""
        if not self.compiled:
            return super().step_observe(action)
        res, obs = self._step_compiled(action, observe=True)
        return res, (self.next_page() if obs is None else obs)

    def _step_compiled(self, action: np.ndarray, observe: bool) -> tuple[StepResult, dict[str, np.ndarray] | None]:
        w, u, F, k = self.world, self.world.users, self.F, self.k
        served = u.in_session[:F].copy()
        act = np.asarray(action, np.int64).reshape(F, -1)
        # count_nonzero: a few microseconds less than .all() on a step that costs ~100.
        if np.count_nonzero(served) == F:
            rows, act = self.focal, np.ascontiguousarray(act)
        else:
            rows = np.flatnonzero(served)
            act = np.ascontiguousarray(act[rows])
        b = rows.size
        slates, watched, frac, ratings = np.empty((b, k), np.int64), np.empty((b, k), bool), np.empty((b, k)), np.empty((b, k))
        leave, churn, reward = np.empty(b, bool), np.empty(b, bool), np.empty(b)
        p = self.pages
        self.steps += 1
        # The platform ticks after this step: the next page's candidates are drawn after it (next_page).
        observe = observe and self.steps % self.cfg.background_every != 0
        if observe:
            user, cand = np.empty((F, self.spec.user_dim), np.float32), np.empty((F, self.N, self.spec.item_dim), np.float32)
            churned = K.focal_step_observe(
                p.P, p.W, p.R, *p.bundles(), act, self.candidates, rows, self.stream, w.tick, F,
                self.static, self.last_share, self.last_rating, self.recent, slates, watched, frac, ratings, leave, churn, reward,
                len(self.catalog), w.config.max_pages, user, cand,
            )  # fmt: skip
        else:
            churned = K.focal_step(
                p.P, p.W, p.R, *p.bundles(), act, self.candidates, rows, self.stream, w.tick, F,
                self.static, self.last_share, self.last_rating, self.recent, slates, watched, frac, ratings, leave, churn, reward,
            )  # fmt: skip
        p.background_churned |= churned > 0
        self._focal_feedback.append((rows, slates, watched, ratings, leave))
        if b == F:
            res = StepResult(served, slates, watched, ratings, leave, churn, reward)
        else:
            res = StepResult.empty(served, k)
            res.fill(rows, slates, watched, ratings, leave, churn, reward)
        if self.steps % self.cfg.background_every == 0:
            self._background_tick()
        return res, ({"user": user, "candidates": cand} if observe else None)

    def replace_users(self, idx: np.ndarray) -> None:
        """Replace users by fresh users; focal newcomers start their first session at once."""
        super().replace_users(idx)
        f = idx[idx < self.F]
        if f.size:
            self._arrive(f)

    def _arrive(self, focal_idx: np.ndarray) -> None:
        self.world.users.next_return[focal_idx] = self.world.tick
        self.pages.start(np.asarray(focal_idx, np.int64))

    def _background_tick(self) -> None:
        """Advance the platform one tick: background users in session see a page, newcomers arrive daily."""
        w, u, k = self.world, self.world.users, self.k
        self._flush_focal_feedback()
        if self.compiled:
            self._replace_background()
            self.pages.start(self.background)
            bg = self.F + np.flatnonzero(u.in_session[self.F :])
            if bg.size:
                slates = np.asarray(w.recommender.recommend(bg, k, w.context()), np.int64)
                watched, ratings, leave, _, _ = self.pages.serve(bg, slates, self.F)
                w.recommender.observe(Feedback(w.tick, bg, slates, watched, ratings, leave, _NO_EVENTS))
            w.advance_clock()
            return
        bg = self.F + np.flatnonzero(u.in_session[self.F :])
        if bg.size:
            w.serve_page(bg)
        w.end_tick(close_sessions=False)
        self._replace_background()
        w.begin_tick()

    def _replace_background(self) -> None:
        # Once a day newcomers take the places of churned background users, so the platform keeps its size.
        if self.world.tick % self.world.config.period_ticks or not self.pages.background_churned:
            return
        gone = self.F + np.flatnonzero(self.world.users.churned[self.F :])
        if gone.size:
            self.replace_users(gone)
        if self.compiled:
            self.pages.background_churned = False

    def _flush_focal_feedback(self) -> None:
        # The background recommender learns from the focal pages too, once per tick.
        fb, self._focal_feedback = self._focal_feedback, []
        if not fb:
            return
        parts = [np.concatenate(x) for x in zip(*fb)] if len(fb) > 1 else list(fb[0])
        if parts[0].size:
            self.world.recommender.observe(Feedback(self.world.tick, *parts, _NO_EVENTS))


class WorldClockCore(FeedCore):
    """The Platform and competition envs' clock: a step is one tick.

    Everyone in session sees a page per tick (focal users from the caller,
    background users from the background recommender); sessions span ticks;
    users come back when the world's return model says so, and steps in
    between serve them nothing.
    """

    def __init__(self, config: FeedConfig, num_focal: int, seed: int, catalog: Catalog | None = None, start: bool = True) -> None:
        super().__init__(config, num_focal, seed, catalog)
        self.pages = WorldPages(self.world, self.reward, restart_focal=False)
        self.world.users.next_return[: self.F] += config.warmup_ticks
        for _ in range(config.warmup_ticks):
            self.begin()
            self.step(None)
        if start:
            self.begin()
            self.draw_candidates()

    def begin(self) -> np.ndarray:
        """Start the sessions due at the (new) current tick and return who started."""
        self._replace_background()
        return self.world.begin_tick()

    def step(self, focal_slates: np.ndarray | None) -> StepResult:
        """One tick: a page for everyone in session (focal users from ``focal_slates``)."""
        w, u, F, k = self.world, self.world.users, self.F, self.k
        served = u.in_session[:F].copy()
        fids = np.flatnonzero(served)
        bg = F + np.flatnonzero(u.in_session[F:])
        res = StepResult.empty(served, k)
        users, slates = [], []
        if fids.size:
            if focal_slates is None:
                raise ConfigError("focal users are in session but no slates were given")
            users.append(fids)
            slates.append(np.asarray(focal_slates, np.int64)[fids])
        if bg.size:
            users.append(bg)
            slates.append(np.asarray(w.recommender.recommend(bg, k, w.context()), np.int64))
        if users:
            watched, ratings, leave, churn, reward = self.pages.serve(np.concatenate(users), np.concatenate(slates), F)
            n = fids.size
            if n:
                res.fill(fids, slates[0], watched[:n], ratings[:n], leave[:n], churn[:n], reward[:n])
                record_pages(fids, slates[0], watched[:n], ratings[:n], self.static, self.last_share, self.last_rating, self.recent)
        # Sessions span ticks in env time: keep them open across the tick boundary.
        w.end_tick(close_sessions=False)
        self.steps += 1
        return res

    def _replace_background(self) -> None:
        # Once a day newcomers take the places of churned background users.
        if self.world.tick % self.world.config.period_ticks:
            return
        gone = self.F + np.flatnonzero(self.world.users.churned[self.F :])
        if gone.size:
            self.replace_users(gone)


__all__ = ["ImmediateCore", "WorldClockCore"]
