"""``RecWorld/Platform-v0``: the agent serves a whole platform; one step is one tick."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from recworld.catalog import Catalog
from recworld.envs.core import FeedConfig, FeedCore, make_core
from recworld.envs.features import item_dim, user_dim
from recworld.errors import ConfigError


def platform_spaces(cfg: FeedConfig, n_users: int) -> tuple[spaces.Dict, spaces.Box]:
    """Observation and action spaces of one platform with ``n_users`` users."""
    obs = spaces.Dict(
        {
            "user": spaces.Box(-1.0, 1.0, shape=(n_users, user_dim(cfg.embed_dims)), dtype=np.float32),
            "candidates": spaces.Box(-1.0, 1.0, shape=(n_users, cfg.num_candidates, item_dim(cfg.embed_dims)), dtype=np.float32),
            "in_session": spaces.Box(0.0, 1.0, shape=(n_users,), dtype=np.float32),
        }
    )
    act = spaces.Box(-1.0, 1.0, shape=(n_users, cfg.num_candidates), dtype=np.float32)
    return obs, act


def scores_to_slates(core: FeedCore, scores: np.ndarray) -> np.ndarray:
    """(F, k) item ids: each user's ``k`` best-scored candidates (ties: lower index first)."""
    s = np.asarray(scores, np.float32).reshape(core.F, core.N)
    idx = np.argsort(-s, axis=1, kind="stable")[:, : core.k]
    return np.take_along_axis(core.candidates, idx, axis=1)


def platform_config(kwargs: dict[str, Any], name: str) -> FeedConfig:
    for key in ("n_background", "background_every"):
        if key in kwargs:
            raise ConfigError(f"{name}: {key} is not an argument here; every user is served by the agent and a step is a tick (use n_users)")
    try:
        return FeedConfig(n_background=0, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"{name}: bad argument ({exc}); accepted: n_users and the FeedConfig fields") from None


class PlatformEnv(gym.Env):
    """The recommender of a whole platform: a fixed population, one tick per step.

    ## Description
    ``n_users`` users live in a RecWorld world. Each step is one tick: every
    user in a session sees one page, chosen by the agent; users leave, come
    back when the world's return-time model says so (satisfied users sooner)
    or churn. Sessions span consecutive ticks (one page per tick).

    ## Action space
    ``Box(-1, 1, (n_users, num_candidates))``: a score per user and candidate.
    Each user in session is shown their ``slate_size`` best-scored candidates
    (distinct by construction; ties go to the lower index). Rows of users not
    in session are ignored.

    ## Observation space
    ``Dict``: ``"user"`` (n_users, 4 + embed_dims) and ``"candidates"``
    (n_users, num_candidates, embed_dims + 2) with the same features as
    ``RecWorld/Feed-v0``, and ``"in_session"`` (n_users,) in {0, 1}.

    ## Rewards
    Per tick, the mean over users of the Feed-v0 reward: watches + rating
    bonus + ``return_bonus`` per session that ends with the user coming back
    − ``churn_penalty`` per churn, divided by ``n_users`` (platform-level
    engagement with a retention term).

    ## Starting state
    A sampled population; the world lives ``warmup_ticks`` ticks (served by
    nobody: users arrive after it), then the agent takes over.

    ## Episode end
    ``terminated`` when every user has churned; ``truncated`` by the
    ``TimeLimit`` of the registration (``max_episode_steps=168``, a week of hours).

    ## Arguments
    ``n_users=200`` plus the ``RecWorld/Feed-v0`` arguments (except
    ``n_background``), ``render_mode=None | "ansi"``, ``catalog``.

    ## Version history
    - v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, n_users: int = 200, render_mode: str | None = None, catalog: Catalog | None = None, **kwargs: Any) -> None:
        if n_users < 1:
            raise ConfigError(f"n_users must be >= 1, got {n_users}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode={render_mode!r}; expected None or 'ansi'")
        self.render_mode = render_mode
        self.n_users = int(n_users)
        self.config = platform_config(kwargs, "RecWorld/Platform-v0")
        self._catalog = catalog
        self.observation_space, self.action_space = platform_spaces(self.config, self.n_users)
        self.core: FeedCore | None = None
        self._last: dict[str, float] = {}

    def _obs(self) -> dict[str, np.ndarray]:
        o = self.core.observation()
        o["in_session"] = self.core.world.users.in_session[: self.n_users].astype(np.float32)
        return o

    def _info(self) -> dict[str, Any]:
        u = self.core.world.users
        return {"tick": int(self.core.world.tick), "in_session": int(u.in_session.sum()), "alive": int((~u.churned).sum()), **self._last}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.core = make_core(self.config, self.n_users, int(self.np_random.integers(0, 2**31 - 1)), self._catalog, clock="world")
        self._last = {}
        return self._obs(), self._info()

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self.core is None:
            raise ConfigError("call reset() before step()")
        core = self.core
        res = core.step(scores_to_slates(core, action))
        core.begin()
        core.draw_candidates()
        reward = float(res.reward.sum() / self.n_users)
        self._last = {"watches": int(res.watched.sum()), "pages": int(res.served.sum()), "churned": int(res.churned.sum())}
        terminated = bool(core.world.users.churned.all())
        return self._obs(), reward, terminated, False, self._info()

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.core is None:
            return None
        i = self._info()
        return (
            f"tick {i['tick']}  in session {i['in_session']}  alive {i['alive']}/{self.n_users}  " + "  ".join(f"{k} {v}" for k, v in self._last.items()) + "\n"
        )


__all__ = ["PlatformEnv", "platform_spaces", "scores_to_slates"]
