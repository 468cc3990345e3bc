"""The native vector env of RecWorld/Conversation-v0: one slot is the single env, many slots share one world and batch the users' decisions."""

import gymnasium as gym
import numpy as np
import pytest

import recworld.agents.conversation.layer as layer_mod
from recworld.envs.conversation import ConversationEnv
from recworld.envs.conversation_vector import ConversationVectorEnv
from recworld.envs.registration import register_all
from recworld.errors import ConfigError


def test_one_slot_is_the_single_env_step_for_step():
    single, vec = ConversationEnv(n_users=40), ConversationVectorEnv(num_envs=1, n_users=40, share_ranking=False)
    rng = np.random.default_rng(5)
    o1, i1 = single.reset(seed=11)
    o2, i2 = vec.reset(seed=11)
    assert i1["user"] == i2["user"][0] and i1["mode"] == i2["mode"][0]
    ended = 0
    while ended < 25:
        np.testing.assert_array_equal(o1, o2[0])
        a = int(rng.integers(single.action_space.n))
        o1, r1, term, _, info = single.step(a)
        o2, r2, term2, trunc2, vinfo = vec.step([a])
        assert r1 == r2[0] and term == term2[0] and not trunc2[0]
        if term:
            ended += 1
            final = vinfo["final_info"]
            assert vinfo["_final_info"][0]
            assert (final["outcome"][0], final["success"][0], final["turns"][0], final["recommended"][0]) == (
                info["outcome"],
                info["success"],
                info["turns"],
                info["recommended"],
            )
            np.testing.assert_array_equal(vinfo["final_obs"][0], o1)  # zeros, as the single env's last observation
            o1, i1 = single.reset()
            assert i1["user"] == vinfo["user"][0]
    assert single.world.tick == vec.core.world.tick == 25  # one conversation, one tick


def test_make_vec_runs_many_conversations_of_one_world_with_autoreset():
    register_all()
    env = gym.make_vec("RecWorld/Conversation-v0", num_envs=8, n_users=60, render_mode="ansi")
    assert isinstance(env, ConversationVectorEnv) and env.max_episode_steps == 20
    obs, info = env.reset(seed=2)
    assert len(set(info["user"].tolist())) == 8
    rng = np.random.default_rng(0)
    episodes, lengths = 0, []
    for _ in range(60):
        assert env.observation_space.contains(obs)
        obs, r, term, trunc, info = env.step(env.action_space.sample() if rng.random() < 0.5 else np.zeros(8, np.int64))
        assert r.shape == (8,) and not trunc.any()  # the user's patience ends every conversation before the limit
        world = env.core.world
        talking = [c.user for c in env.core.convs]
        assert len(set(talking)) == 8 and sorted(np.flatnonzero(world.users.in_session).tolist()) == sorted(talking)
        if term.any():
            np.testing.assert_array_equal(info["_final_info"], term)
            assert set(info["final_info"]["outcome"][term]) <= {"success", "abandoned", "left", "ended_by_agent"}
            assert (info["_user"] == term).all()  # the slots that ended hold a new conversation already
            episodes += int(term.sum())
            lengths += info["final_info"]["episode_length"][term].tolist()
    assert episodes >= 40 and max(lengths) <= 8
    # A tick closes once 8 conversations ended in it (the ones ending in the same round count in it too).
    assert episodes / 16 <= world.tick <= episodes / 8 + 1
    assert "conversation 7" in env.render()
    env.close()


def test_a_round_is_decided_in_batches(monkeypatch):
    calls = []
    real = layer_mod.decide

    def counting(world, model, users, slates, draws):
        calls.append(len(users))
        return real(world, model, users, slates, draws)

    monkeypatch.setattr(layer_mod, "decide", counting)
    env = ConversationVectorEnv(num_envs=16, n_users=80)
    env.reset(seed=0)
    recommend3 = next(j for j, a in enumerate(env.actions) if a.kind == "recommend" and a.k == 3 and a.expert == "popularity")
    rec = env.core.world.recommender
    ranked = []
    real_rec = rec.recommend
    monkeypatch.setattr(rec, "recommend", lambda users, k, ctx: ranked.append(len(users)) or real_rec(users, k, ctx))
    for _ in range(5):
        before, r_before = len(calls), len(ranked)
        env.step(np.full(16, recommend3))
        # One user-model call for every conversation offered items (and one per round of answered questions): not one each.
        assert 1 <= len(calls) - before <= 3 and sum(calls[before:]) >= 14
        # The platform's recommender ranks once for the 16 users (for the next observations and recommendations).
        assert ranked[r_before:] == [16]


def test_same_seed_same_trajectories():
    def play(seed):
        env = ConversationVectorEnv(num_envs=4, n_users=40)
        obs, _ = env.reset(seed=seed)
        out = []
        for t in range(30):
            obs, r, term, _, _ = env.step(np.arange(4) * 3 % len(env.actions) if t % 2 else np.zeros(4, np.int64))
            out.append((obs.tobytes(), r.tobytes(), term.tobytes()))
        return out

    assert play(1) == play(1)
    assert play(1) != play(2)


def test_time_limit_truncates_and_closes_the_session():
    env = ConversationVectorEnv(num_envs=4, n_users=40, max_episode_steps=1)
    env.reset(seed=3)
    ask = next(j for j, a in enumerate(env.actions) if a.kind == "ask")
    _, _, term, trunc, info = env.step(np.full(4, ask))  # a question never ends a conversation
    assert trunc.all() and not term.any()
    assert (info["final_info"]["outcome"] == "abandoned").all()
    assert env.core.world.users.in_session.sum() == 4  # the four users left, four new ones talk


def test_nobody_left_to_talk_starts_a_fresh_world(monkeypatch):
    env = ConversationVectorEnv(num_envs=3, n_users=3)
    env.reset(seed=4)
    old = env.core.world
    end = next(j for j, a in enumerate(env.actions) if a.kind == "end")
    real, calls = env.core.free_users, []
    # Nobody free when the ended slot looks for its next user; the fresh world's users then.
    monkeypatch.setattr(env.core, "free_users", lambda: real() if calls.append(1) or len(calls) > 1 else np.zeros(0, np.int64))
    obs, _, term, trunc, info = env.step(np.array([end, 0, 0]))
    assert term[0] and trunc[1:].all() and info["_final_info"].all()
    assert env.core.world is not old and env.observation_space.contains(obs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_envs": 0}, "num_envs must be >= 1"),
        ({"num_envs": 5, "n_users": 4}, "need at least as many users"),
        ({"num_envs": 2, "n_user": 4}, "n_user"),
        ({"num_envs": 2, "render_mode": "human"}, "render_mode"),
    ],
)
def test_bad_arguments_are_one_line_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ConversationVectorEnv(**kwargs)
