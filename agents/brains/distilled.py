"""The distilled brain: a utility model fitted to another brain's logged decisions.

The bridge that lets RL train fast on behaviour learned from LLM users: show
pages to users, let a teacher brain (usually ``llm``) decide, and fit the
utility brain's weights to those decisions. The fit is exact in form: in the
utility brain an item is watched when ``U_j + g_j > U_0 + g_0`` with i.i.d.
Gumbel noise, and the difference of two Gumbels is logistic, so
``P(watch_j) = sigmoid(U_j - U_0)``; a logistic regression on the utility's
terms recovers its weights and the no-click utility. Leaving is a logistic
hazard in fatigue, patience and the share watched, fitted the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recworld.agents.brains.utility import UtilityBrain, UtilityParams
from recworld.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from recworld.world import World

# Utility terms (columns of the design matrix) and the parameter each one's weight sets.
WATCH_TERMS = ("affinity", "quality", "popularity", "boredom", "position", "fatigue", "seen_penalty")
LEAVE_TERMS = ("leave_fatigue", "leave_patience", "leave_quality")


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


def watch_features(world: World, brain: UtilityBrain, users: np.ndarray, slates: np.ndarray) -> np.ndarray:
    """(B, k, len(WATCH_TERMS)) utility terms, signed as they enter the utility with weight 1."""
    u = world.users
    e = world.catalog.embeddings[slates]
    aff = np.einsum("bd,bkd->bk", u.taste[users], e) * brain.affinity_scale(world)
    bored = np.maximum(np.einsum("bd,bkd->bk", u.recent[users], e), 0.0) * (0.5 + u.diversity_seeking[users, None])
    pop = np.log1p(world.watch_counts[slates]) / np.log1p(max(int(world.watch_counts.max()), 1)) * u.conformity[users, None]
    k = slates.shape[1]
    pos = np.broadcast_to(np.log2(1.0 + np.arange(k, dtype=np.float32)), slates.shape)
    fat = np.broadcast_to(u.fatigue[users, None], slates.shape)
    seen = world.seen[users[:, None], slates].astype(np.float32)
    q = world.catalog.quality[slates]
    return np.stack([aff, q, pop, -bored, -pos, -fat, -seen], axis=-1).astype(np.float64)


class DistilledBrain(UtilityBrain):
    """A :class:`UtilityBrain` whose weights were fitted to a teacher brain's decisions."""

    name = "distilled"

    def __init__(self, params: UtilityParams | None = None, fit_report: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.fit_report = fit_report or {}

    @classmethod
    def fit(cls, world: World, teacher: Any, pages: int = 2000, seed: int = 0, base: UtilityParams | None = None) -> DistilledBrain:
        """Fit to ``teacher``'s decisions on ``pages`` random pages shown to random users of ``world``.

        Pages are drawn at random (not by a recommender) so every kind of item
        is seen; user state is left as it is in ``world``.
        """
        if pages < 50:
            raise ConfigError(f"distillation needs at least 50 pages, got {pages}")
        rng = np.random.default_rng(seed)
        base = base or UtilityParams()
        probe = UtilityBrain(base)
        k = min(world.config.slate_size, len(world.catalog))
        batch = min(256, pages)
        xs, ys, ls, lys = [], [], [], []
        done = 0
        while done < pages:
            b = min(batch, pages - done)
            users = rng.choice(world.n_users, size=b, replace=world.n_users < b)
            slates = np.argsort(rng.random((b, len(world.catalog))), axis=1)[:, :k]
            dec = teacher.decide(world, users, slates)
            watched = np.asarray(dec.watched, bool)
            xs.append(watch_features(world, probe, users, slates).reshape(-1, len(WATCH_TERMS)))
            ys.append(watched.ravel().astype(np.float64))
            u = world.users
            ls.append(np.stack([u.fatigue[users], -u.patience[users], -watched.mean(axis=1)], axis=1).astype(np.float64))
            lys.append(np.asarray(dec.leave, bool).astype(np.float64))
            done += b
        fitted: dict[str, float] = {}
        for names, x, y, intercept in (
            (WATCH_TERMS, np.concatenate(xs), np.concatenate(ys), "no_click"),
            (LEAVE_TERMS, np.concatenate(ls), np.concatenate(lys), "leave_base"),
        ):
            # A term that never varied on these pages (e.g. boredom in a fresh world) cannot
            # be identified: it keeps the base value and its known contribution is an offset.
            live = x.std(axis=0) > 1e-6
            base_w = np.array([getattr(base, n) for n in names])
            offset = x[:, ~live] @ base_w[~live]
            w = _logistic_fit(x[:, live], y, offset=offset)
            fitted.update({n: float(v) for n, v in zip(np.array(names)[live], w[:-1])})
            fitted[intercept] = float(-w[-1]) if intercept == "no_click" else float(w[-1])
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
            return cls(UtilityParams(**data["params"]), data.get("fit"))
        except FileNotFoundError:
            raise ConfigError(f"distilled brain file {p} does not exist; fit one with DistilledBrain.fit(...).save(path)") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{p} is not a distilled-brain file ({exc.__class__.__name__}); expected JSON with 'params'") from None
