"""The random draws the user model takes as inputs, with named slices.

Every decision function takes its randomness as uniform variates in (0, 1)
laid out per row as below, so two callers that pass the same draws get the
same decisions: the numpy World draws them with its generator, the envs'
compiled path with its own stream, tests with whatever they need.
"""

from __future__ import annotations

import numpy as np


class PageDraws:
    """Layout of one page row's uniforms for a slate of ``k`` items (``4k + 2`` columns).

    Slices:
        item_gumbel: (k) the items' Gumbel noise in the choice.
        none_gumbel: (1) the no-click option's Gumbel noise.
        rating_noise: (k) logistic noise of each item's rating.
        rate_coin: (k) whether a watched item gets rated.
        frac_noise: (k) noise of the watched share of each item.
        leave_coin: (1) whether the user leaves after the page.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.item_gumbel = slice(0, k)
        self.none_gumbel = k
        self.rating_noise = slice(k + 1, 2 * k + 1)
        self.rate_coin = slice(2 * k + 1, 3 * k + 1)
        self.frac_noise = slice(3 * k + 1, 4 * k + 1)
        self.leave_coin = 4 * k + 1
        self.width = 4 * k + 2

    def draw(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        """(rows, width) fresh uniforms from ``rng``."""
        return uniforms(rng, (rows, self.width))


# Layout of a session end's uniforms: churn coin, then the away-time draw.
END_WIDTH = 2
END_CHURN = 0
END_GAP = 1


def uniforms(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniforms in the open interval (0, 1) (logs and logits of them stay finite)."""
    u = rng.random(shape)
    return np.maximum(u, 2.0**-53)


__all__ = ["END_CHURN", "END_GAP", "END_WIDTH", "PageDraws", "uniforms"]
