"""The slate policy network, its save/load, and a trained policy beating the baselines."""

import numpy as np
import pytest
import torch

from recworld.agents.rl.policy import ScorerSpec, SlatePolicy, SlateScorer, plackett_luce_logp, sample_slates


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
def test_trained_slate_pg_reaches_popularity_and_beats_random(tmp_path):
    """Reduced version of the README's learning table (50k of its 300k training steps, fewer evaluation seeds and episodes)."""
    from recworld.agents.rl.slate_pg import Args, train
    from recworld.envs.evaluate import evaluate

    path = tmp_path / "pg.pt"
    trained = train(Args(total_timesteps=50_000, seed=0, n_background=100, out_path=str(path)))
    torch.manual_seed(0)  # a network as train() starts it (same seed): its input features alone already rank well
    untrained = SlatePolicy(SlateScorer(trained.spec))
    rows = evaluate(
        {"slate_pg": str(path), "untrained": untrained, "popularity": "popularity", "random": "random"},
        seeds=range(1000, 1008),
        episodes=48,
        metrics=("retention", "engagement"),
        n_background=100,
    )
    r = {(x["policy"], x["metric"]): x for x in rows}
    for metric in ("retention", "engagement"):
        assert r[("slate_pg", metric)]["ci_low"] > r[("random", metric)]["ci_high"], metric
        # Training is what gets it there (50k steps: 89 watches per episode against the untrained network's 44).
        assert r[("slate_pg", metric)]["ci_low"] > r[("untrained", metric)]["ci_high"], metric
    # Under the fitted users popularity is a strong baseline (they favour well-known films, as the
    # real log does): the learned policy reaches its level (README's table: 67.6 vs 72.2 watches per
    # episode, intervals overlapping) and is far above random.
    assert r[("slate_pg", "engagement")]["mean"] > 2 * r[("random", "engagement")]["mean"]
    assert r[("slate_pg", "engagement")]["mean"] > 0.8 * r[("popularity", "engagement")]["mean"]
    assert r[("slate_pg", "retention")]["mean"] > r[("popularity", "retention")]["mean"] - 0.01


def test_sb3_slate_policy_scores_candidates_with_one_shared_scorer():
    """Permuting the candidates permutes every slate position's logits the same way."""
    import gymnasium as gym

    import recworld.envs  # noqa: F401  (registers the ids)
    from recworld.agents.rl.sb3_policy import SlateActorCriticPolicy

    env = gym.make("RecWorld/Feed-v0", n_background=5, warmup_ticks=1, num_candidates=6, slate_size=3)
    pol = SlateActorCriticPolicy(env.observation_space, env.action_space, lambda _: 3e-4, embed_dims=8)
    obs, _ = env.reset(seed=0)
    perm = np.array([3, 0, 5, 1, 4, 2])
    t = {k: torch.as_tensor(v[None]) for k, v in obs.items()}
    tp = {"user": t["user"], "candidates": t["candidates"][:, perm]}
    with torch.no_grad():
        pol.action_net.offset.zero_()
        logits = pol.action_net(pol.extract_features(t, pol.features_extractor)).reshape(3, 6)
        logits_p = pol.action_net(pol.extract_features(tp, pol.features_extractor)).reshape(3, 6)
    torch.testing.assert_close(logits_p, logits[:, perm])
    torch.testing.assert_close(logits[0], logits[2])  # one scorer for every position (offsets zeroed)
    a, _ = pol.predict(obs, deterministic=True)
    assert a.shape == (3,) and env.action_space.contains(a)
