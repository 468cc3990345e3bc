"""The compiled fast path of the feed envs against the numpy path (World.serve_page + UtilityBrain)."""

import numpy as np
import pytest

from recworld.agents.brains import UtilityBrain
from recworld.config import WorldConfig
from recworld.envs import kernels as K
from recworld.envs.core import FeedConfig, FeedCore, candidate_features, dedupe_slates, user_features


class NumpyUtility(UtilityBrain):
    """The utility brain through its numpy code (a subclass with its own ``decide`` keeps the fast path off)."""

    def decide(self, world, users, slates):
        return super().decide(world, users, slates)


def _rollout(brain, seed: int, focal: int = 400, steps: int = 120) -> dict[str, float]:
    """Per-page statistics of random slates for ``focal`` users over ``steps`` steps."""
    core = FeedCore(FeedConfig(n_background=50, warmup_ticks=4, brain=brain), focal, seed)
    rng = np.random.default_rng(seed)
    pages = watched = rated = rating_sum = ends = churns = 0
    for _ in range(steps):
        act = np.argsort(rng.random((focal, core.N)), axis=1)[:, : core.k]
        res = core.step(core.slates_from_action(act))
        s = res.served
        pages += s.sum()
        watched += res.watched[s].sum()
        r = ~np.isnan(res.ratings[s])
        rated += r.sum()
        rating_sum += res.ratings[s][r].sum()
        ends += res.session_end[s].sum()
        churns += res.churned[s].sum()
        core.replace_users(np.flatnonzero(res.churned))  # keep every slot busy, as the vector env does
        core.next_page()
    return {
        "fast": core.fast,
        "pages": pages,
        "watch_rate": watched / (pages * core.k),
        "mean_rating": rating_sum / rated,
        "rated_share": rated / watched,
        "leave_rate": ends / pages,
        "churn_per_session": churns / ends,
    }


def test_fast_path_is_used_for_the_utility_family_only():
    assert FeedCore(FeedConfig(n_background=5, warmup_ticks=1), 2, 0).fast
    assert not FeedCore(FeedConfig(n_background=5, warmup_ticks=1, brain=NumpyUtility()), 2, 0).fast
    assert not FeedCore(FeedConfig(n_background=5, warmup_ticks=1, brain="scripted"), 2, 0).fast


def test_fast_path_matches_the_numpy_model_statistically():
    fast = _rollout("utility", seed=3)
    slow = _rollout(NumpyUtility(), seed=3)
    assert fast["fast"] and not slow["fast"]
    # 48k pages each (~9k ratings): allow ~4 standard errors of each difference.
    for key, tol in (("watch_rate", 0.01), ("rated_share", 0.025), ("leave_rate", 0.012), ("mean_rating", 0.07)):
        assert abs(fast[key] - slow[key]) < tol, (key, fast[key], slow[key])
    assert abs(fast["churn_per_session"] - slow["churn_per_session"]) < 0.02
    assert 0.1 < fast["watch_rate"] < 0.9 and 0.05 < fast["leave_rate"] < 0.6  # a live regime, not a degenerate one


def test_fast_path_is_deterministic_per_seed():
    def run(seed):
        core = FeedCore(FeedConfig(n_background=30, warmup_ticks=3, background_every=2), 5, seed)
        out = []
        rng = np.random.default_rng(0)
        for _ in range(60):
            res = core.step(core.slates_from_action(rng.integers(0, core.N, (5, core.k))))
            obs = core.next_page()
            out += [res.slates.ravel(), res.watched.ravel(), res.reward, obs["candidates"].ravel()]
        return np.concatenate([np.asarray(x, np.float64).ravel() for x in out])

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_slates_from_action_matches_dedupe():
    rng = np.random.default_rng(0)
    cands = np.stack([rng.permutation(1000)[:10] for _ in range(50)])
    for k in (1, 3, 10):
        act = rng.integers(-2, 12, (50, k))  # duplicates and out-of-range entries
        out = np.empty((50, k), np.int64)
        K.slates_from_action(act, cands, out)
        np.testing.assert_array_equal(out, np.take_along_axis(cands, dedupe_slates(act, 10), axis=1))
        assert all(len(set(r)) == k for r in out.tolist())


def _observe(core: FeedCore, rows: np.ndarray, draw: bool) -> dict[str, np.ndarray]:
    return core._observe_fast(rows, draw)


def test_candidates_are_distinct_unseen_and_observations_match_numpy():
    core = FeedCore(FeedConfig(n_background=5, warmup_ticks=1, num_candidates=20, slate_size=3), 6, 0)
    n_items = len(core.catalog)
    seen = core.world.seen
    seen[0, : n_items - 5] = True  # user 0 has only 5 unseen items left: all of them, then seen ones
    seen[1, :n_items] = True  # user 1 has seen everything
    seen[2, : n_items // 2] = True
    rows = np.arange(6)
    obs = _observe(core, rows, draw=True)
    c = core.candidates
    assert all(len(set(r)) == 20 for r in c.tolist())
    assert set(range(n_items - 5, n_items)) <= set(c[0].tolist())
    for r in (2, 3, 4, 5):
        assert not seen[r, c[r]].any()
    u = core.world.users
    uf = user_features(
        u.recent[rows],
        u.pages_in_session[rows],
        core.world.config.max_pages,
        core.last_share[rows],
        core.last_rating[rows],
        u.sessions[rows],
        core.cfg.embed_dims,
        core.catalog.dim,
    )
    cf = candidate_features(core.static, core.world.watch_counts[:n_items], c[rows])
    np.testing.assert_allclose(obs["user"], uf, atol=1e-6)
    np.testing.assert_allclose(obs["candidates"], cf, atol=1e-6)
    again = _observe(core, rows, draw=False)  # no draw: same candidates, fresh arrays
    np.testing.assert_array_equal(again["candidates"], obs["candidates"])
    assert again["candidates"] is not obs["candidates"]


def test_candidate_draws_are_uniform_over_unseen_items():
    core = FeedCore(FeedConfig(n_background=1, warmup_ticks=0, num_candidates=10, slate_size=2), 1, 0)
    n_items = len(core.catalog)
    core.world.seen[0, :n_items] = True
    core.world.seen[0, :40] = False  # 40 unseen items: each drawn with probability 10/40
    counts = np.zeros(n_items)
    rows = np.zeros(1, np.int64)
    for _ in range(4000):
        _observe(core, rows, draw=True)
        counts[core.candidates[0]] += 1
    assert counts[40:].sum() == 0
    p = counts[:40] / 4000
    assert np.abs(p - 0.25).max() < 0.04  # s.e. ~0.007


@pytest.mark.parametrize("every", [1, 4])
def test_background_ticks_every_n_steps_and_newcomers_replace_churned(every):
    cfg = FeedConfig(n_background=60, warmup_ticks=0, background_every=every, world=WorldConfig(churn_base=0.3))
    core = FeedCore(cfg, 2, 0)
    t0 = core.world.tick
    for _ in range(24 * every * 3):
        core.step(core.slates_from_action(np.zeros((2, core.k), np.int64)))
        core.next_page()
    assert core.world.tick - t0 == 24 * 3
    u = core.world.users
    # Heavy churn, yet the background keeps its size: newcomers arrive once a day.
    assert core.world.seen[2:].any(axis=1).sum() > 0
    assert (~u.churned[2:]).sum() >= 30
