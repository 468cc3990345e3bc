"""Small array helpers shared by the world, recommenders and environments."""

from __future__ import annotations

import numpy as np


def add_counts(target: np.ndarray, idx: np.ndarray) -> None:
    """``target[i] += 1`` for every occurrence of ``i`` in ``idx`` (repeats counted).

    Same result as ``np.add.at(target, idx, 1)``, several times faster on the
    page-sized batches of the hot path.
    """
    if idx.size:
        # An index past the end makes the shapes differ and raises, as np.add.at would.
        target += np.bincount(np.ravel(idx), minlength=target.shape[0]).astype(target.dtype, copy=False)
