"""Evaluate policies on ``RecWorld/Feed-v0`` over held-out seeds: retention and engagement with 95% CIs."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from recworld.envs.feed_vector import FeedVectorEnv
from recworld.errors import ConfigError, require_extra
from recworld.metrics import mean_ci

METRICS = ("retention", "survival", "engagement", "sessions", "return")


class EnvPolicy(Protocol):
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """(B, k) candidate indices for a batch of Feed-v0 observations."""
        ...


class RandomPolicy:
    """Uniformly random distinct candidates."""

    def __init__(self, k: int, seed: int = 0) -> None:
        self.k = k
        self.rng = np.random.default_rng(seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        b, n, _ = obs["candidates"].shape
        return np.argsort(self.rng.random((b, n)), axis=1)[:, : self.k]


class PopularityPolicy:
    """The most-watched candidates on the platform (the popularity feature), ties at random."""

    def __init__(self, k: int, seed: int = 0) -> None:
        self.k = k
        self.rng = np.random.default_rng(seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        pop = obs["candidates"][:, :, -2] + 1e-4 * self.rng.random(obs["candidates"].shape[:2])
        return np.argsort(-pop, axis=1, kind="stable")[:, : self.k]


class SB3Policy:
    """A Stable-Baselines3 model predicting MultiDiscrete slates."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        a, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(a).reshape(obs["user"].shape[0], -1)


def is_sb3_file(path: str | Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
        return "data" in names and "policy.pth" in names
    except (zipfile.BadZipFile, OSError):
        return False


def load_policy(path: str | Path) -> EnvPolicy:
    """Load a saved policy: a slate-PG file (torch), a Stable-Baselines3 PPO zip or an RLlib checkpoint folder (Feed-v0)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"policy file {p} does not exist; train one with `recworld train --out {p}`")
    if p.is_dir() and (p / "rllib_checkpoint.json").exists():
        from recworld.envs.rllib import RLlibPolicy  # needs the 'ray' extra; says so in one line

        return RLlibPolicy.from_checkpoint(p)
    if is_sb3_file(p):
        PPO = require_extra("stable_baselines3", "rl", f"the Stable-Baselines3 policy {p}").PPO

        return SB3Policy(PPO.load(p, device="cpu"))
    from recworld.agents.rl.policy import SlatePolicy

    return SlatePolicy.load(p)


def resolve_policy(spec: Any, k: int, seed: int) -> EnvPolicy:
    """A policy from a name (``random``, ``popularity``), a path, an object with ``act`` or a callable."""
    if isinstance(spec, str):
        if spec == "random":
            return RandomPolicy(k, seed)
        if spec == "popularity":
            return PopularityPolicy(k, seed)
        if Path(spec).suffix or Path(spec).exists():
            return load_policy(spec)
        raise ConfigError(f"policy {spec!r}: expected 'random', 'popularity' or a path to a saved policy")
    if hasattr(spec, "act"):
        return spec
    if callable(spec):

        class _Fn:
            def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
                return np.asarray(spec(obs))

        return _Fn()
    raise ConfigError(f"policy {spec!r}: expected a name, a path, an object with act(obs) or a callable")


def run_episodes(policy: EnvPolicy, seed: int, episodes: int, max_episode_steps: int = 200, **env_kwargs: Any) -> dict[str, float]:
    """One episode per focal user of one shared world (``episodes`` users); per-seed means."""
    env = FeedVectorEnv(num_envs=episodes, max_episode_steps=max_episode_steps, **env_kwargs)
    obs, _ = env.reset(seed=seed)
    finished = np.zeros(episodes, bool)
    churned = np.zeros(episodes, bool)
    watches = np.zeros(episodes)
    sessions = np.zeros(episodes)
    returns = np.zeros(episodes)
    while not finished.all():
        obs, r, term, trunc, info = env.step(policy.act(obs))
        live = ~finished
        returns[live] += r[live]
        done = (term | trunc) & live
        if done.any():
            fi = info["final_info"]
            churned[done] = term[done]
            watches[done] = fi["watches"][done]
            sessions[done] = fi["sessions"][done]
            finished |= done
    env.close()
    # Pooled over the seed's users: the share of ended sessions after which the user came back.
    ret_rate = 1.0 - churned.sum() / max(float(sessions.sum()), 1.0)
    return {
        "retention": float(ret_rate),
        "survival": float((~churned).mean()),
        "engagement": float(watches.mean()),
        "sessions": float(sessions.mean()),
        "return": float(returns.mean()),
    }


def evaluate(
    policies: dict[str, Any],
    seeds: list[int] | range = range(1000, 1010),
    episodes: int = 8,
    max_episode_steps: int = 200,
    metrics: tuple[str, ...] = METRICS,
    progress: Callable[[str, int], None] | None = None,
    **env_kwargs: Any,
) -> list[dict[str, Any]]:
    """Compare policies on the same held-out seeds.

    Args:
        policies: display name -> ``"random"``, ``"popularity"``, a path to a
            saved policy (slate-PG ``.pt`` or SB3 ``.zip``), an object with
            ``act(obs) -> (B, k)`` or a callable.
        seeds: world seeds (use seeds never used in training).
        episodes: focal users (episodes) per seed; they share one world.
        max_episode_steps: pages per episode at most.
        metrics: which of ``retention`` (share of sessions after which the user
            came back, pooled over the seed's episodes), ``survival`` (share of users
            not churned by the end of the episode), ``engagement`` (watches per
            episode), ``sessions``, ``return`` (episode reward) to report.
        **env_kwargs: Feed-v0 arguments (``n_background``, ``slate_size``, ...).

    Returns:
        Rows ``{policy, metric, mean, ci_low, ci_high, n_seeds, values}``; the CI is
        a 95% Student-t interval over per-seed means.
    """
    seeds = list(seeds)
    if not seeds or episodes < 1:
        raise ConfigError(f"evaluate needs at least one seed and episodes >= 1, got {len(seeds)} seeds and episodes={episodes}")
    k = int(env_kwargs.get("slate_size", 2))
    rows = []
    for name, spec in policies.items():
        per_seed: dict[str, list[float]] = {m: [] for m in metrics}
        for s in seeds:
            pol = resolve_policy(spec, k, s)
            res = run_episodes(pol, s, episodes, max_episode_steps, **env_kwargs)
            for m in metrics:
                per_seed[m].append(res[m])
            if progress is not None:
                progress(name, s)
        for m in metrics:
            mean, lo, hi = mean_ci(per_seed[m])
            rows.append({"policy": name, "metric": m, "mean": mean, "ci_low": lo, "ci_high": hi, "n_seeds": len(seeds), "values": per_seed[m]})
    return rows


def store_results(db: str, name: str, results: list[dict[str, Any]]) -> None:
    """Write evaluation rows to the ``EvalResult`` table of a run database."""
    from sqlmodel import Session

    from recworld.storage import EvalResult, connect

    engine = connect(db)
    with Session(engine) as s:
        for r in results:
            s.add(
                EvalResult(
                    name=name,
                    policy=r["policy"],
                    metric=r["metric"],
                    mean=r["mean"],
                    ci_low=r["ci_low"],
                    ci_high=r["ci_high"],
                    n_seeds=r["n_seeds"],
                    detail_json=json.dumps({"values": r.get("values", [])}),
                )
            )
        s.commit()


__all__ = ["METRICS", "PopularityPolicy", "RandomPolicy", "SB3Policy", "evaluate", "load_policy", "mean_ci", "resolve_policy", "run_episodes", "store_results"]

_ = gym  # gymnasium is the env API these policies run on
