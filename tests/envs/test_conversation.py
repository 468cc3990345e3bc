"""RecWorld/Conversation-v0 through the Gymnasium and SB3 checkers, determinism, and a trained policy used as a scenario's crs."""

import gymnasium as gym
import numpy as np
import pytest

from recworld.envs.conversation import ConversationEnv, baseline_action, run_episodes, summarize
from recworld.envs.registration import register_all


@pytest.fixture(scope="module")
def env():
    register_all()
    e = gym.make("RecWorld/Conversation-v0", n_users=60, render_mode="ansi")
    yield e
    e.close()


def test_passes_the_gymnasium_and_sb3_checkers(env):
    from gymnasium.utils.env_checker import check_env

    check_env(env.unwrapped, skip_render_check=True)
    sb3 = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3.check_env(ConversationEnv(n_users=60), warn=True)


def test_seeded_episodes_are_deterministic():
    def play(seed):
        e = ConversationEnv(n_users=60)
        out = []
        obs, _ = e.reset(seed=seed)
        for ep in range(5):
            done = False
            while not done:
                obs, r, term, trunc, info = e.step(baseline_action("ask_then_recommend", obs, e.actions))
                out.append((obs.tobytes(), r))
                done = term or trunc
            out.append(info["outcome"])
            obs, _ = e.reset()
        return out

    assert play(3) == play(3)
    assert play(3) != play(4)


def test_episodes_end_with_outcomes_and_rewards_that_follow_them(env):
    e = env.unwrapped
    eps = run_episodes(e, lambda o: baseline_action("always_recommend", o, e.actions), 40, seed=11)
    assert {x["outcome"] for x in eps} <= {"success", "abandoned", "left", "ended_by_agent", "failed"}
    succ = [x["return"] for x in eps if x["success"]]
    fail = [x["return"] for x in eps if not x["success"]]
    assert succ and fail and np.mean(succ) > np.mean(fail) + 0.5
    s = summarize(eps)
    assert 0 < s["success"][0] < 1 and s["turns_to_success"][0] >= 1
    assert "transcript" not in s and e.render() is None or isinstance(e.render(), str)
