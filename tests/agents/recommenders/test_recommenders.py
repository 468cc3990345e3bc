"""Every recommender serves valid slates and learns from feedback during a run."""

import numpy as np
import pytest

from recworld.agents.recommenders import make_recommender, recommender_names, topk_unseen
from recworld.errors import ConfigError
from recworld.seen import SeenMatrix


@pytest.mark.parametrize("name", ["random", "popularity", "mf", "linucb", "itemknn"])
def test_slates_are_valid_and_unseen(make_world, name):
    w = make_world(n=30, recommender=name)
    w.seen[:, :1000] = True
    users = np.arange(30)
    s = w.recommender.recommend(users, 10, w.context())
    assert s.shape == (30, 10)
    assert all(len(set(r)) == 10 for r in s)
    assert (s >= 1000).all()


def test_topk_unseen_falls_back_to_seen_items_when_needed():
    scores = np.array([[3.0, 2.0, 1.0]])
    seen = np.array([[True, False, True]])
    assert topk_unseen(scores.copy(), seen, 2).tolist() == [[1, 0]]


def _watch_rate(c, ticks):
    ms = c.metrics[ticks]
    return sum(m.watches for m in ms) / max(1, sum(m.impressions for m in ms))


@pytest.mark.parametrize("name", ["popularity", "mf", "linucb", "itemknn"])
def test_learning_recommenders_beat_random(make_world, collect, name):
    rates = {}
    for rec in ("random", name):
        w = make_world(n=150, recommender=rec, seed=2)
        c = collect()
        w.subscribe(c)
        w.run(72)
        rates[rec] = _watch_rate(c, slice(None))
    assert rates[name] > rates["random"] * 1.5


@pytest.mark.parametrize("name", ["popularity", "mf", "linucb", "itemknn"])
def test_observe_changes_the_model(make_world, name):
    w = make_world(n=40, recommender=name)
    before = w.recommender.recommend(np.arange(40), 10, w.context()).copy()
    w.run(24)
    w.seen[:] = False
    after = w.recommender.recommend(np.arange(40), 10, w.context())
    assert (before != after).any()


def test_instruction_rerank_moves_slates_towards_the_instruction(make_world):
    w = make_world(n=5, recommender="linucb", params={"instruction_weight": 5.0})
    tag = w.catalog.tag_names.index("Horror")
    horror = w.catalog.tag_matrix[:, tag] > 0
    v = w.catalog.embeddings[horror].mean(0)
    w.instruction_embeddings[0] = v / np.linalg.norm(v)
    s = w.recommender.recommend(np.arange(5), 10, w.context())
    assert horror[s[0]].mean() > horror[s[1:]].mean() + 0.3


def test_registry_errors():
    assert {"random", "popularity", "mf", "linucb"} <= set(recommender_names())
    with pytest.raises(ConfigError, match="unknown recommender 'nope'"):
        make_recommender("nope")
    with pytest.raises(ConfigError, match="cannot import"):
        make_recommender("no.such.module:Thing")
    with pytest.raises(ConfigError, match="bad params"):
        make_recommender("mf", {"colour": "red"})


def _shared_order_reference(keys, seen, users, k):
    """First k unseen items along the full stable ranking, seen items last (the definition)."""
    order = np.argsort(keys, kind="stable")
    out = []
    for u in users:
        s = seen[u, order]
        out.append(np.concatenate([order[~s], order[s]])[:k])
    return np.array(out)


