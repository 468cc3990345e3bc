"""``RecWorld/Feed-v0``: the recommender is the agent, an episode is one user's multi-session life."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from recworld.catalog import Catalog
from recworld.envs.core import FeedConfig, FeedCore, make_core
from recworld.envs.features import item_dim, user_dim
from recworld.errors import ConfigError


def feed_spaces(cfg: FeedConfig) -> tuple[spaces.Dict, spaces.MultiDiscrete]:
    """Single-user observation and action spaces of the Feed env."""
    obs = spaces.Dict(
        {
            "user": spaces.Box(-1.0, 1.0, shape=(user_dim(cfg.embed_dims),), dtype=np.float32),
            "candidates": spaces.Box(-1.0, 1.0, shape=(cfg.num_candidates, item_dim(cfg.embed_dims)), dtype=np.float32),
        }
    )
    act = spaces.MultiDiscrete(np.full(cfg.slate_size, cfg.num_candidates, dtype=np.int64))
    return obs, act


def make_config(kwargs: dict[str, Any]) -> FeedConfig:
    try:
        return FeedConfig(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"RecWorld/Feed-v0: bad argument ({exc}); see the FeedEnv docstring for accepted arguments") from None


class FeedEnv(gym.Env):
    """A slate recommender serving one focal user on a living platform.

    ## Description
    The agent is the platform's recommender for one *focal* user. The focal
    user lives in a RecWorld :class:`~recworld.world.World` together with
    ``n_background`` other users, who are served by a background recommender
    (popularity by default), so item popularity and the platform evolve
    around the focal user. Each step the agent picks a slate of
    ``slate_size`` items out of ``num_candidates`` candidates drawn from items
    the focal user has not seen; the user's brain (the ``utility`` choice
    model by default) watches, rates and decides whether to leave the
    session. When a session ends the world draws the user's churn and away
    time from their satisfaction (KuaiSim-style return model); if they stay,
    their next session starts on the next step with their state updated as if
    that away time had passed (a compressed clock: one step is one page of
    the user's life). The platform around them advances one tick every
    ``background_every`` steps (each background user in session sees a page,
    the background recommender learns from all pages, newcomers replace
    churned background users once a day).

    With the utility brain (or a distilled one) steps run on compiled kernels
    (:mod:`recworld.envs.kernels`); other brains go through ``World.serve_page``.

    ## Action space
    ``MultiDiscrete([num_candidates] * slate_size)``: the candidate index shown
    at each slate position, best first. Duplicate (or out-of-range) positions
    are replaced by the lowest-index candidate not used yet, so every page
    holds ``slate_size`` distinct items.

    ## Observation space
    ``Dict`` of two ``float32`` boxes in [-1, 1] (what a platform can log):

    - ``"user"`` (``4 + embed_dims``): page number in the session / max pages,
      share of the last page watched, mean normalised rating of the last page
      (0.5 if none), log-scaled sessions so far, then the leading
      ``embed_dims`` principal components of the user's recent-consumption
      embedding (an EMA of watched items).
    - ``"candidates"`` (``num_candidates, embed_dims + 2``): for each candidate, its
      leading ``embed_dims`` embedding components, platform popularity
      (log watch count / log max count) and prior quality (rating points / 2).

    ## Rewards
    ``watch_reward`` per watched item + ``rating_weight * (rating - 3) / 2``
    per rated item + ``return_bonus`` when a session ends and the user will
    come back − ``churn_penalty`` when the user churns. Defaults 1, 0.5, 0.2, 5.

    ## Starting state
    A world of ``1 + n_background`` users sampled from a population spec
    (user 0 is focal) lives ``warmup_ticks`` ticks, then the focal user opens
    their first session. ``reset(seed=s)`` rebuilds the world from ``s``;
    ``reset()`` without a seed keeps the world and replaces the focal user by
    a fresh one (cheap), so all randomness still derives from the last seed.

    ## Episode end
    ``terminated`` when the focal user churns; ``truncated`` by the
    ``TimeLimit`` of the registration (``max_episode_steps=200`` pages).

    ## Arguments
    ``gym.make("RecWorld/Feed-v0", num_candidates=10, slate_size=2,
    embed_dims=8, n_background=200, brain="utility",
    background_recommender="popularity", watch_reward=1.0, rating_weight=0.5,
    return_bonus=0.2, churn_penalty=5.0, warmup_ticks=24, background_every=8,
    activity_mean=1.0,
    patience=0.55, conformity=0.5, diversity_seeking=0.5, taste_noise=0.6,
    world=WorldConfig(...), render_mode=None)``; a ``catalog`` keyword swaps
    the MovieLens-100K catalog. ``brain`` may be any Brain instance.

    ## Version history
    - v0: initial version. Changed before the first release, with the
      compiled path: the platform ticks every ``background_every`` steps
      (it ticked every step) and newcomers replace churned background users
      (the background used to shrink); results from before are not comparable.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, catalog: Catalog | None = None, **kwargs: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode={render_mode!r}; expected None or 'ansi'")
        self.render_mode = render_mode
        self.config = make_config(kwargs)
        self._catalog = catalog
        self.observation_space, self.action_space = feed_spaces(self.config)
        self.core: FeedCore | None = None
        self._last: dict[str, Any] = {}
        self._return = 0.0

    def _obs(self, o: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        o = self.core.observation() if o is None else o
        return {"user": o["user"][0], "candidates": o["candidates"][0]}

    def _info(self) -> dict[str, Any]:
        u = self.core.world.users
        # .item(0): Python scalars straight from the arrays, without numpy scalars in between.
        return {"tick": int(self.core.world.tick), "sessions": u.sessions.item(0), "watches": u.watches.item(0), "satisfaction": u.satisfaction.item(0)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if self.core is None or seed is not None:
            world_seed = int(self.np_random.integers(0, 2**31 - 1))
            self.core = make_core(self.config, 1, world_seed, self._catalog, clock="immediate")
        else:
            core = self.core
            f = np.zeros(1, np.int64)
            if core.world.users.in_session[0]:
                # The old focal user's open session is abandoned with them.
                core.world.users.in_session[0] = False
            core.replace_users(f)
            core.begin()
            core.draw_candidates()
        self._last = {}
        self._return = 0.0
        return self._obs(), self._info()

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self.core is None:
            raise ConfigError("call reset() before step()")
        core = self.core
        res, page = core.step_observe(action)
        obs = self._obs(page)
        reward = res.reward.item(0)
        self._return += reward
        terminated = res.churned.item(0)
        info = self._info()
        info["watched"] = int(np.count_nonzero(res.watched[0]))
        info["session_end"] = res.session_end.item(0)
        info["churned"] = terminated
        self._last = {"result": res, "reward": reward}
        return obs, reward, terminated, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.core is None:
            return None
        w, u = self.core.world, self.core.world.users
        lines = [
            f"tick {w.tick}  sessions {int(u.sessions[0])}  page {int(u.pages_in_session[0])}  satisfaction {float(u.satisfaction[0]):.2f}  return {self._return:.2f}"
        ]
        if self._last:
            res = self._last["result"]
            for item, wt, r in zip(res.slates[0].tolist(), res.watched[0].tolist(), res.ratings[0].tolist()):
                mark = ("watched" + (f", rated {r:.0f}" if r == r else "")) if wt else "skipped"
                lines.append(f"  {w.catalog.describe(item)[:70]:70s} {mark}")
        return "\n".join(lines) + "\n"
