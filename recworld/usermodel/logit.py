"""Maximum-likelihood fits of the choice layer: the watch utility and the awareness prior."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit


def fit_logit(X: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1e-3, iters: int = 50) -> tuple[np.ndarray, float, float]:
    """Weighted logistic MLE by Newton's method: ``P(y = 1) = sigmoid(X @ beta - u0)``.

    Returns:
        ``beta``, ``u0`` and the weighted negative log-likelihood.
    """
    n, p = X.shape
    Z = np.hstack([X, -np.ones((n, 1))])
    th = np.zeros(p + 1)
    for _ in range(iters):
        mu = expit(Z @ th)
        g = Z.T @ (w * (y - mu)) - 2 * l2 * th
        H = (Z * (w * mu * (1 - mu))[:, None]).T @ Z + 2 * l2 * np.eye(p + 1)
        step = np.linalg.solve(H, g)
        th += step
        if np.max(np.abs(step)) < 1e-9:
            break
    s = Z @ th
    nll = float(-np.sum(w * (y * log_expit(s) + (1 - y) * log_expit(-s))))
    return th[:p], float(th[p]), nll


def fit_awareness(utility: np.ndarray, A: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """MLE of ``alpha`` in ``P(y = 1) = sigmoid(alpha_0 + A @ alpha_1:) * sigmoid(utility)``, the utility held fixed.

    ``y`` marks pairs the user interacted with in the organic log: they had to
    know the item (be aware of it) and choose it.
    """
    pos = y > 0
    ls = log_expit(utility)
    Ab = np.hstack([np.ones((A.shape[0], 1)), A])

    def objective(a: np.ndarray) -> tuple[float, np.ndarray]:
        la = log_expit(Ab @ a)
        lp = ls + la
        pi = np.minimum(np.exp(lp), 1 - 1e-12)
        nll = -np.sum(w * np.where(pos, lp, np.log1p(-pi)))
        ga = w * np.where(pos, 1 - np.exp(la), -pi / (1 - pi) * (1 - np.exp(la)))  # d loglik / d eta
        return nll + l2 * a @ a, -(Ab.T @ ga) + 2 * l2 * a

    a0 = np.zeros(Ab.shape[1])
    a0[0] = -2.0
    return minimize(objective, a0, jac=True, method="L-BFGS-B", options={"maxiter": 1000}).x


__all__ = ["fit_awareness", "fit_logit"]
