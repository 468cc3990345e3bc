"""RecWorld/Conversation-v0 through the Gymnasium and SB3 checkers, determinism, and a trained policy used as a scenario's crs."""

import gymnasium as gym
import numpy as np
import pytest

from recworld.envs.conversation import ConversationEnv, baseline_action, run_episodes, summarize, turns_to_success
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


def _compare(env, policies, seeds, episodes):
    from recworld.metrics import mean_ci

    res = {}
    for name, act in policies.items():
        eps = [x for seed in seeds for x in run_episodes(env, act, episodes, seed=seed)]
        res[name] = {
            "success": mean_ci([x["success"] for x in eps]),
            "turns_to_success": mean_ci([x["turns"] if x["success"] else env.cfg.max_turns for x in eps]),
            "success_target": mean_ci([x["success"] for x in eps if x["mode"] == "target"] or [0.0]),
        }
        assert turns_to_success(eps, env.cfg.max_turns) == pytest.approx(res[name]["turns_to_success"][0])
    return res


@pytest.mark.slow
def test_asking_after_a_rejected_page_pays_because_the_answers_narrow_the_candidates():
    """Target mode, where the policies differ: the hand-set recommend_then_ask finds more targets, in fewer turns, intervals apart."""
    e = ConversationEnv(n_users=100, mode="target")
    res = _compare(
        e, {n: (lambda o, n=n: baseline_action(n, o, e.actions)) for n in ("recommend_then_ask", "always_recommend", "ask_then_recommend")}, (77,), 400
    )
    r, a, q = res["recommend_then_ask"], res["always_recommend"], res["ask_then_recommend"]
    assert r["success"][1] > a["success"][2], res
    assert r["turns_to_success"][2] < a["turns_to_success"][1], res
    assert r["success"][0] > q["success"][0] and r["turns_to_success"][0] < q["turns_to_success"][0], res


@pytest.mark.slow
def test_a_policy_searched_from_zero_weights_leaves_the_always_recommend_plateau():
    """Reduced version of the README's table (`recworld train --env conversation --algo es`): a short evolution-strategy
    search from zero weights on a 60-user world (about 65 s of CPU), judged on held-out seeds 77-78 (600 conversations).

    What the full run shows, here: intervals apart from "ask two, then recommend" on success and turns to success;
    against "always recommend" more successes and fewer turns to success (means; 0.57 vs 0.49 and 4.27 vs 4.71 when
    written), and in target mode, where asking is what finds the hidden item, more targets found with intervals apart
    (0.14 vs 0.03). A search that stays on the plateau (recommending every turn) fails the last three.
    """
    from recworld.envs.conversation_train import train_es

    w, rep = train_es(timesteps=30_000, seed=0, env_kwargs={"n_users": 60}, episodes=60, val_seeds=1, val_episodes=100, select_last=3)
    assert rep.train_steps >= 30_000 and rep.chosen.startswith("incumbent@") and any(g["kept"] for g in rep.generations)
    e = ConversationEnv(n_users=60)
    pols = {"trained": lambda o: int(np.argmax(o @ w))}
    pols |= {n: (lambda o, n=n: baseline_action(n, o, e.actions)) for n in ("always_recommend", "ask_then_recommend")}
    res = _compare(e, pols, (77, 78), 300)
    t, a, q = res["trained"], res["always_recommend"], res["ask_then_recommend"]
    assert t["success"][1] > q["success"][2] and t["turns_to_success"][2] < q["turns_to_success"][1], res
    assert t["success"][0] > a["success"][0] + 0.05 and t["turns_to_success"][0] < a["turns_to_success"][0] - 0.2, res
    assert t["success_target"][1] > a["success_target"][2], res
