"""Online matrix factorisation learned by SGD from the world's watch/skip/rating feedback."""

from __future__ import annotations

import numpy as np

from recworld.agents.recommenders.base import Recommender, instruction_boost, scatter_add_rows, topk_unseen
from recworld.protocols import Feedback, RecContext


def feedback_reward(watched: np.ndarray, ratings: np.ndarray) -> np.ndarray:
    """Implicit target per shown item: 1 for a watch (+/- a little by rating), 0 for a skip."""
    bonus = np.where(np.isnan(ratings), 0.0, (ratings - 3.0) / 8.0)
    return np.where(watched, 1.0 + bonus, 0.0)


class MFRecommender(Recommender):
    """Implicit-feedback matrix factorisation, updated online after every page.

    Score = user factors · item factors + item bias; served greedily (with an
    optional epsilon of random items), which is what creates the feedback loop
    studied in the ``filter_bubble`` scenario.

    Args:
        factors: latent dimensions.
        lr: SGD learning rate.
        reg: L2 regularisation.
        epsilon: share of slate positions filled with random unseen items.
        instruction_weight: weight of re-ranking by reflective instructions.
    """

    name = "mf"
    pretrain_epochs = 10

    def __init__(
        self,
        factors: int = 32,
        lr: float = 0.05,
        reg: float = 0.01,
        epsilon: float = 0.0,
        instruction_weight: float = 0.0,
        init_scale: float = 0.1,
    ) -> None:
        self.factors = factors
        self.lr = lr
        self.reg = reg
        self.epsilon = epsilon
        self.instruction_weight = instruction_weight
        self.init_scale = init_scale

    def setup(self, n_users: int, item_embeddings: np.ndarray, rng: np.random.Generator) -> None:
        super().setup(n_users, item_embeddings, rng)
        self._rng = rng
        self.P = (self.init_scale * rng.standard_normal((n_users, self.factors))).astype(np.float32)
        self.Q = (self.init_scale * rng.standard_normal((item_embeddings.shape[0], self.factors))).astype(np.float32)
        self.bias = np.zeros(item_embeddings.shape[0], np.float32)

    def ensure_items(self, n_items: int) -> None:
        extra = n_items - self.Q.shape[0]
        if extra > 0:
            self.Q = np.vstack([self.Q, (self.init_scale * self._rng.standard_normal((extra, self.factors))).astype(np.float32)])
            self.bias = np.concatenate([self.bias, np.zeros(extra, np.float32)])

    def scores(self, users: np.ndarray, n_items: int) -> np.ndarray:
        """(B, n_items) predicted engagement."""
        self.ensure_items(n_items)
        return self.P[users] @ self.Q[:n_items].T + self.bias[:n_items]

    def recommend(self, users: np.ndarray, k: int, context: RecContext) -> np.ndarray:
        s = self.scores(users, context.n_items)
        instruction_boost(s, users, context, self.instruction_weight, 1.0)
        if self.epsilon > 0:
            explore = context.rng.random(s.shape, dtype=np.float32) < self.epsilon * k / max(context.n_items, 1)
            s = np.where(explore, s + 1e3, s)
        return topk_unseen(s, context.seen[users], k)

    def observe(self, feedback: Feedback) -> None:
        users = np.repeat(feedback.users, feedback.slates.shape[1])
        items = feedback.slates.ravel()
        self.ensure_items(int(items.max()) + 1 if items.size else 0)
        y = feedback_reward(feedback.watched, feedback.ratings).ravel().astype(np.float32)
        p = self.P[users]
        q = self.Q[items]
        err = y - ((p * q).sum(1) + self.bias[items])
        lr, reg = self.lr, self.reg
        gp = err[:, None] * q - reg * p
        gq = err[:, None] * p - reg * q
        k = feedback.slates.shape[1]
        # Each user appears once per page: sum their k item gradients directly.
        self.P[feedback.users] += lr * gp.reshape(-1, k, self.factors).sum(axis=1)
        # An item shown on many pages of one batch sums many gradients; its
        # step is normalised as in normalised LMS (lr * sum of |(p, 1)|^2 <= 1
        # over its pages), or a popular item seen by thousands of users in a
        # tick diverges to NaN. Batches where no item reaches that keep plain SGD.
        load = np.bincount(items, weights=(p * p).sum(1) + 1.0, minlength=self.bias.size)
        item_lr = (lr / np.maximum(1.0, lr * load)).astype(np.float32)
        scatter_add_rows(self.Q, items, item_lr[items, None] * gq)
        self.bias += item_lr * np.bincount(items, weights=err - reg * self.bias[items], minlength=self.bias.size).astype(np.float32)
