"""RLlib on RecWorld (the ``ray`` extra): Feed-v0 and the competition env as RLlib environments, PPO configs, a policy adapter.

- ``RecWorld/Feed-v0`` is registered with RLlib as :data:`FEED_ENV` exactly as it is
  (Dict observation, MultiDiscrete slate action). RLlib's default models take flat
  vectors, so :func:`feed_ppo_config` adds RLlib's own ``FlattenObservations``
  connector to the env-to-module pipeline: the env is never wrapped by the user, and
  the observations stored in episodes are the flat ones RLlib trains on.
- The PettingZoo competition env (:func:`recworld.envs.competition.parallel_env`) is
  registered as :data:`COMPETITION_ENV`, a multi-agent RLlib env through RLlib's
  ``ParallelPettingZooEnv``. Its per-agent action is a ``(n_users, num_candidates)``
  score matrix; RLlib's default action distributions need 1-D boxes, so
  :class:`CompetitionRLlibEnv` exposes it flattened (same bounds) and reshapes it back.
  :func:`competition_ppo_config` trains one PPO policy per platform.
- :class:`RLlibPolicy` runs a trained Feed-v0 module on batches of observations, so
  RLlib policies are evaluated like any other (:func:`recworld.envs.evaluate.evaluate`,
  ``recworld eval --policies name=path/to/checkpoint``).

Both configs run on the new API stack (RLModule, Learner, EnvRunner), RLlib's default.
``num_env_runners=0`` samples in the driver; on a cluster raise it (one runner per CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from recworld.errors import ConfigError, RecWorldError

try:
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.connectors.env_to_module import FlattenObservations
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
    from ray.rllib.utils.numpy import flatten_inputs_to_1d_tensor
    from ray.tune.registry import register_env
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise RecWorldError(f"RLlib needs the 'ray' extra ({exc.name} missing): pip install 'recworld[ray]'") from None

FEED_ENV = "recworld-feed"
COMPETITION_ENV = "recworld-competition"


def make_feed_env(config: dict[str, Any] | None = None) -> gym.Env:
    """``gym.make("RecWorld/Feed-v0", **config)`` (time limit included); the RLlib env creator."""
    from recworld.envs.registration import register_all

    register_all()  # env runners in other processes have not imported recworld.envs
    return gym.make("RecWorld/Feed-v0", **dict(config or {}))


class CompetitionRLlibEnv(ParallelPettingZooEnv):
    """The PettingZoo competition env as an RLlib ``MultiAgentEnv``, with 1-D per-agent action boxes.

    Args:
        config: :class:`~recworld.envs.competition.CompetitionEnv` arguments
            (``n_platforms``, ``n_users``, ``max_cycles``, Feed-v0 arguments, ...).
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        from recworld.envs.competition import parallel_env

        super().__init__(parallel_env(**dict(config or {})))
        self._shapes = {a: s.shape for a, s in self.action_space.spaces.items()}
        self.action_space = gym.spaces.Dict(
            {a: gym.spaces.Box(s.low.reshape(-1), s.high.reshape(-1), dtype=s.dtype) for a, s in self.action_space.spaces.items()}
        )

    def step(self, action_dict: dict[str, Any]):
        return super().step({a: np.asarray(x, np.float32).reshape(self._shapes[a]) for a, x in action_dict.items()})


def register_rllib_envs() -> None:
    """Register :data:`FEED_ENV` and :data:`COMPETITION_ENV` with RLlib (idempotent)."""
    register_env(FEED_ENV, make_feed_env)
    register_env(COMPETITION_ENV, CompetitionRLlibEnv)


def _flatten_connector(env: Any = None, spaces: Any = None, device: Any = None) -> FlattenObservations:
    return FlattenObservations()


def _flatten_connector_multi(env: Any = None, spaces: Any = None, device: Any = None) -> FlattenObservations:
    return FlattenObservations(multi_agent=True)


def _common(
    config: PPOConfig,
    *,
    num_env_runners: int,
    num_envs_per_env_runner: int,
    train_batch_size: int,
    minibatch_size: int,
    num_epochs: int,
    lr: float,
    hidden: Sequence[int],
    seed: int | None,
) -> PPOConfig:
    if train_batch_size < 1 or minibatch_size < 1 or minibatch_size > train_batch_size:
        raise ConfigError(f"need 1 <= minibatch_size <= train_batch_size, got {minibatch_size} and {train_batch_size}")
    return (
        config.env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=num_envs_per_env_runner)
        .training(train_batch_size_per_learner=train_batch_size, minibatch_size=minibatch_size, num_epochs=num_epochs, lr=lr)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(hidden), vf_share_layers=False))
        .debugging(seed=seed)
    )


