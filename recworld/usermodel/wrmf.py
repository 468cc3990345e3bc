"""Collaborative item factors from implicit interactions, with a text prior so cold items get one too.

Weighted regularised matrix factorisation (Hu, Koren and Volinsky 2008) by
alternating least squares, where each item's factor is shrunk towards a
linear map of its text embedding, ``W @ e_i`` (the map fitted by ridge
regression between sweeps), instead of towards zero: an item nobody
interacted with gets ``W @ e_i``, its text-only representation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass
class Factors:
    """User tastes ``P`` (U, k), item factors ``Q`` (I, k), and the text map ``W`` (k, d) with prior mean ``W @ e_i``."""

    P: np.ndarray
    Q: np.ndarray
    W: np.ndarray


def _solve_rows(R: sparse.csr_matrix, X: np.ndarray, alpha: float, lam: float, prior: np.ndarray | None) -> np.ndarray:
    """Rows ``y_r = argmin sum_c (1 + alpha R_rc)(R_rc - y.x_c)^2 + lam |y - prior_r|^2`` (batched normal equations)."""
    k = X.shape[1]
    gram = X.T @ X + lam * np.eye(k)
    outer = (X[:, :, None] * X[:, None, :]).reshape(X.shape[0], k * k)
    A = gram[None] + alpha * np.asarray(R @ outer).reshape(R.shape[0], k, k)
    b = (1.0 + alpha) * np.asarray(R @ X)
    if prior is not None:
        b = b + lam * prior
    return np.linalg.solve(A, b[:, :, None])[:, :, 0]


def fit_factors(
    R: sparse.csr_matrix,
    text: np.ndarray,
    k: int = 16,
    alpha: float = 10.0,
    lam: float = 40.0,
    lam_w: float = 1.0,
    iters: int = 12,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Factors:
    """WRMF with a text prior on a binary (U, I) interaction matrix.

    Args:
        R: binary interactions (CSR).
        text: (I, d) item text embeddings.
        k: factors; alpha: confidence of an interaction; lam: ridge on P and on ``Q - text @ W.T``;
        lam_w: ridge on W; iters: ALS sweeps; seed: initial item factors.
        progress: called with each finished sweep.

    Items without interactions end with their prior mean ``W @ e_i``.
    """
    rng = np.random.default_rng(seed)
    R = sparse.csr_matrix(R, dtype=np.float64)
    RT = R.T.tocsr()
    n_items = R.shape[1]
    E = np.asarray(text, np.float64)
    Q = 0.1 * rng.standard_normal((n_items, k))
    W = np.zeros((k, E.shape[1]))
    P = np.zeros((R.shape[0], k))
    ridge = E.T @ E + lam_w * np.eye(E.shape[1])
    for sweep in range(iters):
        P = _solve_rows(R, Q, alpha, lam, None)
        Q = _solve_rows(RT, P, alpha, lam, E @ W.T)
        W = np.linalg.solve(ridge, E.T @ Q).T
        if progress is not None:
            progress(sweep + 1)
    P = _solve_rows(R, Q, alpha, lam, None)
    cold = np.asarray(R.sum(axis=0)).ravel() == 0
    if cold.any():
        Q[cold] = E[cold] @ W.T
    return Factors(P, Q, W)


__all__ = ["Factors", "fit_factors"]
