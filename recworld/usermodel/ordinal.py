"""Ratings as an ordered logit on a latent score over the shared item factors, fitted by MAP.

``P(r <= c) = sigmoid(theta_c - z_ui)`` with ``z_ui = b_u + b_i + x_u . v_i``,
where ``v_i`` are the (fixed) implicit item factors: a linear rating head on
the same representation the choice model uses. The item bias is shrunk
towards a text map ``w . e_i`` so cold items get one; cut points are increasing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import minimize
from scipy.special import expit


@dataclass
class RatingFit:
    """Fitted rating head: user bias ``c`` (U,), item bias ``d`` (I,), user rating tastes ``X`` (U, k), text map ``w``, cut points ``theta`` (4,)."""

    c: np.ndarray
    d: np.ndarray
    X: np.ndarray
    w: np.ndarray
    theta: np.ndarray

    def latent(self, users: np.ndarray, items: np.ndarray, V: np.ndarray) -> np.ndarray:
        """Latent scores of the pairs given item vectors ``V``."""
        return self.c[users] + self.d[items] + np.einsum("nk,nk->n", self.X[users], V[items])


def _cuts(raw: np.ndarray) -> np.ndarray:
    return raw[0] + np.concatenate([[0.0], np.cumsum(np.exp(raw[1:]))])


def fit_ordinal(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    V: np.ndarray,
    text: np.ndarray,
    n_users: int,
    lam_x: float = 20.0,
    lam_b: float = 2.0,
    levels: int = 5,
    maxiter: int = 300,
    seed: int = 0,
) -> RatingFit:
    """MAP fit of the ordered logit over observed ``ratings`` (1..levels) of the pairs ``(users, items)``.

    Args:
        V: (I, k) item vectors (the implicit factors, fixed).
        text: (I, d) item text embeddings (prior of the item bias).
        lam_x, lam_b: ridge on user rating tastes and on biases (and ``d - text @ w``).
    """
    n_items, k = V.shape
    dim_e = text.shape[1]
    ri = np.asarray(ratings, np.float64).astype(int) - 1
    u, i = np.asarray(users, np.int64), np.asarray(items, np.int64)
    rng = np.random.default_rng(seed)
    sizes = [n_users, n_items, n_users * k, dim_e, levels - 1]
    cuts = np.cumsum(sizes)[:-1]
    n = u.size
    Mu = sparse.csr_matrix((np.ones(n), (u, np.arange(n))), shape=(n_users, n))
    Vi = V[i]
    # Start from the empirical cut points (levels nobody used get a small share, so the start stays finite).
    cum = np.clip(np.cumsum(np.bincount(ri, minlength=levels) + 0.5)[:-1] / (n + 0.5 * levels), 1e-3, 1 - 1e-3)
    th0 = np.log(cum / (1 - cum))
    rbar = ratings - np.mean(ratings)
    c0 = np.bincount(u, rbar, n_users) / (np.bincount(u, minlength=n_users) + 5.0)
    d0 = np.bincount(i, rbar - c0[u], n_items) / (np.bincount(i, minlength=n_items) + 5.0)
    x0 = np.concatenate([c0 * 1.5, d0 * 1.5, 0.01 * rng.standard_normal(n_users * k), np.zeros(dim_e), [th0[0]], np.log(np.diff(th0))])

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        c, d, X, w, raw = np.split(x, cuts)
        X = X.reshape(n_users, k)
        th = _cuts(raw)
        z = c[u] + d[i] + np.einsum("nk,nk->n", X[u], Vi)
        thx = np.concatenate([[-np.inf], th, [np.inf]])
        Fu, Fl = expit(thx[ri + 1] - z), expit(thx[ri] - z)
        P = np.maximum(Fu - Fl, 1e-12)
        fu, fl = Fu * (1 - Fu), Fl * (1 - Fl)
        gz = (fu - fl) / P  # d nll / d z
        dm = d - text @ w
        nll = -np.sum(np.log(P)) + 0.5 * (lam_b * (c @ c + dm @ dm + w @ w) + lam_x * np.sum(X * X))
        gc = np.bincount(u, gz, n_users) + lam_b * c
        gd = np.bincount(i, gz, n_items) + lam_b * dm
        gw = -lam_b * text.T @ dm + lam_b * w
        gX = Mu @ (gz[:, None] * Vi) + lam_x * X
        gth = (np.bincount(ri + 1, -fu / P, levels + 1) + np.bincount(ri, fl / P, levels + 1))[1:levels]
        graw = np.empty(levels - 1)  # through theta = raw0 + cumsum(exp(raw1:))
        graw[0] = gth.sum()
        graw[1:] = np.exp(raw[1:]) * np.cumsum(gth[::-1])[::-1][1:]
        return nll, np.concatenate([gc, gd, gX.ravel(), gw, graw])

    res = minimize(objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter, "ftol": 1e-7})
    c, d, X, w, raw = np.split(res.x, cuts)
    return RatingFit(c, d, X.reshape(n_users, k), w, _cuts(raw))


def rating_probabilities(z: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """(n, levels) probabilities of each rating given latent scores ``z``."""
    F = expit(theta[None, :] - z[:, None])
    F = np.concatenate([np.zeros((z.size, 1)), F, np.ones((z.size, 1))], axis=1)
    return np.diff(F, axis=1)


__all__ = ["RatingFit", "fit_ordinal", "rating_probabilities"]