def feed_ppo_config(
    env_config: dict[str, Any] | None = None,
    *,
    num_env_runners: int = 0,
    num_envs_per_env_runner: int = 1,
    train_batch_size: int = 4000,
    minibatch_size: int = 500,
    num_epochs: int = 10,
    lr: float = 3e-4,
    hidden: Sequence[int] = (128, 128),
    seed: int | None = 0,
) -> PPOConfig:
    """A PPO config (new API stack) training on ``RecWorld/Feed-v0`` as it is.

    Args:
        env_config: Feed-v0 arguments (``n_background``, ``slate_size``, ``num_candidates``, ...).
        num_env_runners: remote EnvRunner actors (0 = sample in the driver).
        num_envs_per_env_runner: Feed-v0 copies per runner (gymnasium vectorised).
        train_batch_size, minibatch_size, num_epochs, lr: PPO settings.
        hidden: sizes of the MLP layers.
        seed: seed of the env runners and modules.

    Returns:
        The config; ``config.build_algo().train()`` trains one iteration.
    """
    register_rllib_envs()
    cfg = PPOConfig().environment(FEED_ENV, env_config=dict(env_config or {}))
    cfg = cfg.env_runners(env_to_module_connector=_flatten_connector)
    return _common(
        cfg,
        num_env_runners=num_env_runners,
        num_envs_per_env_runner=num_envs_per_env_runner,
        train_batch_size=train_batch_size,
        minibatch_size=minibatch_size,
        num_epochs=num_epochs,
        lr=lr,
        hidden=hidden,
        seed=seed,
    )


def competition_ppo_config(
    env_config: dict[str, Any] | None = None,
    *,
    num_env_runners: int = 0,
    num_envs_per_env_runner: int = 1,
    train_batch_size: int = 2000,
    minibatch_size: int = 250,
    num_epochs: int = 10,
    lr: float = 3e-4,
    hidden: Sequence[int] = (128, 128),
    seed: int | None = 0,
) -> PPOConfig:
    """A multi-agent PPO config: one recommender policy per platform of the competition env.

    Args:
        env_config: :class:`~recworld.envs.competition.CompetitionEnv` arguments; ``n_platforms``
            (default 2) sets the number of policies, named like the agents (``platform_0``, ...).
        (the rest): as :func:`feed_ppo_config`.
    """
    register_rllib_envs()
    env_config = dict(env_config or {})
    n = int(env_config.get("n_platforms", 2))
    if n < 1:
        raise ConfigError(f"n_platforms must be >= 1, got {n}")
    policies = [f"platform_{i}" for i in range(n)]
    cfg = (
        PPOConfig()
        .environment(COMPETITION_ENV, env_config=env_config)
        .env_runners(env_to_module_connector=_flatten_connector_multi)
        .multi_agent(policies=set(policies), policy_mapping_fn=_agent_is_policy)
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={p: RLModuleSpec() for p in policies}))
    )
    return _common(
        cfg,
        num_env_runners=num_env_runners,
        num_envs_per_env_runner=num_envs_per_env_runner,
        train_batch_size=train_batch_size,
        minibatch_size=minibatch_size,
        num_epochs=num_epochs,
        lr=lr,
        hidden=hidden,
        seed=seed,
    )


def _agent_is_policy(agent_id: str, *args: Any, **kwargs: Any) -> str:
    return agent_id


class RLlibPolicy:
    """A trained Feed-v0 RLModule as a batch policy (``act(obs) -> (B, k)``), greedy.

    Observations are flattened by the function RLlib's ``FlattenObservations``
    connector uses in training (Box parts in sorted key order). Duplicate
    positions in a slate are resolved by the env, as for every MultiDiscrete policy.

    Args:
        module: the trained single-agent RLModule (``algo.get_module()``).
    """

    def __init__(self, module: Any) -> None:
        self.module = module

    @classmethod
    def from_algorithm(cls, algo: Any) -> RLlibPolicy:
        """The policy of a built (trained) Feed-v0 algorithm."""
        return cls(algo.get_module())

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> RLlibPolicy:
        """Load the module of a Feed-v0 algorithm checkpoint (a folder written by ``algo.save(path)``).

        Raises:
            ConfigError: ``path`` is not such a checkpoint.
        """
        from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_LEARNER_GROUP, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
        from ray.rllib.core.rl_module.rl_module import RLModule

        root = Path(path).resolve()
        p = root / COMPONENT_LEARNER_GROUP / COMPONENT_LEARNER / COMPONENT_RL_MODULE / DEFAULT_MODULE_ID
        if not is_rllib_checkpoint(root) or not p.is_dir():
            raise ConfigError(f"{path} is not a single-agent RLlib checkpoint (no {p.relative_to(root)}); save one with algo.save(path)")
        return cls(RLModule.from_checkpoint(p))

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        import torch
        from ray.rllib.core.columns import Columns

        flat = flatten_inputs_to_1d_tensor({k: np.asarray(v, np.float32) for k, v in obs.items()}, None, batch_axis=True)
        with torch.no_grad():
            out = self.module.forward_inference({Columns.OBS: torch.as_tensor(flat, dtype=torch.float32)})
        dist = self.module.get_inference_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        a = dist.to_deterministic().sample()
        return np.asarray(a.cpu().numpy(), np.int64).reshape(flat.shape[0], -1)


def is_rllib_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a directory written by ``Algorithm.save``."""
    p = Path(path)
    return p.is_dir() and (p / "rllib_checkpoint.json").exists()


__all__ = [
    "COMPETITION_ENV",
    "FEED_ENV",
    "CompetitionRLlibEnv",
    "RLlibPolicy",
    "competition_ppo_config",
    "feed_ppo_config",
    "is_rllib_checkpoint",
    "make_feed_env",
    "register_rllib_envs",
]
