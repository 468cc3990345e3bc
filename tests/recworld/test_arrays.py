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
