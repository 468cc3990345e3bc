"""The envs' compiled path runs the user model exactly as the World does; candidates and observations."""

import copy

import numpy as np
import pytest

from recworld.agents.brains import UtilityBrain
from recworld.agents.brains.distilled import DistilledBrain
from recworld.config import WorldConfig
from recworld.envs import kernels as K
from recworld.envs.core import FeedConfig, dedupe_slates, make_core
from recworld.envs.pages import CompiledPages, WorldPages
from recworld.usermodel.draws import PageDraws
from recworld.usermodel.params import decision_record, dynamics_record, record


class OwnDecide(UtilityBrain):
    """A brain with its own ``decide``: the compiled path cannot know what it does."""

    def decide(self, ctx):
        return super().decide(ctx)


def _core(**kw):
    return make_core(FeedConfig(n_background=5, warmup_ticks=1, **kw), 2, 0)


def test_compiled_pages_serve_user_model_brains_only():
    assert isinstance(_core().pages, CompiledPages)
    assert isinstance(_core(brain=DistilledBrain()).pages, CompiledPages)
    assert isinstance(_core(brain=OwnDecide()).pages, WorldPages)
    assert isinstance(_core(brain="scripted").pages, WorldPages)


def test_the_same_draws_give_the_world_and_the_compiled_path_the_same_decisions_and_state(make_world):
    world = make_world(n=300, recommender="random", seed=5)
    world.run(30)  # varied state: fatigue, recent consumption, popularity, seen items
    users = world.begin_tick()
    assert users.size > 10
    k = world.config.slate_size
    slates = world.recommender.recommend(users, k, world.context())
    a, b = world, copy.deepcopy(world)

    # The compiled path draws from its stream: first the page's uniforms, then 2 per session end.
    stream = np.array([12345], np.uint64)
    replay = stream.copy()
    page_draws = np.empty((users.size, PageDraws(k).width))
    K.fill_uniforms(replay, page_draws)
    a._page_draws = lambda rows, k_: page_draws

    def end_draws(rows):
        out = np.empty((rows, 2))
        K.fill_uniforms(replay, out)
        return out

    a._end_draws = end_draws
    page = a.serve_page(users, slates)

    P, W, R = decision_record(b.brain.params), dynamics_record(b.config), record(FeedConfig(), K.REWARD_FIELDS)
    n = users.size
    watched, frac, ratings = np.empty((n, k), bool), np.empty((n, k)), np.empty((n, k))
    leave, churn, reward = np.empty(n, bool), np.empty(n, bool), np.empty(n)
    K.serve_rows(P, W, R, b.state, b.items, b.platform, users, slates, stream, b.tick, 0, watched, frac, ratings, leave, churn, reward)

    np.testing.assert_array_equal(page.decision.watched, watched)
    np.testing.assert_array_equal(page.decision.ratings, ratings)
    np.testing.assert_array_equal(page.decision.watch_frac, frac)
    np.testing.assert_array_equal(page.leave, leave)
    np.testing.assert_array_equal(a.users.churned[users] & leave, churn)
    for name, arr in a.users.as_dict().items():
        np.testing.assert_array_equal(arr, getattr(b.users, name), err_msg=name)
    for name in ("seen", "exposure", "watch_counts"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert watched.any() and leave.any()  # a live page, not a degenerate one


def test_compiled_path_is_deterministic_per_seed():
    def run(seed):
        core = make_core(FeedConfig(n_background=30, warmup_ticks=3, background_every=2), 5, seed)
        out = []
        rng = np.random.default_rng(0)
        for _ in range(60):
            res = core.step(core.slates_from_action(rng.integers(0, core.N, (5, core.k))))
            obs = core.next_page()
            out += [res.slates.ravel(), res.watched.ravel(), res.reward, obs["candidates"].ravel()]
        return np.concatenate([np.asarray(x, np.float64).ravel() for x in out])

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_dedupe_keeps_firsts_and_replaces_repeats_by_the_lowest_unused_index():
    rng = np.random.default_rng(0)
    for k in (1, 3, 10):
        act = rng.integers(-2, 12, (50, k))  # duplicates and out-of-range entries
        out = dedupe_slates(act, 10)
        for row, got in zip(act.tolist(), out.tolist()):
            used, want = set(), []
            for c in row:
                if not 0 <= c < 10 or c in used:
                    c = min(set(range(10)) - used)
                used.add(c)
                want.append(c)
            assert got == want


def test_candidates_are_distinct_and_unseen_first():
    core = make_core(FeedConfig(n_background=5, warmup_ticks=1, num_candidates=20, slate_size=3), 6, 0)
    n_items = len(core.catalog)
    seen = core.world.seen
    seen[0, : n_items - 5] = True  # user 0 has only 5 unseen items left: all of them, then seen ones
    seen[1, :n_items] = True  # user 1 has seen everything
    seen[2, : n_items // 2] = True
    core.draw_candidates()
    c = core.candidates
    assert all(len(set(r)) == 20 for r in c.tolist())
    assert set(range(n_items - 5, n_items)) <= set(c[0].tolist())
    for r in (2, 3, 4, 5):
        assert not seen[r, c[r]].any()


def test_observations_follow_the_spec():
    core = make_core(FeedConfig(n_background=5, warmup_ticks=1, num_candidates=7, slate_size=3, embed_dims=4), 3, 0)
    for _ in range(5):
        core.step(core.slates_from_action(np.tile(np.arange(3), (3, 1))))
        core.next_page()
    obs, spec, u, w = core.observation(), core.spec, core.world.users, core.world
    user, cand = obs["user"], obs["candidates"]
    assert user.shape == (3, spec.user_dim) and cand.shape == (3, 7, spec.item_dim)
    np.testing.assert_allclose(user[:, spec.page], np.minimum(u.pages_in_session[:3] / w.config.max_pages, 1), atol=1e-6)
    np.testing.assert_allclose(user[:, spec.last_share], core.last_share, atol=1e-6)
    np.testing.assert_allclose(user[:, spec.sessions], np.minimum(np.log1p(u.sessions[:3]) / np.log(101), 1), atol=1e-6)
    np.testing.assert_allclose(user[:, spec.recent], np.clip(core.recent, -1, 1), atol=1e-6)
    top = np.log1p(max(w.watch_counts[: len(core.catalog)].max(), 1))
    np.testing.assert_allclose(cand[:, :, spec.popularity], np.log1p(w.watch_counts[core.candidates]) / top, atol=1e-6)
    np.testing.assert_allclose(cand[:, :, spec.content], core.static[core.candidates, : spec.embed_dims], atol=1e-6)
    np.testing.assert_allclose(cand[:, :, spec.quality], core.static[core.candidates, spec.embed_dims], atol=1e-6)
    again = core.observation()  # fresh arrays each call
    assert again["user"] is not user and np.array_equal(again["user"], user)
    assert np.abs(core.recent).sum() > 0  # what users watched shows up in the log


def test_candidate_draws_are_uniform_over_unseen_items():
    core = make_core(FeedConfig(n_background=1, warmup_ticks=0, num_candidates=10, slate_size=2), 1, 0)
    n_items = len(core.catalog)
    core.world.seen[0, :n_items] = True
    core.world.seen[0, :40] = False  # 40 unseen items: each drawn with probability 10/40
    counts = np.zeros(n_items)
    for _ in range(4000):
        core.draw_candidates()
        counts[core.candidates[0]] += 1
    assert counts[40:].sum() == 0
    p = counts[:40] / 4000
    assert np.abs(p - 0.25).max() < 0.04  # s.e. ~0.007


@pytest.mark.parametrize("every", [1, 4])
def test_background_ticks_every_n_steps_and_newcomers_replace_churned(every):
    cfg = FeedConfig(n_background=60, warmup_ticks=0, background_every=every, world=WorldConfig(churn_base=0.3))
    core = make_core(cfg, 2, 0)
    t0 = core.world.tick
    for _ in range(24 * every * 3):
        core.step(core.slates_from_action(np.zeros((2, core.k), np.int64)))
        core.next_page()
    assert core.world.tick - t0 == 24 * 3
    u = core.world.users
    # Heavy churn, yet the background keeps its size: newcomers arrive once a day.
    assert core.world.seen[2:].any(axis=1).sum() > 0
    newcomers = (u.first_session[2:] < 0) | (u.first_session[2:] >= 24)
    assert newcomers.sum() >= 10
    assert (~u.churned[2:]).sum() >= 25
