import numpy as np
import pytest

from recworld.arrays import add_counts, dot_rows, smallest_rows


def test_add_counts_matches_add_at_and_rejects_out_of_range():
    idx = np.array([3, 1, 3, 3, 0])
    a, b = np.zeros(5, np.int64), np.zeros(5, np.int64)
    add_counts(a, idx)
    np.add.at(b, idx, 1)
    assert a.tolist() == b.tolist() == [1, 1, 0, 3, 0]
    f = np.full(4, 0.5)
    add_counts(f, np.array([[2, 2]]))
    assert f.tolist() == [0.5, 0.5, 2.5, 0.5]
    add_counts(f, np.array([], dtype=int))
    with pytest.raises(ValueError):
        add_counts(np.zeros(2), np.array([5]))


@pytest.mark.parametrize("m", [1, 7, 64, 65, 500])
def test_add_counts_small_and_large_batches_give_the_same_bits(m):
    # Fractional targets (decayed counts): each index's count is added in one step on both paths.
    rng = np.random.default_rng(m)
    target = rng.random(40) * 3.7
    idx = rng.integers(0, 40, m)
    expect = target + np.bincount(idx, minlength=40).astype(float)
    add_counts(target, idx)
    assert target.tobytes() == expect.tobytes()
    ints = np.zeros(40, np.int32)
    add_counts(ints, idx)
    assert ints.tolist() == np.bincount(idx, minlength=40).tolist()


def test_add_counts_rejects_negative_indices():
    with pytest.raises(ValueError):
        add_counts(np.zeros(3), np.array([1, -1]))


def test_smallest_rows_is_each_rows_sort_even_with_ties():
    rng = np.random.default_rng(4)
    for n in (3, 5, 31, 32, 1000):
        keys = rng.standard_normal((40, n)).astype(np.float32)
        keys[::3] = np.round(keys[::3], 1)  # every third row full of ties
        for k in (2, 3, 30):
            got = smallest_rows(keys, k)
            assert all(np.array_equal(got[r], np.argsort(keys[r])[:k]) for r in range(40))
            assert np.array_equal(smallest_rows(-keys, k, negate=True), got)
            if k == 30 and n > 31:  # the first 3 of 30 ranked are the 3 ranked alone
                assert np.array_equal(got[:, :3], smallest_rows(keys, 3))


def test_dot_rows_gives_a_row_the_same_bits_in_any_batch():
    """Scores summed in a fixed order: a user's row is the same alone or in a batch of any size (BLAS's can differ)."""
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((600, 16)).astype(np.float32)
    items_t = rng.standard_normal((16, 3000)).astype(np.float32)
    whole = dot_rows(vectors, items_t)
    assert np.allclose(whole, vectors @ items_t, atol=1e-4)
    for lo, hi in ((0, 1), (5, 12), (77, 589), (599, 600)):
        assert np.array_equal(dot_rows(vectors[lo:hi], items_t), whole[lo:hi])


def test_smallest_rows_of_one_row_is_the_sorts_first_k_even_with_ties():
    rng = np.random.default_rng(3)
    for n in (2, 5, 40, 1000):
        keys = rng.standard_normal(n).astype(np.float32)
        assert np.array_equal(smallest_rows(keys[None, :], 3)[0], np.argsort(keys)[:3])
        tied = np.round(keys, 1)  # many ties: the full sort's order must still come back
        assert np.array_equal(smallest_rows(tied[None, :], 3)[0], np.argsort(tied)[:3])
