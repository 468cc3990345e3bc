"""The utility brain: choice behaviour and rating calibration on held-out ML-100K ratings."""

import numpy as np

from recworld.agents.brains import UtilityBrain, UtilityParams
from recworld.agents.population import MovieLensPopulation, split_ratings
from recworld.agents.recommenders import make_recommender
from recworld.catalog import Catalog
from recworld.world import World


def test_ratings_track_real_held_out_ratings(ml):
    sp = split_ratings(ml, 0.2, np.random.default_rng(0))
    mu = float(ml.rating[sp.train].mean())
    n_items = len(ml.items)
    s = np.bincount(ml.rating_item[sp.train], weights=ml.rating[sp.train], minlength=n_items)
    c = np.bincount(ml.rating_item[sp.train], minlength=n_items)
    quality = ((s + 10 * mu) / (c + 10) - mu).astype(np.float32)
    cat = Catalog.build(ml.items, quality=quality)
    brain = UtilityBrain(UtilityParams(rating_mean=mu))
    w = World(cat, MovieLensPopulation(ml, cat, train_mask=sp.train), brain, make_recommender("random"), seed=0)
    tu, ti, real = ml.rating_user[sp.test], ml.rating_item[sp.test], ml.rating[sp.test]
    aff = (w.users.taste[tu] * cat.embeddings[ti]).sum(1) * brain.affinity_scale(w)
    sim = brain.ratings(w, tu, ti[:, None], aff[:, None], np.random.default_rng(1)).ravel()
    assert abs(sim.mean() - real.mean()) < 0.1
    assert abs(sim.std() - real.std()) < 0.15
    hist = lambda r: np.bincount(r.astype(int), minlength=6)[1:] / r.size  # noqa: E731
    assert 0.5 * np.abs(hist(sim) - hist(real)).sum() < 0.1  # total variation distance
    assert np.corrcoef(sim, real)[0, 1] > 0.25
    # Users' held-out ratings are predicted better than by the global mean.
    expected = mu + w.users.rating_bias[tu] + quality[ti] + brain.params.rating_affinity * (aff - brain.params.rating_affinity_offset)
    assert np.sqrt(np.mean((np.clip(expected, 1, 5) - real) ** 2)) < 0.98 < real.std()


def test_better_matching_items_are_watched_more(make_world):
    w = make_world(n=200, recommender="random")
    brain = UtilityBrain()
    users = np.arange(200)
    sims = w.users.taste @ w.catalog.embeddings.T
    best = np.argsort(-sims, axis=1)[:, :10]
    worst = np.argsort(sims, axis=1)[:, :10]
    good = brain.decide(w, users, best).watched.mean()
    bad = brain.decide(w, users, worst).watched.mean()
    assert good > bad + 0.15


def test_position_bias_and_fatigue(make_world):
    w = make_world(n=300, recommender="random")
    brain = UtilityBrain()
    users = np.arange(300)
    rng = np.random.default_rng(0)
    slates = np.stack([rng.choice(len(w.catalog), 10, replace=False) for _ in users])
    fresh = np.mean([brain.decide(w, users, slates).watched for _ in range(5)], axis=0)
    assert fresh[:, 0].mean() > fresh[:, -1].mean()
    leave_fresh = np.mean([brain.decide(w, users, slates).leave.mean() for _ in range(5)])
    w.users.fatigue[:] = 2.0
    tired = brain.decide(w, users, slates)
    assert tired.watched.mean() < fresh.mean()
    assert tired.leave.mean() > leave_fresh