@pytest.mark.parametrize("deep", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_topk_shared_order_equals_the_full_stable_ranking(seed, deep):
    from recworld.agents.recommenders.base import topk_shared_order

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 2500))
    # deep: about the whole catalog, as conversational agents' candidate pools ask (the ranking is materialised in full).
    k = int(rng.integers(1, min(n, 12) + 1)) if not deep else n - int(rng.integers(0, min(n, 4)))
    # Integer keys tie a lot (the order among ties is by index); jittered keys do not.
    keys = -rng.integers(0, 4, n).astype(np.float64) if seed % 2 else -(rng.integers(0, 50, n) + 0.5 * rng.random(n))
    users = np.arange(60)
    # From fresh users to users who have seen (almost) everything, and ones who saw the top of the ranking.
    seen = rng.random((60, n + 7)) < rng.choice([0.0, 0.3, 0.9, 0.999, 1.0], size=(60, 1))
    seen[:10, np.argsort(keys, kind="stable")[: n // 2]] = True
    np.testing.assert_array_equal(topk_shared_order(keys, SeenMatrix.from_dense(seen), users, k), _shared_order_reference(keys, seen, users, k))


def test_itemknn_recommends_what_similar_users_watched_next():
    from recworld.agents.recommenders.itemknn import ItemKNNRecommender
    from recworld.events import EventBatch
    from recworld.protocols import Feedback, RecContext

    rec = ItemKNNRecommender(history=5, shrink=0.0, popularity_weight=0.0)
    n_items = 12
    rec.setup(4, np.zeros((n_items, 3), np.float32), np.random.default_rng(0))

    def watch(users, items, tick):
        slates = np.array([[i] for i in items])
        rec.observe(
            Feedback(
                tick, np.array(users), slates, np.ones((len(users), 1), bool), np.full((len(users), 1), np.nan), np.zeros(len(users), bool), EventBatch.empty()
            )
        )

    # Users 0 and 1 both watch 3 then 7; user 2 watches 3 then 5; user 3 watches 3 only.
    watch([0, 1, 2, 3], [3, 3, 3, 3], 0)
    watch([0, 1, 2], [7, 7, 5], 1)
    assert rec.co[3, 7] == rec.co[7, 3] == 2 and rec.co[3, 5] == 1 and rec.co[7, 5] == 0
    seen = np.zeros((4, n_items), bool)
    seen[3, 3] = True
    ctx = RecContext(tick=2, n_items=n_items, item_embeddings=np.zeros((n_items, 3)), seen=SeenMatrix.from_dense(seen), rng=np.random.default_rng(0))
    # For user 3: 7 (two co-watches with 3) ranks above 5 (one), the rest score 0.
    assert rec.recommend(np.array([3]), 2, ctx).tolist() == [[7, 5]]
    np.testing.assert_allclose(rec.scores(np.array([3]), n_items)[0, [7, 5]], [2 / np.sqrt(4 * 2), 1 / np.sqrt(4 * 1)], rtol=1e-6)


def _crowded_feedback(n_pages: int, hot_item: int, rng: np.random.Generator):
    from recworld.events import EventBatch
    from recworld.protocols import Feedback

    # Every page shows the same hot item first, as a popular item is shown in a tick of thousands of users.
    slates = np.column_stack([np.full(n_pages, hot_item), rng.integers(10, 400, size=(n_pages, 9))])
    watched = np.ones_like(slates, bool)
    ratings = np.full(slates.shape, 5.0)
    return Feedback(0, np.arange(n_pages), slates, watched, ratings, np.zeros(n_pages, bool), EventBatch.empty())


def test_mf_stays_finite_when_one_item_is_on_thousands_of_pages():
    rng = np.random.default_rng(0)
    rec = make_recommender("mf", {})
    rec.setup(3000, np.zeros((400, 8), np.float32), rng)
    for _ in range(20):
        rec.observe(_crowded_feedback(3000, 3, rng))
    assert np.isfinite(rec.P).all() and np.isfinite(rec.Q).all() and np.isfinite(rec.bias).all()
    # It still learns that the hot item is watched.
    assert rec.scores(np.arange(50), 400)[:, 3].mean() > 0.5


def test_mf_small_batches_are_plain_sgd():
    rng = np.random.default_rng(1)
    fb = _crowded_feedback(5, 3, rng)
    rec = make_recommender("mf", {})
    rec.setup(5, np.zeros((400, 8), np.float32), np.random.default_rng(2))
    p, q, b = rec.P.copy(), rec.Q.copy(), rec.bias.copy()
    rec.observe(fb)
    # The hot item's plain SGD step: the sum of its five pages' gradients at the learning rate.
    err = 1.25 - ((p[:5] * q[3]).sum(1) + b[3])
    expected = q[3] + rec.lr * ((err[:, None] * p[:5]).sum(0) - 5 * rec.reg * q[3])
    assert np.allclose(rec.Q[3], expected, atol=1e-6)
