"""The native vector env of RecWorld/Feed-v0: shapes, spaces, seeding, autoreset."""

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

import recworld.envs.registration  # noqa: F401  (registers the ids)

KW = {"n_background": 20, "warmup_ticks": 2}


def make(n=8, **kw):
    return gym.make_vec("RecWorld/Feed-v0", num_envs=n, vectorization_mode="vector_entry_point", **{**KW, **kw})


def test_make_vec_shapes_and_spaces():
    env = make(8)
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs, info = env.reset(seed=0)
    assert obs["user"].shape == (8, env.single_observation_space["user"].shape[0])
    assert obs["candidates"].shape == (8, *env.single_observation_space["candidates"].shape)
    assert obs in env.observation_space
    env.action_space.seed(0)
    for _ in range(20):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert obs in env.observation_space
        assert r.shape == term.shape == trunc.shape == (8,)
        assert r.dtype == np.float64 and term.dtype == bool and trunc.dtype == bool


def _roll(seed, steps=40):
    env = make(6)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    traj = [obs["user"], obs["candidates"].ravel()]
    for _ in range(steps):
        obs, r, *_ = env.step(env.action_space.sample())
        traj += [obs["user"].ravel(), obs["candidates"].ravel(), r]
    return np.concatenate([np.ravel(t) for t in traj])


def test_seeding_is_deterministic():
    np.testing.assert_array_equal(_roll(5), _roll(5))
    assert not np.array_equal(_roll(5), _roll(6))


def test_same_step_autoreset():
    env = make(16, max_episode_steps=10)
    env.reset(seed=1)
    env.action_space.seed(1)
    saw_done = False
    length = np.zeros(16, int)
    for _ in range(30):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        done = term | trunc
        length += 1
        # Truncated exactly when an episode reaches the time limit without ending first.
        assert (trunc[~term] == (length[~term] >= 10)).all()
        if done.any():
            saw_done = True
            assert info["_final_obs"].tolist() == done.tolist()
            for i in np.flatnonzero(done):
                assert info["final_obs"][i] in env.single_observation_space
                assert info["final_info"]["episode_length"][i] >= 1
                # the slot now holds a fresh user at the start of a session
                assert obs["user"][i][0] == 0.0 and obs["user"][i][3] > 0
        length[done] = 0
    assert saw_done


def test_matches_the_single_env_spaces():
    single = gym.make("RecWorld/Feed-v0", **KW)
    vec = make(2)
    assert single.observation_space == vec.single_observation_space
    assert single.action_space == vec.single_action_space
