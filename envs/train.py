"""Training entry points used by ``recworld train``: slate policy gradient or Stable-Baselines3 PPO."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import gymnasium as gym

from recworld.envs.registration import register_all
from recworld.errors import ConfigError, require_extra


def train_ppo(timesteps: int, seed: int, path: str | Path, progress: bool = False, n_envs: int = 8, **env_kwargs: Any) -> Path:
    """Train SB3 PPO on ``RecWorld/Feed-v0`` and save it to ``path``.

    The policy is :class:`recworld.agents.rl.sb3_policy.SlateActorCriticPolicy` (one
    shared candidate scorer gives the logits of every slate position).
    """
    require_extra("stable_baselines3", "rl", "PPO training")
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import HumanOutputFormat, Logger

    register_all()
    kw = {"n_background": 100, **env_kwargs}
    venv = make_vec_env(lambda: gym.make("RecWorld/Feed-v0", **kw), n_envs=n_envs, seed=seed)
    from recworld.agents.rl.sb3_policy import SlateActorCriticPolicy

    policy_kwargs = {"embed_dims": int(kw.get("embed_dims", 8))}
    model = PPO(
        SlateActorCriticPolicy,
        venv,
        n_steps=256,
        batch_size=256,
        learning_rate=3e-4,
        gamma=0.95,
        ent_coef=0.003,
        seed=seed,
        device="cpu",
        verbose=1 if progress else 0,
        policy_kwargs=policy_kwargs,
    )
    # SB3's default logger makes a folder under /tmp on every run; log to stdout (or nowhere) instead.
    model.set_logger(Logger(None, [HumanOutputFormat(sys.stdout)] if progress else []))
    model.learn(total_timesteps=int(timesteps), progress_bar=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    venv.close()
    return path if path.suffix == ".zip" else Path(str(path) + ".zip")  # SB3 appends .zip


def train(
    algo: str = "slate_pg", timesteps: int = 50_000, seed: int = 0, out_path: str | Path = "runs/policy.pt", progress: bool = True, **kwargs: Any
) -> Path:
    """Train a recommender policy on ``RecWorld/Feed-v0``; returns the saved file's path.

    Args:
        algo: ``"slate_pg"`` (Plackett-Luce PPO-lite on the native vector env; fast, the
            stronger learner here) or ``"ppo"`` (Stable-Baselines3 PPO).
        timesteps: environment steps (pages).
        seed: training seed (evaluate on other seeds).
        out_path: where to save; load with :func:`recworld.envs.evaluate.load_policy` or serve with
            the ``policy`` recommender (``params: {path: ...}``).
        progress: print progress.
        **kwargs: ``recworld.agents.rl.slate_pg.Args`` fields or, for PPO, Feed-v0 arguments.
    """
    if timesteps < 1:
        raise ConfigError(f"timesteps must be >= 1, got {timesteps}")
    if algo == "ppo":
        return train_ppo(timesteps, seed, out_path, progress, **kwargs)
    if algo != "slate_pg":
        raise ConfigError(f"algo={algo!r}; expected 'slate_pg' or 'ppo'")
    from recworld.agents.rl.slate_pg import Args
    from recworld.agents.rl.slate_pg import train as train_slate_pg

    args = Args(total_timesteps=int(timesteps), seed=seed, out_path=str(out_path), **kwargs)

    def _print(step: int, m: dict[str, float]) -> None:
        print(f"[slate_pg] step {step:>9,d}/{timesteps:,d}  mean episode return {m['episode_return']:7.2f}  {m['sps']:6.0f} steps/s", flush=True)

    train_slate_pg(args, _print if progress else None)
    return Path(out_path)


__all__ = ["train", "train_ppo"]
