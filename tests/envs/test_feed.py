"""RecWorld/Feed-v0 through the Gymnasium and SB3 checkers, plus determinism."""

import warnings

import gymnasium as gym
import numpy as np
import pytest

import recworld.envs.registration  # noqa: F401  (registers the ids)
from recworld.envs.core import dedupe_slates
from recworld.envs.registration import ENV_IDS, register_all

SMALL = {"n_background": 20, "warmup_ticks": 2}


def test_register_all_is_idempotent():
    register_all()
    register_all()
    for env_id in ENV_IDS:
        assert env_id in gym.registry
        assert isinstance(gym.registry[env_id].entry_point, str)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id):
    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id, **_small(env_id))
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)
        check_env(env.unwrapped, skip_render_check=False)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_check_env(env_id):
    from stable_baselines3.common.env_checker import check_env

    check_env(gym.make(env_id, **_small(env_id)).unwrapped, warn=True)


def _small(env_id):
    if env_id.endswith("Feed-v0"):
        return SMALL
    if env_id.endswith("Conversation-v0"):
        return {"n_users": 40}
    return {"n_users": 20, "warmup_ticks": 2}


def _rollout(seed, steps=60):
    env = gym.make("RecWorld/Feed-v0", **SMALL)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out = [obs["user"].copy()]
    rewards = []
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        out.append(obs["user"].copy())
        out.append(obs["candidates"].copy())
        rewards.append(r)
        if term or trunc:
            obs, _ = env.reset()
    return np.concatenate([o.ravel() for o in out]), np.array(rewards)


def test_seeded_rollouts_are_deterministic():
    a, ra = _rollout(3)
    b, rb = _rollout(3)
    c, _ = _rollout(4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ra, rb)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_episode_terminates_on_churn_and_truncates():
    env = gym.make("RecWorld/Feed-v0", max_episode_steps=30, churn_penalty=7.0, **SMALL)
    env.reset(seed=0)
    ends = []
    for _ in range(600):
        _, r, term, trunc, info = env.step(env.action_space.sample())
        if term:
            assert info["churned"] and r <= -7.0 + 2 * 1.5
        if term or trunc:
            ends.append("term" if term else "trunc")
            env.reset()
    assert "term" in ends and "trunc" in ends


def test_render_ansi_lists_the_slate():
    env = gym.make("RecWorld/Feed-v0", render_mode="ansi", **SMALL)
    env.reset(seed=1)
    env.step(np.array([0, 0]))
    text = env.render()
    assert "tick" in text and ("watched" in text or "skipped" in text)
    assert text.count("\n") == 3  # header + 2 distinct items (the duplicate was replaced)


def test_dedupe_replaces_duplicates_with_lowest_unused():
    a = dedupe_slates(np.array([[3, 3, 0], [1, 2, 9]]), n=4)
    assert a.tolist() == [[3, 0, 1], [1, 2, 0]]


# --- LLM users in the env: the llm brain against a scripted OpenAI-compatible server on 127.0.0.1 ---
import json  # noqa: E402

from recworld.agents.brains.llm import build_brain_from_config  # noqa: E402
from recworld.llm.testing import ScriptedLLMServer  # noqa: E402


def _llm_answer(req) -> str:
    if req.json_schema is not None:
        return json.dumps({"watch": [1], "ratings": [5], "feeling": "The first pick was spot on.", "leave": False, "instruction": ""})
    return 'Fine by me, thanks."'


@pytest.fixture
def llm_server():
    with ScriptedLLMServer(_llm_answer) as srv:
        yield srv


def test_llm_users_drive_feed_rewards(llm_server):
    llm = {"backend": "openai", "base_url": llm_server.base_url, "model": "scripted", "cache_path": None, "timeout_s": 5.0}
    brain = build_brain_from_config("llm", {}, llm, seed=0)
    env = gym.make("RecWorld/Feed-v0", brain=brain, n_background=5)
    try:
        obs, _ = env.reset(seed=3)
        rewards = []
        for _ in range(6):
            obs, r, term, trunc, _ = env.step(np.array([0, 1]))
            rewards.append(r)
            if term or trunc:
                break
    finally:
        env.close()
        brain.close()
    # The scripted user always watches the first item and rates it 5: every page pays.
    assert len(rewards) >= 3 and all(r >= 1.0 for r in rewards)
    assert llm_server.request_count >= len(rewards)
    assert brain.stats["fallbacks"] == 0


def test_unknown_brain_name_is_a_clear_error():
    from recworld.errors import ConfigError

    with pytest.raises(ConfigError, match="expected 'utility', 'scripted', 'hybrid', 'llm'"):
        env = gym.make("RecWorld/Feed-v0", brain="telepathic", n_background=5)
        env.reset(seed=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_candidates": 5000}, "exceeds the catalog"),
        ({"background_every": 0}, "background_every must be >= 1"),
        ({"slate_size": 11}, "slate_size must be in 1..num_candidates"),
    ],
)
def test_bad_arguments_are_one_line_errors(kwargs, message):
    from recworld.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        gym.make("RecWorld/Feed-v0", n_background=5, **kwargs).reset(seed=0)


def test_platform_rejects_feed_only_arguments():
    from recworld.errors import ConfigError

    with pytest.raises(ConfigError, match="background_every is not an argument here"):
        gym.make("RecWorld/Platform-v0", background_every=2)
