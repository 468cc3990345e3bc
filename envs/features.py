"""What a recommender observes about users and candidates: one spec, one implementation.

The Feed and Platform envs build their observations with these functions, and
:class:`~recworld.envs.policy_recommender.PolicyRecommender` rebuilds the very
same features from what it logs when it serves a trained policy inside a
scenario. Everything here is the platform's view (what it showed, what was
watched, content features), never the user model's hidden state.
"""

from __future__ import annotations

import math

import numpy as np

from recworld.jit import njit

USER_SCALARS = ("page_in_session", "last_watch_share", "last_rating", "sessions")
N_USER_SCALARS = len(USER_SCALARS)
_LOG101 = math.log(101.0)
# Weight of the newest page in the recent-consumption average.
RECENT_RATE = 0.4


class ObsSpec:
    """The layout of the observation vectors, with named slices.

    User vector (``user_dim``): ``page`` (page in the session / max pages),
    ``last_share`` (share of the last page watched), ``last_rating`` (mean
    normalised rating of the last page, 0.5 if none), ``sessions`` (log-scaled
    sessions so far), ``recent`` (``embed_dims``: moving average of the content
    features of watched items).

    Candidate vector (``item_dim``): ``content`` (``embed_dims`` leading
    principal components of the item's text embedding), ``popularity``
    (log watch count / log max count), ``quality`` (prior quality / 2).
    """

    def __init__(self, embed_dims: int) -> None:
        e = int(embed_dims)
        self.embed_dims = e
        self.page, self.last_share, self.last_rating, self.sessions = 0, 1, 2, 3
        self.recent = slice(N_USER_SCALARS, N_USER_SCALARS + e)
        self.user_dim = N_USER_SCALARS + e
        self.content = slice(0, e)
        self.popularity = e
        self.quality = e + 1
        self.item_dim = e + 2


def user_dim(embed_dims: int) -> int:
    """Length of the user feature vector."""
    return ObsSpec(embed_dims).user_dim


def item_dim(embed_dims: int) -> int:
    """Length of one candidate's feature vector."""
    return ObsSpec(embed_dims).item_dim


def item_static_features(embeddings: np.ndarray, quality: np.ndarray, embed_dims: int) -> np.ndarray:
    """(n_items, embed_dims + 1): the items' content features (scaled leading dims of their text embeddings) and quality, in [-1, 1]."""
    dim = embeddings.shape[1]
    d = min(embed_dims, dim)
    out = np.zeros((embeddings.shape[0], embed_dims + 1), np.float32)
    out[:, :d] = np.clip(embeddings[:, :d] * np.sqrt(dim / d), -1, 1)
    out[:, embed_dims] = np.clip(np.asarray(quality) / 2.0, -1, 1)
    return out


@njit(cache=True)
def write_user_features(rows, pages, max_pages, last_share, last_rating, sessions, recent, out) -> None:
    """Fill ``out`` (B, user_dim) for users ``rows`` (indices into the per-user arrays)."""
    e = recent.shape[1]
    for b in range(rows.shape[0]):
        i = rows[b]
        out[b, 0] = min(pages[i] / max(max_pages, 1), 1.0)
        out[b, 1] = last_share[i]
        out[b, 2] = last_rating[i]
        out[b, 3] = min(math.log1p(sessions[i]) / _LOG101, 1.0)
        for t in range(e):
            out[b, N_USER_SCALARS + t] = min(max(recent[i, t], -1.0), 1.0)


@njit(cache=True)
def write_candidate_features(candidates, static, watch_counts, n_items, out) -> None:
    """Fill ``out`` (B, N, item_dim) for candidate items ``candidates`` (B, N)."""
    e = static.shape[1] - 1
    top = 1
    for j in range(n_items):
        if watch_counts[j] > top:
            top = watch_counts[j]
    log_top = math.log1p(top)
    for b in range(candidates.shape[0]):
        for j in range(candidates.shape[1]):
            it = candidates[b, j]
            for t in range(e):
                out[b, j, t] = static[it, t]
            out[b, j, e] = math.log1p(watch_counts[it]) / log_top
            out[b, j, e + 1] = static[it, e]


@njit(cache=True)
def record_pages(rows, slates, watched, ratings, static, last_share, last_rating, recent) -> None:
    """Update the logged per-user features after a page: last share and rating, recent consumption."""
    k = slates.shape[1]
    e = recent.shape[1]
    for b in range(rows.shape[0]):
        i = rows[b]
        n_w = 0
        n_r = 0
        r_sum = 0.0
        for j in range(k):
            if watched[b, j]:
                n_w += 1
                if not math.isnan(ratings[b, j]):
                    n_r += 1
                    r_sum += (ratings[b, j] - 1.0) / 4.0
        last_share[i] = n_w / k
        last_rating[i] = r_sum / n_r if n_r > 0 else 0.5
        if n_w > 0:
            for t in range(e):
                m = 0.0
                for j in range(k):
                    if watched[b, j]:
                        m += static[slates[b, j], t]
                recent[i, t] = (1.0 - RECENT_RATE) * recent[i, t] + RECENT_RATE * (m / n_w)


def user_features(
    rows: np.ndarray, pages: np.ndarray, max_pages: int, last_share: np.ndarray, last_rating: np.ndarray, sessions: np.ndarray, recent: np.ndarray
) -> np.ndarray:
    """(B, user_dim) features of users ``rows`` from the per-user logged arrays."""
    out = np.empty((len(rows), N_USER_SCALARS + recent.shape[1]), np.float32)
    write_user_features(np.asarray(rows, np.int64), pages, int(max_pages), last_share, last_rating, sessions, recent, out)
    return out


def candidate_features(candidates: np.ndarray, static: np.ndarray, watch_counts: np.ndarray) -> np.ndarray:
    """(B, N, item_dim) features of candidate items ``candidates`` (B, N)."""
    cand = np.ascontiguousarray(candidates, np.int64)
    out = np.empty((*cand.shape, static.shape[1] + 1), np.float32)
    write_candidate_features(cand, static, watch_counts, static.shape[0], out)
    return out


__all__ = [
    "N_USER_SCALARS",
    "RECENT_RATE",
    "USER_SCALARS",
    "ObsSpec",
    "candidate_features",
    "item_dim",
    "item_static_features",
    "record_pages",
    "user_dim",
    "user_features",
    "write_candidate_features",
    "write_user_features",
]
