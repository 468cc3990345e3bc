import pickle

import numpy as np
import pytest

from recworld.seen import SeenMatrix


def test_bits_answer_every_index_form_like_a_dense_matrix():
    rng = np.random.default_rng(0)
    n, cap = 13, 29  # a width that is not a multiple of 8
    dense = np.zeros((n, cap), bool)
    s = SeenMatrix(n, cap)
    u, it = rng.integers(0, n, 60), rng.integers(0, cap, 60)
    dense[u, it] = True
    s[u, it] = True
    s[3, 5] = True
    dense[3, 5] = True
    s[[1, 2], 7] = False
    dense[[1, 2], 7] = False
    s[4, :10] = True
    dense[4, :10] = True
    s[np.array([0, 6])] = False
    dense[[0, 6]] = False
    rows = np.array([4, 2, 2, 11])
    assert s.shape == dense.shape and len(s) == n
    assert np.array_equal(s.to_dense(), dense) and np.array_equal(s[rows], dense[rows])
    assert np.array_equal(s[rows, :20], dense[rows, :20]) and np.array_equal(s[4, :12], dense[4, :12])
    assert np.array_equal(s[rows, np.array([10, 3, 5, 0])], dense[rows, [10, 3, 5, 0]])
    assert all(s[i, j] == dense[i, j] for i in range(n) for j in range(cap))
    assert np.array_equal(s.bits, np.packbits(dense, axis=1))  # the np.packbits layout the kernels read
    assert np.array_equal(SeenMatrix.from_dense(dense).bits, s.bits)
    with pytest.raises(IndexError, match="29 columns"):
        s[0, np.array([29])] = True


def test_growing_keeps_rows_and_pickles_as_bits():
    s = SeenMatrix(3, 5)
    s[np.array([0, 2]), np.array([4, 1])] = True
    s.grow(21)
    assert s.shape == (3, 21) and s[0, 4] and s[2, 1] and not s.rows(slice(None))[:, 5:].any()
    s[1, 20] = True
    back = pickle.loads(pickle.dumps(s))
    assert np.array_equal(back.to_dense(), s.to_dense()) and back.bits.nbytes == 3 * 3


def test_world_checkpoints_keep_the_bits_and_old_checkpoints_still_load(make_world):
    w = make_world(n=20)
    w.run(6)
    assert w.seen.to_dense().any()
    back = pickle.loads(pickle.dumps(w))
    assert np.array_equal(back.seen.bits, w.seen.bits) and back.platform.seen is back.seen.bits
    # A checkpoint written before SeenMatrix held (np.packbits rows, shape): same layout, loaded as bits.
    state = w.__getstate__()
    state["seen"] = (np.packbits(w.seen.to_dense(), axis=1), w.seen.shape)
    old = type(w).__new__(type(w))
    old.__setstate__(state)
    assert isinstance(old.seen, SeenMatrix) and np.array_equal(old.seen.to_dense(), w.seen.to_dense())
