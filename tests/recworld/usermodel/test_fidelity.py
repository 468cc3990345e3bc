"""The arithmetic of the fidelity protocols, against hand-computed values."""

import numpy as np
import pytest

from recworld.usermodel import fidelity as F


def test_decision_metrics_by_hand():
    d = np.array([1, 1, 0, 0, 1, 0])
    y = np.array([1, 0, 1, 0, 1, 0])
    m = F.decision_metrics(d, y)
    # tp=2, fp=1, fn=1, tn=2
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert F.decision_metrics(np.zeros(4), np.array([1, 0, 1, 0]))["f1"] == 0.0


def test_auc_counts_pairs_and_ties():
    assert F.auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0])) == 1.0
    assert F.auc(np.array([0.1, 0.2, 0.9, 0.8]), np.array([1, 1, 0, 0])) == 0.0
    # One positive (0.5) against negatives 0.5 (tie: half) and 0.1 (win): (0.5 + 1) / 2.
    assert F.auc(np.array([0.5, 0.5, 0.1]), np.array([1, 0, 0])) == pytest.approx(0.75)
    rng = np.random.default_rng(0)
    s, y = rng.random(200), rng.random(200) < 0.3
    brute = np.mean([(a > b) + 0.5 * (a == b) for a in s[y] for b in s[~y]])
    assert F.auc(s, y) == pytest.approx(brute)
    assert np.isnan(F.auc(np.ones(3), np.ones(3)))


def test_protocol_sets_keep_the_ratio_and_never_show_interacted_negatives():
    rng = np.random.default_rng(0)
    held = [np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), np.array([20, 21]), np.array([], np.int64)]
    inter = [np.arange(0, 30), np.array([20, 21, 22, 23]), np.array([5])]
    for m in (1, 3, 9):
        ps = F.protocol_set(held, inter, 100, m, rng)
        for u in (0, 1):
            mine = ps.users == u
            pos, neg = ps.items[mine & (ps.labels == 1)], ps.items[mine & (ps.labels == 0)]
            assert neg.size == m * pos.size
            assert pos.size == min(20 // (1 + m), held[u].size)
            assert np.isin(pos, held[u]).all() and not np.isin(neg, inter[u]).any()
            assert len(set(neg.tolist())) == neg.size
        assert not (ps.users == 2).any()  # nothing held out: not in the protocol


def test_holdout_split_holds_out_a_share_of_each_user():
    users = np.repeat(np.arange(5), [10, 20, 5, 1, 40])
    mask = F.holdout_split(users, 0.2, np.random.default_rng(1))
    assert np.bincount(users[mask], minlength=5).tolist() == [2, 4, 1, 0, 8]


def test_ratings_histograms_and_shapes():
    assert F.rating_errors(np.array([3.0, 4.0]), np.array([4.0, 4.0])) == {"rmse": pytest.approx(np.sqrt(0.5)), "mae": pytest.approx(0.5)}
    h = F.histogram(np.array([1, 1, 2, 5]))
    np.testing.assert_allclose(h, [0.5, 0.25, 0, 0, 0.25])
    assert F.tv_distance(h, np.array([0.25, 0.25, 0, 0, 0.5])) == pytest.approx(0.25)
    assert F.top_share(np.array([50, 10, 10, 10, 10, 5, 5, 0, 0, 0])) == pytest.approx(0.5)
    assert F.ks_distance(np.array([1, 2, 3]), np.array([1, 2, 3])) == 0.0
    assert F.ks_distance(np.array([1, 1]), np.array([5, 5])) == 1.0


def test_rank_correlations():
    a = np.array([0.1, 0.4, 0.3, 0.9, 0.5])
    assert F.spearman(a, a * 3 + 1) == pytest.approx(1.0)
    assert F.kendall(a, -a) == pytest.approx(-1.0)
    # One adjacent swap among 5: rho = 1 - 6 * 2 / (5 * 24) = 0.9, tau = (9 - 1) / 10 = 0.8.
    b = np.array([1, 2, 3, 4, 5])
    c = np.array([1, 2, 3, 5, 4])
    assert F.spearman(b, c) == pytest.approx(0.9)
    assert F.kendall(b, c) == pytest.approx(0.8)


def test_recall_and_ndcg_at_k():
    ranked = np.array([[5, 1, 7, 2], [9, 8, 3, 4]])
    held = [np.array([1, 2]), np.array([0])]
    r, n = F.recall_ndcg_at_k(ranked, held, k=2)
    # user 0: 1 hit of 2 at rank 2 -> recall 0.5, ndcg (1/log2 3) / (1 + 1/log2 3); user 1: 0.
    assert r == pytest.approx(0.25)
    assert n == pytest.approx(0.5 * (1 / np.log2(3)) / (1 + 1 / np.log2(3)))
