"""Native vector env for ``RecWorld/Feed-v0``: many focal users of ONE shared world, stepped as one batch."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recworld.catalog import Catalog
from recworld.envs.core import FeedCore, make_core
from recworld.envs.feed import feed_spaces, make_config
from recworld.errors import ConfigError


class FeedVectorEnv(VectorEnv):
    """``num_envs`` focal users living in one shared world (``gym.make_vec(..., vectorization_mode="vector_entry_point")``).

    Every sub-env is the :class:`~recworld.envs.feed.FeedEnv` MDP for one focal user;
    all focal users and the ``n_background`` background users are served by
    a single ``World.serve_page(users, slates)`` call per step. Focal users
    share the platform (popularity, the background recommender's learning),
    so sub-envs are not independent — which is the point of a shared world.

    Autoreset: ``AutoresetMode.SAME_STEP``. When a sub-env terminates (its user
    churned) or is truncated (``max_episode_steps``), the returned observation
    is already the first observation of a fresh focal user who joined the
    world in that slot; the last observation and info of the finished episode
    are in ``infos["final_obs"]`` (an object array) and ``infos["final_info"]``
    with the masks ``infos["_final_obs"]`` / ``infos["_final_info"]``.

    Args:
        num_envs: focal users.
        max_episode_steps: truncation per sub-env (``None``: never).
        render_mode: ``None`` or ``"ansi"``.
        catalog: an alternative catalog.
        **kwargs: :class:`~recworld.envs.core.FeedConfig` fields, as for ``FeedEnv``.
    """

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self, num_envs: int = 1, max_episode_steps: int | None = 200, render_mode: str | None = None, catalog: Catalog | None = None, **kwargs: Any
    ) -> None:
        if num_envs < 1:
            raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
        if render_mode is not None and render_mode != "ansi":
            raise ConfigError(f"render_mode={render_mode!r}; expected None or 'ansi'")
        self.num_envs = int(num_envs)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.config = make_config(kwargs)
        self._catalog = catalog
        self.single_observation_space, self.single_action_space = feed_spaces(self.config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.core: FeedCore | None = None
        self._steps = np.zeros(self.num_envs, np.int64)
        self._returns = np.zeros(self.num_envs)

    def _info(self) -> dict[str, np.ndarray]:
        u = self.core.world.users
        n = self.num_envs
        return {"sessions": u.sessions[:n].copy(), "watches": u.watches[:n].copy(), "satisfaction": u.satisfaction[:n].astype(np.float64)}

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if isinstance(seed, (list, tuple)):
            seed = seed[0]
        super().reset(seed=seed)
        world_seed = int(self.np_random.integers(0, 2**31 - 1))
        self.core = make_core(self.config, self.num_envs, world_seed, self._catalog, clock="immediate")
        self._steps[:] = 0
        self._returns[:] = 0.0
        return self.core.observation(), self._info()

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self.core is None:
            raise ConfigError("call reset() before step()")
        core = self.core
        act = np.asarray(actions, np.int64).reshape(self.num_envs, -1)
        res = core.step_action(act)
        self._steps += 1
        self._returns += res.reward
        terminated = res.churned.copy()
        truncated = ~terminated & (self._steps >= self.max_episode_steps) if self.max_episode_steps else np.zeros(self.num_envs, bool)
        done = np.flatnonzero(terminated | truncated)
        info = self._info()
        info["watched"] = res.watched.sum(axis=1)
        info["session_end"] = res.session_end
        if done.size:
            # Final observation of finished episodes (candidates of the page they would have seen next).
            core.draw_candidates(done)
            final = core.observation(done)
            final_obs = np.full(self.num_envs, None, dtype=object)
            for j, i in enumerate(done.tolist()):
                final_obs[i] = {"user": final["user"][j], "candidates": final["candidates"][j]}
            mask = np.zeros(self.num_envs, bool)
            mask[done] = True
            final_info = {
                "episode_return": np.where(mask, self._returns, 0.0),
                "episode_length": np.where(mask, self._steps, 0),
                "churned": terminated.copy(),
                "sessions": np.where(mask, info["sessions"], 0),
                "watches": np.where(mask, info["watches"], 0),
                "_episode_return": mask,
                "_episode_length": mask,
                "_churned": mask,
                "_sessions": mask,
                "_watches": mask,
            }
            info.update(final_obs=final_obs, _final_obs=mask, final_info=final_info, _final_info=mask)
            core.world.users.in_session[done] = False
            core.replace_users(done)
            self._steps[done] = 0
            self._returns[done] = 0.0
        return core.next_page(), res.reward.copy(), terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.core is None:
            return None
        u = self.core.world.users
        n = self.num_envs
        return (
            f"tick {self.core.world.tick}  focal users {n}  churned {int(u.churned[:n].sum())}  "
            f"mean satisfaction {float(u.satisfaction[:n].mean()):.2f}  mean return {float(self._returns.mean()):.2f}\n"
        )
