"""A PettingZoo ``ParallelEnv``: several recommenders (platforms) compete for one user population."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from recworld.catalog import Catalog
from recworld.envs.core import FeedCore, make_core
from recworld.envs.platform import platform_config, platform_spaces, scores_to_slates
from recworld.errors import ConfigError, require_extra
from recworld.usermodel import kernels as UK
from recworld.usermodel.draws import uniforms
from recworld.usermodel.params import dynamics_record

ParallelEnv = require_extra("pettingzoo", "rl", "the PettingZoo competition env").ParallelEnv


class CompetitionEnv(ParallelEnv):
    """``n_platforms`` recommenders compete for the attention of the same ``n_users`` users.

    Each platform is a RecWorld world over the *same* sampled population
    (same tastes and traits); each keeps its own per-user satisfaction,
    fatigue, return schedule and churn. A user has one session at a time:
    when they are due back on several platforms in the same tick they open
    one, chosen with probability ``softmax(attention_beta * satisfaction)``
    over those platforms; each platform that lost the visit gets the user back
    only after a fresh away time drawn from the world's return model with the
    user's satisfaction on that platform (a user busy in a session elsewhere
    is asked again next tick). Satisfied users return
    sooner (the world's return model) and win ties more often, so attention
    flows to the platform that serves them best. Churning from one platform
    leaves the user on the others.

    Agents: ``"platform_0" .. "platform_{n-1}"``. Each step is one tick.

    Observation (per agent): like ``RecWorld/Platform-v0`` for its own
    platform — ``"user"`` (n_users, 4 + embed_dims), ``"candidates"`` (n_users,
    num_candidates, embed_dims + 2), ``"in_session"`` (n_users,).
    Action (per agent): ``Box(-1, 1, (n_users, num_candidates))`` scores; each
    of its users in session sees their ``slate_size`` best candidates.
    Reward (per agent): the Feed-v0 reward summed over its users, divided by
    ``n_users``. An agent terminates when every user has churned from its
    platform; all are truncated after ``max_cycles`` ticks.

    Args:
        n_platforms: competing recommenders.
        n_users: the shared population.
        max_cycles: ticks per episode.
        attention_beta: how sharply users prefer the more satisfying platform.
        render_mode: ``None`` or ``"ansi"``.
        catalog: an alternative catalog.
        **kwargs: ``RecWorld/Feed-v0`` arguments (except ``n_background``).
    """

    metadata = {"name": "recworld_competition_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(
        self,
        n_platforms: int = 2,
        n_users: int = 50,
        max_cycles: int = 72,
        attention_beta: float = 4.0,
        render_mode: str | None = None,
        catalog: Catalog | None = None,
        **kwargs: Any,
    ) -> None:
        if n_platforms < 1 or n_users < 1 or max_cycles < 1:
            raise ConfigError(f"n_platforms, n_users and max_cycles must be >= 1, got {n_platforms}, {n_users}, {max_cycles}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode={render_mode!r}; expected None or 'ansi'")
        kwargs.setdefault("warmup_ticks", 0)
        self.config = platform_config(kwargs, "competition env")
        self.n_users = int(n_users)
        self.max_cycles = int(max_cycles)
        self.attention_beta = float(attention_beta)
        self.render_mode = render_mode
        self._catalog = catalog
        self.possible_agents = [f"platform_{i}" for i in range(n_platforms)]
        self.agents: list[str] = []
        self._spaces = {a: platform_spaces(self.config, self.n_users) for a in self.possible_agents}
        self.cores: dict[str, FeedCore] = {}
        self._rng = np.random.default_rng()
        self._t = 0

    @functools.cache  # noqa: B019 - spaces are fixed per agent
    def observation_space(self, agent: str):
        return self._spaces[agent][0]

    @functools.cache  # noqa: B019
    def action_space(self, agent: str):
        return self._spaces[agent][1]

    def _obs(self, agent: str) -> dict[str, np.ndarray]:
        core = self.cores[agent]
        o = core.observation()
        o["in_session"] = core.world.users.in_session[: self.n_users].astype(np.float32)
        return o

    def _arrivals(self) -> None:
        """Decide who opens which platform this tick, then open the tick on every platform."""
        cores = [self.cores[a] for a in self.possible_agents]
        tick = cores[0].world.tick
        us = [c.world.users for c in cores]
        in_s = np.stack([u.in_session for u in us])
        due = np.stack([~u.churned & ~u.in_session & (u.next_return <= tick) for u in us])
        busy = in_s.any(axis=0)
        sat = np.stack([u.satisfaction for u in us]).astype(np.float64)
        logits = np.where(due, self.attention_beta * sat, -np.inf)
        has = due.any(axis=0) & ~busy
        choice = np.full(self.n_users, -1)
        if has.any():
            lg = logits[:, has]
            p = np.exp(lg - lg.max(axis=0))
            p /= p.sum(axis=0)
            r = self._rng.random(int(has.sum()))
            choice[has] = (np.cumsum(p, axis=0) < r).sum(axis=0)
        for i, (c, u) in enumerate(zip(cores, us)):
            # Busy elsewhere: ask again next tick. Lost the choice: the user spent this
            # visit elsewhere and comes back after a fresh away time (shorter when satisfied).
            u.next_return[due[i] & busy] = tick + 1
            lost = np.flatnonzero(due[i] & ~busy & (choice != i))
            if lost.size:
                UK.schedule_returns(dynamics_record(c.world.config), c.world.state, lost, tick, uniforms(self._rng, (lost.size,)))
        for c in cores:
            c.begin()
            c.draw_candidates()

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        root = np.random.SeedSequence(seed) if seed is not None else np.random.SeedSequence()
        s_world, s_att = root.spawn(2)
        self._rng = np.random.default_rng(s_att)
        world_seed = int(s_world.generate_state(1)[0] % (2**31 - 1))
        # Same seed for every platform: the same users (tastes, traits, first arrivals).
        self.cores = {a: make_core(self.config, self.n_users, world_seed, self._catalog, clock="world", start=False) for a in self.possible_agents}
        self.agents = list(self.possible_agents)
        self._t = 0
        self._arrivals()
        return {a: self._obs(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise ConfigError("all agents are done; call reset()")
        rewards, infos = {}, {}
        for a in self.possible_agents:
            core = self.cores[a]
            act = actions.get(a)
            if a in self.agents and act is not None:
                slates = scores_to_slates(core, act)
            else:
                slates = np.zeros((core.F, core.k), np.int64)
                core.world.users.in_session[:] = False  # a finished platform serves nobody
            res = core.step(slates)
            if a in self.agents:
                rewards[a] = float(res.reward.sum() / self.n_users)
                infos[a] = {"watches": int(res.watched.sum()), "pages": int(res.served.sum()), "churned": int(res.churned.sum())}
        self._t += 1
        self._arrivals()
        live = list(self.agents)
        terminations = {a: bool(self.cores[a].world.users.churned.all()) for a in live}
        truncations = {a: self._t >= self.max_cycles for a in live}
        obs = {a: self._obs(a) for a in live}
        self.agents = [a for a in live if not (terminations[a] or truncations[a])]
        return obs, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        if self.render_mode != "ansi" or not self.cores:
            return None
        parts = []
        for a, c in self.cores.items():
            u = c.world.users
            parts.append(f"{a}: sessions {int(u.sessions.sum())} watches {int(u.watches.sum())} alive {int((~u.churned).sum())}")
        return f"tick {self._t}  " + " | ".join(parts) + "\n"

    def close(self) -> None:
        self.cores = {}


def parallel_env(**kwargs: Any) -> CompetitionEnv:
    """PettingZoo-style constructor of :class:`CompetitionEnv`."""
    return CompetitionEnv(**kwargs)


__all__ = ["CompetitionEnv", "parallel_env"]
