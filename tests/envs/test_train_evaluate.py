"""Training entry points, policy loading, evaluation rows and PolicyRecommender inside a world."""

import numpy as np

from recworld.envs.evaluate import evaluate, load_policy, mean_ci
from recworld.envs.train import train


def test_mean_ci_student_t():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and lo < 2.0 < hi and abs((hi - m) - 4.303 * 1.0 / np.sqrt(3)) < 1e-6


def test_ppo_and_slate_pg_train_save_load_and_evaluate(tmp_path):
    ppo = train("ppo", 256, seed=0, out_path=tmp_path / "ppo", progress=False, n_envs=2, n_background=10, warmup_ticks=1)
    pg = train("slate_pg", 512, seed=0, out_path=tmp_path / "pg.pt", progress=False, num_envs=8, num_steps=16, n_background=10)
    assert ppo.exists() and pg.exists()
    obs = {"user": np.zeros((3, 12), np.float32), "candidates": np.zeros((3, 10, 10), np.float32)}
    for p in (ppo, pg):
        assert load_policy(p).act(obs).shape == (3, 2)
    rows = evaluate({"pg": str(pg), "random": "random"}, seeds=[7, 8], episodes=4, max_episode_steps=15, n_background=10, warmup_ticks=1)
    assert {r["policy"] for r in rows} == {"pg", "random"}
    for r in rows:
        assert set(r) >= {"policy", "metric", "mean", "ci_low", "ci_high", "n_seeds"}
        assert r["ci_low"] <= r["mean"] <= r["ci_high"] and r["n_seeds"] == 2


def test_policy_recommender_serves_in_a_world(tmp_path):
    from recworld.agents.brains import UtilityBrain
    from recworld.agents.population import SampledPopulation
    from recworld.agents.recommenders import make_recommender
    from recworld.config import WorldConfig
    from recworld.envs.core import default_catalog
    from recworld.protocols import Recommender
    from recworld.world import World

    path = train("slate_pg", 256, seed=1, out_path=tmp_path / "pg.pt", progress=False, num_envs=8, num_steps=16, n_background=10)
    rec = make_recommender("policy", {"path": str(path)})
    assert isinstance(rec, Recommender) and rec.name == "policy"
    cat = default_catalog()
    w = World(cat, SampledPopulation(cat, 40, seed=2), UtilityBrain(), rec, WorldConfig(slate_size=4), seed=2)
    w.run(30)
    assert w.users.sessions.sum() > 0 and w.exposure.sum() > 0
