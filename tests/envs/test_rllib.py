"""RLlib (the `ray` extra): PPO trains on Feed-v0's Dict observation and on the competition env with one policy per platform."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from recworld.envs.competition import parallel_env  # noqa: E402
from recworld.envs.rllib import (  # noqa: E402
    COMPETITION_ENV,
    FEED_ENV,
    CompetitionRLlibEnv,
    RLlibPolicy,
    competition_ppo_config,
    feed_ppo_config,
    is_rllib_checkpoint,
)

SMALL_PPO = {"train_batch_size": 200, "minibatch_size": 100, "num_epochs": 2, "hidden": (32,)}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING", object_store_memory=128 * 1024**2)
    yield
    ray.shutdown()


def test_competition_env_is_a_multiagent_env_with_flat_actions():
    cfg = {"n_platforms": 3, "n_users": 6, "max_cycles": 5}
    env = CompetitionRLlibEnv(cfg)
    ref = parallel_env(**cfg)
    assert set(env.possible_agents) == {"platform_0", "platform_1", "platform_2"}
    shape = ref.action_space("platform_0").shape
    assert env.action_space["platform_0"].shape == (int(np.prod(shape)),)
    assert env.observation_space["platform_0"] == ref.observation_space("platform_0")  # the Dict, unflattened
    obs, _ = env.reset(seed=4)
    ref_obs, _ = ref.reset(seed=4)
    rng = np.random.default_rng(0)
    done = False
    while not done:
        acts = {a: rng.uniform(-1, 1, env.action_space[a].shape).astype(np.float32) for a in obs}
        obs, rew, term, trunc, _ = env.step(acts)
        ref_obs, ref_rew, *_ = ref.step({a: x.reshape(shape) for a, x in acts.items()})
        assert rew == ref_rew  # a flat action is the same action
        done = term["__all__"] or trunc["__all__"]
    assert trunc["__all__"]


@pytest.mark.slow
def test_ppo_trains_on_feed_dict_observations_and_evaluates(local_ray, tmp_path):
    from recworld.envs.evaluate import evaluate, load_policy

    algo = feed_ppo_config({"n_background": 10}, **SMALL_PPO).build_algo()
    try:
        # The env runner steps Feed-v0 itself: Dict observations, flattened by RLlib's connector.
        assert algo.config.env == FEED_ENV
        assert type(algo.env_runner.env.unwrapped.single_observation_space).__name__ == "Dict"
        first = algo.train()
        second = algo.train()
        assert second["env_runners"]["num_env_steps_sampled_lifetime"] >= 2 * SMALL_PPO["train_batch_size"]
        learner = second["learners"]["default_policy"]
        assert np.isfinite(learner["total_loss"]) and np.isfinite(first["learners"]["default_policy"]["total_loss"])
        path = tmp_path / "ckpt"
        algo.save(str(path))
        live = RLlibPolicy.from_algorithm(algo)
    finally:
        algo.stop()
    assert is_rllib_checkpoint(path)
    loaded = load_policy(path)  # what `recworld eval --policies rllib=PATH` does
    assert isinstance(loaded, RLlibPolicy)
    from recworld.envs.feed_vector import FeedVectorEnv

    env = FeedVectorEnv(num_envs=5, n_background=10)
    obs, _ = env.reset(seed=11)
    a = loaded.act(obs)
    assert a.shape == (5, env.single_action_space.shape[0]) and a.min() >= 0 and a.max() < obs["candidates"].shape[1]
    assert np.array_equal(a, live.act(obs))  # the checkpoint holds the trained weights
    rows = evaluate({"rllib": loaded, "random": "random"}, seeds=[1000, 1001], episodes=3, max_episode_steps=20, n_background=10)
    assert {r["policy"] for r in rows} == {"rllib", "random"} and all(np.isfinite(r["mean"]) for r in rows)


@pytest.mark.slow
def test_multi_agent_ppo_one_policy_per_platform(local_ray):
    algo = competition_ppo_config({"n_platforms": 2, "n_users": 8, "max_cycles": 12}, **SMALL_PPO).build_algo()
    try:
        assert algo.config.env == COMPETITION_ENV
        before = {p: algo.get_module(p) for p in ("platform_0", "platform_1")}
        assert all(m is not None for m in before.values())
        w0 = {p: next(iter(m.parameters())).detach().clone() for p, m in before.items()}
        for _ in range(2):
            res = algo.train()
        assert res["env_runners"]["num_env_steps_sampled_lifetime"] >= 2 * SMALL_PPO["train_batch_size"]
        returns = res["env_runners"]["agent_episode_returns_mean"]
        assert set(returns) == {"platform_0", "platform_1"}
        for p in ("platform_0", "platform_1"):
            assert np.isfinite(res["learners"][p]["total_loss"])
            # each platform's own policy was updated
            assert not np.allclose(next(iter(algo.get_module(p).parameters())).detach().numpy(), w0[p].numpy())
    finally:
        algo.stop()


def test_without_ray_the_error_names_the_extra():
    code = "import sys; sys.modules['ray'] = None\nimport recworld.envs.rllib"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "RecWorldError: RLlib needs the 'ray' extra" in p.stderr and "pip install 'recworld[ray]'" in p.stderr
