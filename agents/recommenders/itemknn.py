"""Online item-based k-nearest-neighbours collaborative filtering (co-watch cosine)."""

from __future__ import annotations

import numpy as np

from recworld.agents.recommenders.base import Recommender, instruction_boost, topk_unseen
from recworld.protocols import Feedback, RecContext


class ItemKNNRecommender(Recommender):
    """Item-to-item collaborative filtering, learned online from watches.

    Two items are similar when the same users watch both: a watch of item j
    by a user adds one co-watch to j and each of the last ``history`` items
    that user watched. Similarity is the co-watch count over
    ``sqrt((n_i + shrink) (n_j + shrink))`` (cosine with shrinkage, where
    ``n`` counts watches). A user's score for an item sums its similarity to
    the user's recent watches, newest weighted most (``decay`` per step back);
    ``popularity_weight`` times the normalised log watch count (with random
    tie-breaking ``jitter`` in watches, as the popularity recommender has)
    serves users with no history yet and explores while items have no watches.

    Args:
        history: recent watches per user that act as neighbours.
        shrink: shrinkage of the cosine (dampens items with few watches).
        decay: weight of each older history item relative to the next newer one.
        popularity_weight: weight of normalised log popularity in the score.
        jitter: random tie-breaking noise of the popularity prior (in watches).
        instruction_weight: weight of re-ranking by reflective instructions.
    """

    name = "itemknn"

    def __init__(
        self, history: int = 20, shrink: float = 10.0, decay: float = 0.9, popularity_weight: float = 0.05, jitter: float = 0.5, instruction_weight: float = 0.0
    ) -> None:
        self.history = int(history)
        self.shrink = float(shrink)
        self.decay = float(decay)
        self.popularity_weight = float(popularity_weight)
        self.jitter = float(jitter)
        self.instruction_weight = float(instruction_weight)

    def setup(self, n_users: int, item_embeddings: np.ndarray, rng: np.random.Generator) -> None:
        super().setup(n_users, item_embeddings, rng)
        n = item_embeddings.shape[0]
        self.co = np.zeros((n, n), np.float32)
        self.counts = np.zeros(n, np.float32)
        self.hist = np.full((n_users, self.history), -1, np.int64)  # ring buffer of recent watches
        self.pos = np.zeros(n_users, np.int64)

    def ensure_items(self, n_items: int) -> None:
        n = self.counts.size
        if n_items > n:
            # Grow by half at least: user posts add items one by one.
            cap = max(n_items, n + n // 2)
            co = np.zeros((cap, cap), np.float32)
            co[:n, :n] = self.co
            self.co = co
            self.counts = np.concatenate([self.counts, np.zeros(cap - n, np.float32)])

    def scores(self, users: np.ndarray, n_items: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """(B, n_items): similarity to each user's recent watches, plus the popularity prior (jittered with ``rng``)."""
        self.ensure_items(n_items)
        hist = self.hist[users]
        valid = hist >= 0
        # Age of each history slot (0 = newest) from the ring position.
        age = (self.pos[users, None] - 1 - np.arange(self.history)[None, :]) % self.history
        norm = lambda c: 1.0 / np.sqrt(np.maximum(c + self.shrink, 1e-12))  # noqa: E731
        w = np.where(valid, self.decay**age * norm(self.counts[np.maximum(hist, 0)]), 0.0).astype(np.float32)
        out = np.empty((users.size, n_items), np.float32)
        rows = np.maximum(hist, 0)
        for a in range(0, users.size, 64):  # bounded memory: 64 users x history x items at a time
            b = a + 64
            out[a:b] = np.einsum("bh,bhn->bn", w[a:b], self.co[rows[a:b], :n_items])
        out *= norm(self.counts[:n_items])
        c = self.counts[:n_items]
        if rng is not None and self.jitter > 0:
            c = c + self.jitter * rng.random(n_items, dtype=np.float32)
        out += self.popularity_weight * np.log1p(c) / np.log1p(max(float(self.counts.max()) + self.jitter, 1.0))
        return out

    def recommend(self, users: np.ndarray, k: int, context: RecContext) -> np.ndarray:
        s = self.scores(users, context.n_items, context.rng)
        instruction_boost(s, users, context, self.instruction_weight, 1.0)
        return topk_unseen(s, context.seen[users], k)

    def observe(self, feedback: Feedback) -> None:
        watched = np.asarray(feedback.watched, bool)
        if not watched.any():
            return
        k = feedback.slates.shape[1]
        users = np.repeat(feedback.users, k)[watched.ravel()]
        items = feedback.slates[watched]
        self.ensure_items(int(items.max()) + 1)
        # Co-watches with each user's history before this page (both directions).
        h = self.hist[users]
        ok = h >= 0
        a = h[ok]
        b = np.repeat(items, self.history)[ok.ravel()]
        n = self.co.shape[0]
        np.add.at(self.co.reshape(-1), a * n + b, 1.0)
        np.add.at(self.co.reshape(-1), b * n + a, 1.0)
        np.add.at(self.counts, items, 1.0)
        # Then the page's watches join the history, in slate order.
        for j in range(k):
            col = watched[:, j]
            if col.any():
                u = feedback.users[col]
                self.hist[u, self.pos[u] % self.history] = feedback.slates[col, j]
                self.pos[u] += 1
