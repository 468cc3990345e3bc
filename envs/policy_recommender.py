"""``PolicyRecommender``: a policy trained on RecWorld/Feed-v0 serving slates inside any world."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recworld.arrays import add_counts
from recworld.envs.core import candidate_features, default_catalog, sample_unseen, user_features
from recworld.envs.evaluate import load_policy
from recworld.protocols import Feedback, RecContext


class PolicyRecommender:
    """Serves the slates a trained policy picks, rebuilding Feed-v0 observations from what it logs.

    Per page and user it draws ``num_candidates`` unseen candidates (with the
    recommender's own generator), builds the Feed-v0 features — recent-consumption
    embedding (the same EMA the world keeps), last-page watch share and rating,
    page number, sessions — and item features (embedding, popularity counted
    from the feedback it observes, prior quality), then shows the policy's
    top-``k`` candidates. Prior quality comes from the default MovieLens catalog
    when the world's items are those items, else 0.

    Args:
        path: a saved policy (slate-PG file or SB3 PPO zip), see ``recworld train``.
        num_candidates: candidates per page (default: what the policy was trained with, else 10).
        max_pages: the world's ``max_pages`` (for the page feature).
    """

    name = "policy"

    def __init__(self, path: str | Path, num_candidates: int | None = None, max_pages: int = 8) -> None:
        self.path = Path(path)
        self.policy = load_policy(self.path)
        spec = getattr(self.policy, "spec", None)
        self.N = int(num_candidates or (spec.num_candidates if spec else 10))
        self.embed_dims = int(spec.embed_dims) if spec else 8
        self.max_pages = max_pages

    def setup(self, n_users: int, item_embeddings: np.ndarray, rng: np.random.Generator) -> None:
        self.dim = item_embeddings.shape[1]
        self._embeddings = item_embeddings
        self.recent = np.zeros((n_users, self.dim), np.float32)
        self.last_share = np.zeros(n_users, np.float32)
        self.last_rating = np.full(n_users, 0.5, np.float32)
        self.sessions = np.zeros(n_users, np.int64)
        self.watch_counts = np.zeros(item_embeddings.shape[0], np.int64)
        self._set_static(item_embeddings)

    def _set_static(self, emb: np.ndarray) -> None:
        n, e = emb.shape[0], self.embed_dims
        d = min(e, emb.shape[1])
        st = np.zeros((n, e + 1), np.float32)
        st[:, :d] = np.clip(emb[:, :d] * np.sqrt(emb.shape[1] / d), -1, 1)
        try:
            cat = default_catalog()
            m = min(n, len(cat))
            if m and np.allclose(cat.embeddings[:m], emb[:m], atol=1e-5):
                st[:m, e] = np.clip(cat.quality[:m] / 2.0, -1, 1)
        except Exception:  # noqa: BLE001 - quality is optional (no MovieLens data installed)
            pass
        self.static = st

    def _grow(self, n_items: int, emb: np.ndarray) -> None:
        if n_items > self.static.shape[0]:
            old = self.static
            self._set_static(emb[:n_items])
            self.static[: old.shape[0]] = old
            self.watch_counts = np.concatenate([self.watch_counts, np.zeros(n_items - self.watch_counts.size, np.int64)])

    def recommend(self, users: np.ndarray, k: int, context: RecContext) -> np.ndarray:
        n_items = context.n_items
        self._embeddings = context.item_embeddings
        self._grow(n_items, context.item_embeddings)
        if context.page == 0:
            self.sessions[users] += 1
        pages = np.full(users.size, context.page)
        uf = user_features(
            self.recent[users], pages, self.max_pages, self.last_share[users], self.last_rating[users], self.sessions[users], self.embed_dims, self.dim
        )
        n = max(self.N, k)
        cand = sample_unseen(context.rng, context.seen[users], n_items, min(n, n_items))
        it = candidate_features(self.static[:n_items], self.watch_counts[:n_items], cand)
        obs = {"user": uf, "candidates": it}
        if hasattr(self.policy, "scores"):
            order = np.argsort(-self.policy.scores(uf, it), axis=1, kind="stable")[:, :k]
        else:
            from recworld.envs.core import dedupe_slates

            a = dedupe_slates(self.policy.act(obs), cand.shape[1])
            if a.shape[1] < k:  # fill extra positions with unused candidates
                used = np.zeros(cand.shape, bool)
                np.put_along_axis(used, a, True, axis=1)
                rest = np.argsort(used, axis=1, kind="stable")[:, : k - a.shape[1]]
                a = np.concatenate([a, rest], axis=1)
            order = a[:, :k]
        return np.take_along_axis(cand, order, axis=1).astype(np.int64)

    def observe(self, feedback: Feedback) -> None:
        users, slates, watched = feedback.users, feedback.slates, np.asarray(feedback.watched, bool)
        k = slates.shape[1]
        n_w = watched.sum(axis=1)
        if slates.size and int(slates.max()) >= self.watch_counts.size:
            self.watch_counts = np.concatenate([self.watch_counts, np.zeros(int(slates.max()) + 1 - self.watch_counts.size, np.int64)])
        add_counts(self.watch_counts, slates[watched])
        self.last_share[users] = n_w / k
        r = np.asarray(feedback.ratings, np.float64)
        rated = watched & ~np.isnan(r)
        rs = np.where(rated, (np.nan_to_num(r, nan=3.0) - 1.0) / 4.0, 0.0).sum(axis=1)
        self.last_rating[users] = np.where(rated.any(axis=1), rs / np.maximum(rated.sum(axis=1), 1), 0.5)
        has = n_w > 0
        if has.any():
            emb = self._embeddings
            wmean = np.einsum("bk,bkd->bd", watched[has].astype(np.float32), emb[slates[has]]) / n_w[has, None]
            self.recent[users[has]] = 0.6 * self.recent[users[has]] + 0.4 * wmean

    def ensure_items(self, n_items: int) -> None:
        """Nothing to grow eagerly: item features grow on the next recommend()."""


__all__ = ["PolicyRecommender"]
