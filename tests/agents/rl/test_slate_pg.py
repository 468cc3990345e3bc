"""The slate policy network, its save/load, and a trained policy beating the baselines."""

import numpy as np
import pytest
import torch

from agents.rl.policy import ScorerSpec, SlatePolicy, SlateScorer, plackett_luce_logp, sample_slates


def test_plackett_luce_probabilities_sum_to_one():
    scores = torch.tensor([[0.3, -1.0, 2.0, 0.5]])
    slates = [(a, b) for a in range(4) for b in range(4) if a != b]
    lp, ent = plackett_luce_logp(scores.expand(len(slates), -1), torch.tensor(slates))
    assert abs(float(lp.exp().sum()) - 1.0) < 1e-5
    assert float(ent[0]) > 0


def test_samples_are_distinct_and_policy_round_trips(tmp_path):
    spec = ScorerSpec(user_dim=12, item_dim=10, embed_dims=8, num_candidates=10, slate_size=3)
    model = SlateScorer(spec)
    s, v = model(torch.randn(5, 12), torch.randn(5, 10, 10))
    assert s.shape == (5, 10) and v.shape == (5,)
    a = sample_slates(s, 3, torch.Generator().manual_seed(0))
    assert all(len(set(r)) == 3 for r in a.tolist())
    pol = SlatePolicy(model)
    obs = {"user": np.random.rand(4, 12).astype(np.float32), "candidates": np.random.rand(4, 10, 10).astype(np.float32)}
    path = pol.save(tmp_path / "p.pt")
    again = SlatePolicy.load(path)
    np.testing.assert_array_equal(pol.act(obs), again.act(obs))


@pytest.mark.slow
def test_trained_slate_pg_beats_popularity_and_random(tmp_path):
    """Reduced version of the headline result (full numbers: see the RL report command)."""
    from agents.rl.slate_pg import Args, train
    from envs.evaluate import evaluate

    path = tmp_path / "pg.pt"
    train(Args(total_timesteps=150_000, seed=0, n_background=100, out_path=str(path)))
    rows = evaluate({"slate_pg": str(path), "popularity": "popularity", "random": "random"}, seeds=range(1000, 1006), episodes=64, metrics=("retention", "engagement"), n_background=100)
    r = {(x["policy"], x["metric"]): x for x in rows}
    for metric in ("retention", "engagement"):
        pg = r[("slate_pg", metric)]
        for base in ("popularity", "random"):
            b = r[(base, metric)]
            assert pg["ci_low"] > b["ci_high"], (metric, base, pg, b)
    assert r[("slate_pg", "engagement")]["mean"] > 1.5 * r[("popularity", "engagement")]["mean"]
