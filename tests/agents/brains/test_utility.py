"""The utility brain: the user model's decisions (choice behaviour, leave hazard, ordinal ratings)."""

import numpy as np

from recworld.agents.brains import DecisionParams, UtilityBrain
from recworld.usermodel import kernels as UK
from recworld.usermodel.draws import PageDraws


def _decide(brain, w, users, slates, seed=0):
    draws = PageDraws(slates.shape[1]).draw(np.random.default_rng(seed), users.size)
    return brain.decide(w.page_context(users, slates, 0, draws))


def test_better_matching_items_are_watched_more(make_world):
    w = make_world(n=200, recommender="random")
    brain = UtilityBrain()
    users = np.arange(200)
    aff = w.users.taste @ w.items.factors[: len(w.catalog)].T
    best = np.argsort(-aff, axis=1)[:, :10]
    worst = np.argsort(aff, axis=1)[:, :10]
    assert _decide(brain, w, users, best).watched.mean() > _decide(brain, w, users, worst).watched.mean() + 0.15


def test_position_bias_and_fatigue(make_world):
    w = make_world(n=300, recommender="random")
    brain = UtilityBrain()
    users = np.arange(300)
    rng = np.random.default_rng(0)
    slates = np.stack([rng.choice(len(w.catalog), 10, replace=False) for _ in users])
    fresh = np.mean([_decide(brain, w, users, slates, s).watched for s in range(5)], axis=0)
    assert fresh[:, 0].mean() > fresh[:, -1].mean()
    leave_fresh = np.mean([_decide(brain, w, users, slates, s).leave.mean() for s in range(5)])
    w.users.fatigue[:] = 2.0
    tired = _decide(brain, w, users, slates, 9)
    assert tired.watched.mean() < fresh.mean()
    assert tired.leave.mean() > leave_fresh


def test_the_same_draws_give_the_same_decisions(make_world):
    w = make_world(n=50, recommender="random")
    users = np.arange(50)
    slates = np.stack([np.random.default_rng(u).choice(len(w.catalog), 10, replace=False) for u in users])
    a, b = _decide(UtilityBrain(), w, users, slates, 3), _decide(UtilityBrain(), w, users, slates, 3)
    np.testing.assert_array_equal(a.watched, b.watched)
    np.testing.assert_array_equal(a.ratings, b.ratings)
    np.testing.assert_array_equal(a.leave, b.leave)


def test_sampled_ratings_follow_the_ordinal_model(make_world):
    w = make_world(n=100, recommender="random")
    p = DecisionParams(rate_probability=1.0, no_click=-50.0)  # everything watched and rated
    brain = UtilityBrain(p)
    users = np.repeat(np.arange(100), 40)
    slates = np.random.default_rng(1).integers(0, len(w.catalog), (users.size, 1))
    dec = _decide(brain, w, users, slates, 4)
    probs = np.empty((users.size, 5))
    UK.rating_distribution(brain.record, w.state, w.items, users, slates[:, 0], probs)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    sampled = np.bincount(dec.ratings[:, 0].astype(int), minlength=6)[1:] / users.size
    assert 0.5 * np.abs(sampled - probs.mean(axis=0)).sum() < 0.03
    assert np.isin(dec.ratings, [1, 2, 3, 4, 5]).all()
