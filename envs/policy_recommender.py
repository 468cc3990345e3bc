"""``PolicyRecommender``: a policy trained on RecWorld/Feed-v0 serving slates inside any world."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recworld.arrays import add_counts
from recworld.envs.core import dedupe_slates, default_catalog
from recworld.envs.evaluate import load_policy
from recworld.envs.features import candidate_features, item_static_features, record_pages, user_features
from recworld.envs.kernels import draw_candidates
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
        self.recent = np.zeros((n_users, self.embed_dims), np.float32)
        self.last_share = np.zeros(n_users, np.float32)
        self.last_rating = np.full(n_users, 0.5, np.float32)
        self.sessions = np.zeros(n_users, np.int64)
        self.pages = np.zeros(n_users, np.int64)
        self.watch_counts = np.zeros(item_embeddings.shape[0], np.int64)
        # Candidate draws on the envs' compiled stream, seeded from the recommender's own generator.
        self.stream = np.array([rng.integers(0, 2**63, dtype=np.uint64)], np.uint64)
        self._set_static(item_embeddings)

    def _set_static(self, emb: np.ndarray) -> None:
        quality = np.zeros(emb.shape[0], np.float32)
        try:
            cat = default_catalog()
            m = min(emb.shape[0], len(cat))
            if m and np.allclose(cat.embeddings[:m], emb[:m], atol=1e-5):
                quality[:m] = cat.quality[:m]
        except Exception:  # noqa: BLE001 - quality is optional (no MovieLens data installed)
            pass
        self.static = item_static_features(emb, quality, self.embed_dims)

    def _grow(self, n_items: int, emb: np.ndarray) -> None:
        if n_items > self.static.shape[0]:
            old = self.static
            self._set_static(emb[:n_items])
            self.static[: old.shape[0]] = old
            self.watch_counts = np.concatenate([self.watch_counts, np.zeros(n_items - self.watch_counts.size, np.int64)])

    def recommend(self, users: np.ndarray, k: int, context: RecContext) -> np.ndarray:
        n_items = context.n_items
        self._grow(n_items, context.item_embeddings)
        if context.page == 0:
            self.sessions[users] += 1
        self.pages[users] = context.page
        uf = user_features(users, self.pages, self.max_pages, self.last_share, self.last_rating, self.sessions, self.recent)
        n = min(max(self.N, k), n_items)
        cand = np.empty((users.size, n), np.int64)
        draw_candidates(np.asarray(users, np.int64), self.stream, n_items, context.seen.bits, cand)
        it = candidate_features(cand, self.static[:n_items], self.watch_counts[:n_items])
        obs = {"user": uf, "candidates": it}
        if hasattr(self.policy, "scores"):
            order = np.argsort(-self.policy.scores(uf, it), axis=1, kind="stable")[:, :k]
        else:
            a = dedupe_slates(self.policy.act(obs), cand.shape[1])
            if a.shape[1] < k:  # fill extra positions with unused candidates
                used = np.zeros(cand.shape, bool)
                np.put_along_axis(used, a, True, axis=1)
                rest = np.argsort(used, axis=1, kind="stable")[:, : k - a.shape[1]]
                a = np.concatenate([a, rest], axis=1)
            order = a[:, :k]
        return np.take_along_axis(cand, order, axis=1).astype(np.int64)

    def observe(self, feedback: Feedback) -> None:
        users, slates = np.asarray(feedback.users, np.int64), np.ascontiguousarray(feedback.slates, np.int64)
        watched = np.ascontiguousarray(feedback.watched, bool)
        if slates.size and int(slates.max()) >= self.watch_counts.size:
            self.watch_counts = np.concatenate([self.watch_counts, np.zeros(int(slates.max()) + 1 - self.watch_counts.size, np.int64)])
        add_counts(self.watch_counts, slates[watched])
        # The same log the Feed envs keep (recworld/envs/features.py).
        record_pages(users, slates, watched, np.ascontiguousarray(feedback.ratings, np.float64), self.static, self.last_share, self.last_rating, self.recent)

    def ensure_items(self, n_items: int) -> None:
        """Nothing to grow eagerly: item features grow on the next recommend()."""


__all__ = ["PolicyRecommender"]
