"""Non-personalised baselines: random and (online) popularity."""

from __future__ import annotations

import numpy as np

from recworld.agents.recommenders.base import Recommender, topk_shared_order, topk_unseen
from recworld.arrays import add_counts
from recworld.protocols import Feedback, RecContext


class RandomRecommender(Recommender):
    """Uniformly random unseen items: pure exploration."""

    name = "random"

    def recommend(self, users: np.ndarray, k: int, context: RecContext) -> np.ndarray:
        scores = context.rng.random((users.size, context.n_items), dtype=np.float32)
        return topk_unseen(scores, context.seen[users], k)


class PopularityRecommender(Recommender):
    """The most-watched unseen items so far (learned online from feedback).

    Args:
        decay: per-tick decay of counts (1.0 = all-time popularity).
        jitter: random tie-breaking noise (in watches).
    """

    name = "popularity"

    def __init__(self, decay: float = 1.0, jitter: float = 0.5) -> None:
        self.decay = decay
        self.jitter = jitter
        self.counts = np.zeros(0)
        self._tick = 0

    def setup(self, n_users: int, item_embeddings: np.ndarray, rng: np.random.Generator) -> None:
        super().setup(n_users, item_embeddings, rng)
        self.counts = np.zeros(item_embeddings.shape[0])

    def ensure_items(self, n_items: int) -> None:
        if n_items > self.counts.size:
            self.counts = np.concatenate([self.counts, np.zeros(n_items - self.counts.size)])

    def recommend(self, users: np.ndarray, k: int, context: RecContext) -> np.ndarray:
        self.ensure_items(context.n_items)
        base = self.counts[: context.n_items] + self.jitter * context.rng.random(context.n_items)
        return topk_shared_order(-base, context.seen, users, k)

    def observe(self, feedback: Feedback) -> None:
        if feedback.tick != self._tick and self.decay < 1.0:
            self.counts *= self.decay ** (feedback.tick - self._tick)
        self._tick = feedback.tick
        items = feedback.slates[feedback.watched]
        self.ensure_items(int(items.max()) + 1 if items.size else 0)
        add_counts(self.counts, items)
