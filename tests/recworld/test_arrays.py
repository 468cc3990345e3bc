import numpy as np
import pytest

from recworld.arrays import add_counts


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
