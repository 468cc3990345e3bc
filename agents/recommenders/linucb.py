"""LinUCB contextual bandit over item content features, one linear model per user with a shared prior."""

from __future__ import annotations

import numpy as np

from recworld.agents.recommenders.base import SEEN_PENALTY, Recommender, instruction_boost, topk_unseen
from recworld.agents.recommenders.mf import feedback_reward
from recworld.protocols import Feedback, RecContext


class LinUCBRecommender(Recommender):
    """Disjoint-user LinUCB (Li et al., 2010) with a global prior mean.

    Arms are items described by the first ``dims`` principal components of
    their text embedding plus a bias. Each user has a posterior
    ``N(theta_u, A_u^-1)`` whose prior mean is a global ridge model, so new
    users start from what works for everybody and explore by the UCB bonus.
    Scoring: mean for every item, then the UCB bonus for the best
    ``candidates`` (the bonus is the expensive part).

    Args:
        alpha: width of the confidence bonus.
        dims: content feature dimensions used.
        ridge: prior precision (lambda).
        candidates: items re-scored with the bonus per user.
        instruction_weight: weight of re-ranking by reflective instructions.
    """

    name = "linucb"

    def __init__(self, alpha: float = 0.6, dims: int = 16, ridge: float = 1.0, candidates: int = 100, instruction_weight: float = 0.0) -> None:
        self.alpha = alpha
        self.dims = dims
        self.ridge = ridge
        self.candidates = candidates
        self.instruction_weight = instruction_weight

    def _features(self, emb: np.ndarray) -> np.ndarray:
        d = min(self.dims, emb.shape[1])
        x = emb[:, :d] * np.sqrt(emb.shape[1] / d)  # keep the scale of full vectors
        return np.hstack([x, np.ones((emb.shape[0], 1), np.float32)]).astype(np.float32)

    def setup(self, n_users: int, item_embeddings: np.ndarray, rng: np.random.Generator) -> None:
        super().setup(n_users, item_embeddings, rng)
        self.X = self._features(item_embeddings)
        d = self.X.shape[1]
        self.Ainv = np.tile(np.eye(d, dtype=np.float32) / self.ridge, (n_users, 1, 1))
        self.b = np.zeros((n_users, d), np.float32)
        self.Ag = np.eye(d) * self.ridge
        self.bg = np.zeros(d)
        self.theta_g = np.zeros(d, np.float32)

    def ensure_items(self, n_items: int, item_embeddings: np.ndarray | None = None) -> None:
        if item_embeddings is not None and n_items > self.X.shape[0]:
            self.X = self._features(item_embeddings[:n_items])

    def theta(self, users: np.ndarray) -> np.ndarray:
        """Posterior mean per user: A_u^-1 (b_u + lambda * theta_global)."""
        return np.einsum("bij,bj->bi", self.Ainv[users], self.b[users] + self.ridge * self.theta_g)

    def recommend(self, users: np.ndarray, k: int, context: RecContext) -> np.ndarray:
        self.ensure_items(context.n_items, context.item_embeddings)
        X = self.X[: context.n_items]
        th = self.theta(users)
        mean = th @ X.T  # (B, N)
        instruction_boost(mean, users, context, self.instruction_weight, 1.0)
        seen = context.seen[users]
        c = min(max(self.candidates, k), context.n_items)
        mean_adj = mean - SEEN_PENALTY * seen[:, : context.n_items]
        cand = np.argpartition(-mean_adj, c - 1, axis=1)[:, :c]
        xc = X[cand]  # (B, c, d)
        bonus = np.sqrt(np.maximum(np.einsum("bcd,bde,bce->bc", xc, self.Ainv[users], xc), 0.0))
        ucb = np.take_along_axis(mean_adj, cand, axis=1) + self.alpha * bonus
        top = topk_unseen(ucb, np.zeros_like(ucb, dtype=bool), k)
        return np.take_along_axis(cand, top, axis=1).astype(np.int64)

    def observe(self, feedback: Feedback) -> None:
        users = feedback.users
        r = feedback_reward(feedback.watched, feedback.ratings).astype(np.float32)
        self.ensure_items(int(feedback.slates.max()) + 1)
        for j in range(feedback.slates.shape[1]):
            x = self.X[feedback.slates[:, j]]  # (B, d)
            Ai = self.Ainv[users]
            Ax = np.einsum("bij,bj->bi", Ai, x)
            denom = 1.0 + (x * Ax).sum(1)
            # Sherman-Morrison: (A + x x^T)^-1 = A^-1 - (A^-1 x)(A^-1 x)^T / (1 + x^T A^-1 x)
            self.Ainv[users] = Ai - Ax[:, :, None] * Ax[:, None, :] / denom[:, None, None]
            self.b[users] += r[:, j, None] * x
            self.Ag += x.T.astype(np.float64) @ x
            self.bg += x.T.astype(np.float64) @ r[:, j]
        self.theta_g = np.linalg.solve(self.Ag, self.bg).astype(np.float32)
