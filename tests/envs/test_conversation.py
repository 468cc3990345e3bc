"""RecWorld/Conversation-v0 through the Gymnasium and SB3 checkers, determinism, and a trained policy used as a scenario's crs."""

import gymnasium as gym
import numpy as np
import pytest

from recworld.envs.conversation import ConversationEnv, baseline_action, run_episodes, summarize
from recworld.envs.registration import register_all

# The Gymnasium and SB3 checkers run on every registered id in tests/envs/test_feed.py.


@pytest.fixture(scope="module")
def env():
    register_all()
    e = gym.make("RecWorld/Conversation-v0", n_users=60, render_mode="ansi")
    yield e
    e.close()


def test_seeded_episodes_are_deterministic():
    def play(seed):
        e = ConversationEnv(n_users=60)
        out = []
        obs, _ = e.reset(seed=seed)
        for _ in range(5):
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
    e.step(0)  # ask about the genre
    text = e.render()
    assert isinstance(text, str) and "user:" in text and "agent:" in text and "genre" in text.lower()


@pytest.mark.slow
def test_a_briefly_trained_policy_beats_ask_two_then_recommend_and_matches_always_recommend():
    """Reduced version of the README's table (the full one: `recworld train --env conversation`)."""
    from recworld.envs.conversation import train_policy

    w = train_policy(iterations=20, batch=32, lr=0.3, seed=0, env_kwargs={"n_users": 60})
    e = ConversationEnv(n_users=60)
    res = {}
    for name, act in (
        ("trained", lambda o: int(np.argmax(o @ w))),
        ("always", lambda o: baseline_action("always_recommend", o, e.actions)),
        ("ask2", lambda o: baseline_action("ask_then_recommend", o, e.actions)),
    ):
        res[name] = summarize(run_episodes(e, act, 300, seed=77))
    t, a, q = res["trained"], res["always"], res["ask2"]
    assert t["turns_to_success"][2] < q["turns_to_success"][1]  # fewer turns to success, intervals apart
    assert t["success"][0] > q["success"][0]
    assert t["success"][2] >= a["success"][1]  # not worse than always recommending
