import numpy as np

from recworld import metrics as M


def test_gini_extremes():
    assert M.gini(np.ones(10)) == 0.0
    assert M.gini(np.array([0, 0, 0, 10])) > 0.7
    assert M.gini(np.zeros(5)) == 0.0


def test_pairwise_diversity_identical_vs_orthogonal():
    emb = np.eye(4, dtype=np.float32)
    same = M.pairwise_diversity(np.vstack([emb[0], emb[0]]), np.array([[0, 1]]))
    orth = M.pairwise_diversity(emb, np.array([[0, 1, 2]]))
    assert same[0] == 0.0 and orth[0] == 1.0
    masked = M.pairwise_diversity(emb, np.array([[0, 1, 2]]), np.array([[True, False, False]]))
    assert np.isnan(masked[0])


def test_novelty_prefers_rare_items():
    pop = np.array([100, 1, 1, 1])
    assert M.novelty(np.array([1]), pop) > M.novelty(np.array([0]), pop)
    assert M.novelty(np.array([], dtype=int), pop) is None


def test_retention_table_and_curve():
    active = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1]], bool)
    first = np.array([0, 0, 1])
    rows = M.retention_table(active, first, 3)
    assert (0, 0, 2, 2) in rows and (0, 1, 2, 1) in rows and (1, 1, 1, 1) in rows
    curve = M.retention_curve(rows)
    assert curve[0] == 1.0 and abs(curve[1] - 2 / 3) < 1e-9


def test_mean_ci_student_t_interval():
    import math

    import pytest

    from recworld.metrics import mean_ci, t975

    assert t975(1) == 12.706 and t975(31) == t975(30) == 2.042 and t975(500) == 1.980  # conservative between entries
    m, lo, hi = mean_ci([0.2, 0.4, 0.3, 0.5])
    half = 3.182 * 0.12909944487358058 / math.sqrt(4)
    assert m == pytest.approx(0.35) and (lo, hi) == pytest.approx((0.35 - half, 0.35 + half))
    assert mean_ci([0.7]) == (0.7, 0.7, 0.7)
    with pytest.raises(ValueError):
        mean_ci([])


def _random_slates(seed: int, n_items: int, dim: int, rows: int, k: int, share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit float32 item vectors, random slates over them and a random mask (``share`` of the items set)."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n_items, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb, rng.integers(0, n_items, (rows, k)), rng.random((rows, k)) < share


def test_pairwise_diversity_is_the_mean_distance_over_pairs():
    """The one-pass form (|sum|^2 less the norms) equals the mean of 1 - cos over each slate's (masked) pairs."""
    emb, slates, mask = _random_slates(2, 50, 8, 30, 6, 0.5)
    mask[0] = False
    mask[1, 1:] = False  # one counted item: no pair
    for m in (None, mask):
        got = M.pairwise_diversity(emb, slates, m)
        for r in range(30):
            items = [slates[r, i] for i in range(6) if m is None or m[r, i]]
            pairs = [1 - float(emb[a] @ emb[b]) for x, a in enumerate(items) for y, b in enumerate(items) if x != y]
            assert (np.isnan(got[r]) and not pairs) or abs(got[r] - np.mean(pairs)) < 1e-5


def test_slate_diversity_gives_both_diversities_of_one_pass():
    """The world's one pass (whole slates and their watched items) gives exactly the two separate diversities."""
    emb, slates, watched = _random_slates(5, 40, 16, 25, 7, 0.4)
    shown, seen = M.slate_diversity(emb, slates, watched)
    assert shown.tobytes() == M.pairwise_diversity(emb, slates).tobytes()
    assert seen.tobytes() == M.pairwise_diversity(emb, slates, watched).tobytes()
    assert np.isnan(seen).any() and not np.isnan(shown).any()
    assert [a.size for a in M.slate_diversity(emb, slates[:0], watched[:0])] == [0, 0]
