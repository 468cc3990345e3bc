"""The PettingZoo competition env passes the PettingZoo parallel tests and splits attention."""

import numpy as np
from pettingzoo.test import parallel_api_test, parallel_seed_test

from recworld.envs.competition import CompetitionEnv, parallel_env

KW = {"n_platforms": 2, "n_users": 15, "max_cycles": 20}


def test_parallel_api():
    parallel_api_test(parallel_env(**KW), num_cycles=30)


def test_parallel_seed():
    parallel_seed_test(lambda: parallel_env(**KW), num_cycles=15)


def test_one_session_at_a_time_and_attention_follows_satisfaction():
    env = CompetitionEnv(n_platforms=2, n_users=60, max_cycles=120, render_mode="ansi")
    obs, _ = env.reset(seed=0)
    good, bad = env.possible_agents
    totals = {good: 0.0, bad: 0.0}
    while env.agents:
        acts = {}
        for a in env.agents:
            items = obs[a]["candidates"]
            q = items[:, :, -1]  # quality: a decent ranking
            acts[a] = (q if a == good else -q).astype(np.float32)
        obs, rew, term, trunc, info = env.step(acts)
        both = np.stack([env.cores[a].world.users.in_session for a in env.possible_agents]).sum(axis=0)
        assert both.max() <= 1
        for a, r in rew.items():
            totals[a] += r
    assert totals[good] > totals[bad]
    assert "platform_0" in env.render()


def test_attention_flows_to_the_more_satisfying_platform():
    env = CompetitionEnv(n_platforms=2, n_users=60, max_cycles=96, attention_beta=8.0)
    obs, _ = env.reset(seed=1)
    a0, a1 = env.possible_agents
    while env.agents:
        env.cores[a0].world.users.satisfaction[:] = 0.9
        env.cores[a1].world.users.satisfaction[:] = 0.3
        obs, *_ = env.step({a: env.action_space(a).sample() for a in env.agents})
    s0 = int(env.cores[a0].world.users.sessions.sum())
    s1 = int(env.cores[a1].world.users.sessions.sum())
    assert s0 > 1.5 * s1
