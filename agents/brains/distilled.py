"""The distilled brain: the user model's decision form fitted to another brain's logged decisions.

The bridge that lets RL train fast on behaviour learned from LLM users: show
pages to users, let a teacher brain (usually ``llm``) decide, and fit the
user model's decision weights to those decisions. The fit is exact in form:
in the user model an item is watched when ``U_j + g_j > U_0 + g_0`` with
i.i.d. Gumbel noise, and the difference of two Gumbels is logistic, so
``P(watch_j) = sigmoid(U_j - U_0)``; a logistic regression on the utility's
terms — computed by the model's own kernel, :func:`recworld.usermodel.kernels.choice_terms`
— recovers its weights and the no-click utility. (With a ``satiation`` above 0
a page's later picks are harder than the first: the student models each
item's marginal choice and has no satiation.) Leaving is a logistic hazard
in fatigue, patience and the share watched, fitted the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recworld.agents.brains.utility import UtilityBrain
from recworld.errors import ConfigError
from recworld.usermodel import kernels as UK
from recworld.usermodel.draws import PageDraws
from recworld.usermodel.params import CHOICE_TERMS, LEAVE_TERMS, DecisionParams

if TYPE_CHECKING:  # pragma: no cover
    from recworld.world import World


def _logistic_fit(x: np.ndarray, y: np.ndarray, offset: np.ndarray | None = None, l2: float = 1e-3, iters: int = 50) -> np.ndarray:
    """Weights (last = intercept) of an L2-regularised logistic regression with a fixed offset, by Newton's method."""
    xb = np.hstack([x, np.ones((x.shape[0], 1))])
    off = np.zeros(x.shape[0]) if offset is None else offset
    w = np.zeros(xb.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w + off, -30, 30)))
        grad = xb.T @ (p - y) + l2 * w
        h = (xb * (p * (1 - p))[:, None]).T @ xb + l2 * np.eye(xb.shape[1])
        step = np.linalg.solve(h, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w


def watch_features(world: World, users: np.ndarray, slates: np.ndarray) -> np.ndarray:
    """(B, k, len(CHOICE_TERMS)) choice terms, signed as they enter the utility with weight 1 (the model's own kernel)."""
    out = np.empty((users.size, slates.shape[1], len(CHOICE_TERMS)))
    UK.choice_terms(world.state, world.items, world.platform, np.asarray(users, np.int64), np.asarray(slates, np.int64), out)
    return out


class DistilledBrain(UtilityBrain):
    """A :class:`UtilityBrain` whose decision weights were fitted to a teacher brain's decisions."""

    name = "distilled"

    def __init__(self, params: DecisionParams | None = None, fit_report: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.fit_report = fit_report or {}

    @classmethod
    def fit(cls, world: World, teacher: Any, pages: int = 2000, seed: int = 0, base: DecisionParams | None = None) -> DistilledBrain:
        """Fit to ``teacher``'s decisions on ``pages`` random pages shown to random users of ``world``.

        Pages are drawn at random (not by a recommender) so every kind of item
        is seen; user state is left as it is in ``world``.
        """
        if pages < 50:
            raise ConfigError(f"distillation needs at least 50 pages, got {pages}")
        rng = np.random.default_rng(seed)
        base = base or DecisionParams()
        k = min(world.config.slate_size, len(world.catalog))
        layout = PageDraws(k)
        batch = min(256, pages)
        xs, ys, offs, ls, lys = [], [], [], [], []
        done = 0
        u = world.users
        while done < pages:
            b = min(batch, pages - done)
            users = rng.choice(world.n_users, size=b, replace=world.n_users < b)
            slates = np.argsort(rng.random((b, len(world.catalog))), axis=1)[:, :k]
            dec = teacher.decide(world.page_context(users, slates, page=0, draws=layout.draw(rng, b)))
            watched = np.asarray(dec.watched, bool)
            xs.append(watch_features(world, users, slates).reshape(-1, len(CHOICE_TERMS)))
            ys.append(watched.ravel().astype(np.float64))
            offs.append(np.repeat(-u.threshold[users].astype(np.float64), k))
            ls.append(np.stack([u.fatigue[users], -u.patience[users], -watched.mean(axis=1)], axis=1).astype(np.float64))
            lys.append(np.asarray(dec.leave, bool).astype(np.float64))
            done += b
        fitted: dict[str, float] = {}
        for names, x, y, off0, intercept in (
            (CHOICE_TERMS, np.concatenate(xs), np.concatenate(ys), np.concatenate(offs), "no_click"),
            (LEAVE_TERMS, np.concatenate(ls), np.concatenate(lys), None, "leave_base"),
        ):
            # A term that never varied on these pages (e.g. boredom in a fresh world) cannot
            # be identified: it keeps the base value and its known contribution is an offset.
            live = x.std(axis=0) > 1e-6
            base_w = np.array([getattr(base, n) for n in names])
            offset = x[:, ~live] @ base_w[~live] + (0.0 if off0 is None else off0)
            w = _logistic_fit(x[:, live], y, offset=offset)
            fitted.update({n: float(v) for n, v in zip(np.array(names)[live], w[:-1])})
            fitted[intercept] = float(-w[-1]) if intercept == "no_click" else float(w[-1])
        # The logistic fit reproduces each item's marginal watch probability, which is what
        # independent choices (no satiation) give; the page-level attention limit is not identified.
        fitted["satiation"] = 0.0
        params = base.model_copy(update=fitted)
        report = {"pages": pages, "watch_rate": float(np.concatenate(ys).mean()), "leave_rate": float(np.concatenate(lys).mean()), "params": fitted}
        return cls(params, report)

    def save(self, path: str | Path) -> Path:
        """Write the fitted parameters (and the fit report) as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"params": self.params.model_dump(), "fit": self.fit_report}, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> DistilledBrain:
        """Read a brain written by :meth:`save`.

        Raises:
            ConfigError: missing file or not a distilled-brain file.
        """
        p = Path(path)
        try:
            data = json.loads(p.read_text())
            return cls(DecisionParams(**data["params"]), data.get("fit"))
        except FileNotFoundError:
            raise ConfigError(f"distilled brain file {p} does not exist; fit one with DistilledBrain.fit(...).save(path)") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{p} is not a distilled-brain file ({exc.__class__.__name__}); expected JSON with 'params'") from None
