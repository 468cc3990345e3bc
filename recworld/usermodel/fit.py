"""Fitting the user model to an interaction log (``recworld fit``): deterministic, cached.

What is fitted, on the training split only:

1. Item representations: collaborative factors from the interactions, with a
   text prior so items nobody interacted with still get one
   (:mod:`~recworld.usermodel.wrmf`); each real user's taste in the same space.
2. The choice (watch) model: ``P(watch | shown alone) = sigmoid(U_ui - u0)``
   with ``U_ui`` a weighted sum of interpretable terms (taste affinity, its
   square, affinity x appetite, item quality, fame = how known the item is,
   fame x appetite, appetite), weights and ``u0`` by weighted logistic maximum
   likelihood on a validation fold of the training data (affinities out of
   fold, so the model predicts new choices, not memorised ones) under a stated
   exposure assumption: each consumption in the log stands for
   ``exposures_per_watch`` exposures to items the user did not take, drawn
   uniformly from the catalog. The log has no impressions, so the no-click
   utility is not identified without such an assumption; it is a fit
   setting, reported with the model, never tuned on a validation protocol.
3. The awareness prior: ``P(interacted) = sigmoid(a0 + a1 fame + a2 appetite) x P(watch | shown)``,
   by maximum likelihood over all training pairs (the utility held fixed).
4. Ratings: an ordered logit over the same item factors (:mod:`~recworld.usermodel.ordinal`).
5. The leave hazard's intercept from session lengths in the log's timestamps
   (sessions split at gaps of 30 minutes; a user's first session, the
   sign-up rating burst, excluded), by maximum likelihood of a geometric
   number of pages per session.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from recworld.data.movielens import MovieLens
from recworld.errors import ConfigError, DataError
from recworld.threads import one_blas_thread
from recworld.usermodel.fidelity import holdout_split
from recworld.usermodel.kernels import ItemTable
from recworld.usermodel.logit import fit_awareness, fit_logit
from recworld.usermodel.ordinal import fit_ordinal
from recworld.usermodel.params import DecisionParams
from recworld.usermodel.wrmf import fit_factors

FIT_VERSION = 1
# The decision parameters a fit sets; the others are stated priors, taken from the current defaults on load.
FITTED_DECISION = ("affinity", "affinity_sq", "affinity_appetite", "appeal", "fame_appetite", "no_click", "cut1", "cut2", "cut3", "cut4", "leave_base")
# Utility terms of the fitted choice model, in design-matrix order.
FIT_TERMS = ("affinity", "affinity_sq", "affinity_appetite", "quality", "fame", "fame_appetite", "appetite")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class FitConfig:
    """Settings of a fit (defaults chosen on validation folds of ML-100K's training data).

    Attributes:
        factors: dimensions of the item factors and tastes.
        alpha, lam, lam_w, sweeps: WRMF confidence, ridge, text-map ridge and ALS sweeps.
        validation: share of each user's training interactions held out to fit the choice model out of fold.
        exposures_per_watch: the exposure assumption (see the module docstring).
        negative_share: share of the unconsumed pairs sampled (with weights) in the likelihoods.
        rating_lam_x, rating_lam_b: ridge of the rating head.
        session_gap_s: a pause longer than this starts a new session (for the leave fit).
        slate_size: items per page (the leave fit counts pages of this size).
    """

    factors: int = 16
    alpha: float = 10.0
    lam: float = 40.0
    lam_w: float = 1.0
    sweeps: int = 12
    validation: float = 0.2
    exposures_per_watch: float = 1.0
    negative_share: float = 0.1
    rating_lam_x: float = 20.0
    rating_lam_b: float = 2.0
    session_gap_s: int = 1800
    slate_size: int = 10


@dataclass
class FittedModel:
    """A fitted user model: decision parameters, the model's view of items, and the real users of the log.

    Item arrays are indexed like the catalog the log belongs to; user arrays
    like the log's users. ``taste`` and ``rating_taste`` live in the space of
    ``factors`` (the affinity of a user and an item is ``taste . factor``).
    """

    decision: DecisionParams
    factors: np.ndarray
    appeal: np.ndarray
    fame: np.ndarray
    item_rating_bias: np.ndarray
    taste: np.ndarray
    appetite: np.ndarray
    threshold: np.ndarray
    rating_bias: np.ndarray
    rating_taste: np.ndarray
    awareness: np.ndarray
    text_map: np.ndarray
    train_mask: np.ndarray
    config: FitConfig = field(default_factory=FitConfig)
    holdout: float = 0.0
    seed: int = 0
    source: str = ""
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return int(self.taste.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.factors.shape[0])

    def item_table(self) -> ItemTable:
        """The item table for a world over this log's catalog (grown for posts by the world)."""
        return ItemTable(
            np.ascontiguousarray(self.factors, np.float32),
            self.appeal.astype(np.float32),
            self.fame.astype(np.float32),
            self.item_rating_bias.astype(np.float32),
        )

    def user_parameters(self) -> np.ndarray:
        """(U, D) every real user's fitted parameters stacked: taste, rating taste, rating bias, appetite, threshold."""
        return np.hstack([self.taste, self.rating_taste, self.rating_bias[:, None], self.appetite[:, None], self.threshold[:, None]])

    def split_parameters(self, stacked: np.ndarray) -> dict[str, np.ndarray]:
        """Inverse of :meth:`user_parameters` (for sampled users)."""
        k = self.taste.shape[1]
        return {
            "taste": stacked[:, :k],
            "rating_taste": stacked[:, k : 2 * k],
            "rating_bias": stacked[:, 2 * k],
            "appetite": stacked[:, 2 * k + 1],
            "threshold": stacked[:, 2 * k + 2],
        }

    # ------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the model as one ``.npz`` (arrays plus a JSON header)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "version": FIT_VERSION,
            "decision": {k: getattr(self.decision, k) for k in FITTED_DECISION},
            "config": asdict(self.config),
            "holdout": self.holdout,
            "seed": self.seed,
            "source": self.source,
            "report": self.report,
        }
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")  # one per process: two processes may fit the same model at once
        np.savez_compressed(tmp, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FittedModel:
        """Read a model written by :meth:`save`.

        Raises:
            ConfigError: a missing file, not a fitted-model file, or one of another version.
        """
        path = Path(path)
        try:
            with np.load(path) as z:
                header = json.loads(bytes(z["header"]).decode())
                arrays = {name: z[name] for name in _ARRAYS}
        except FileNotFoundError:
            raise ConfigError(f"fitted user model {path} does not exist; make one with `recworld fit`") from None
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"{path} is not a fitted user model ({exc.__class__.__name__}); make one with `recworld fit`") from None
        if header.get("version") != FIT_VERSION:
            raise ConfigError(
                f"{path} was fitted by another version of RecWorld (format {header.get('version')}, expected {FIT_VERSION}); fit again with `recworld fit`"
            )
        return cls(
            decision=DecisionParams(**{k: v for k, v in header["decision"].items() if k in FITTED_DECISION}),
            config=FitConfig(**header["config"]),
            holdout=header["holdout"],
            seed=header["seed"],
            source=header["source"],
            report=header["report"],
            **arrays,
        )


_ARRAYS = (
    "factors",
    "appeal",
    "fame",
    "item_rating_bias",
    "taste",
    "appetite",
    "threshold",
    "rating_bias",
    "rating_taste",
    "awareness",
    "text_map",
    "train_mask",
)


# ---------------------------------------------------------------- the fit
def _matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sparse.csr_matrix:
    m = sparse.csr_matrix((np.ones(users.size), (users, items)), shape=(n_users, n_items))
    m.data[:] = 1.0  # repeated interactions count once
    return m


def _fame(R: sparse.csr_matrix) -> np.ndarray:
    n = np.asarray(R.sum(axis=0)).ravel()
    return np.log1p(n) / np.log1p(max(n.max(), 1.0))


def _appetite(R: sparse.csr_matrix) -> np.ndarray:
    a = np.log1p(np.asarray(R.sum(axis=1)).ravel())
    return a - a.mean()


def _quality(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_items: int, shrink: float = 10.0) -> np.ndarray:
    ok = ~np.isnan(ratings)
    if not ok.any():
        return np.zeros(n_items)
    mu = float(ratings[ok].mean())
    s = np.bincount(items[ok], ratings[ok], n_items)
    c = np.bincount(items[ok], minlength=n_items)
    return (s + shrink * mu) / (c + shrink) - mu


def _design(aff: np.ndarray, quality: np.ndarray, fame: np.ndarray, appetite: np.ndarray) -> np.ndarray:
    """Rows of the utility terms (FIT_TERMS order) for aligned pairs."""
    return np.column_stack([aff, aff**2, aff * appetite, quality, fame, fame * appetite, appetite])


def _sample_unconsumed(R: sparse.csr_matrix, per_user: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """For each user, ``per_user[u]`` items drawn uniformly (with repetition) among those they never interacted with."""
    n_items = R.shape[1]
    us, its = [], []
    for u in np.flatnonzero(per_user > 0):
        taken = R.indices[R.indptr[u] : R.indptr[u + 1]]
        free = np.setdiff1d(np.arange(n_items), taken, assume_unique=True)
        if free.size:
            us.append(np.full(per_user[u], u))
            its.append(free[rng.integers(0, free.size, per_user[u])])
    if not us:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(us), np.concatenate(its)


def _choice_fit(users, items, ratings, n_users, n_items, text, quality, cfg: FitConfig, seed: int, say: Progress) -> tuple[np.ndarray, float, dict]:
    """Choice weights and ``u0`` on a validation fold with out-of-fold affinities (FIT_TERMS order)."""
    val = holdout_split(users, cfg.validation, np.random.default_rng(seed + 7919))
    fold = _matrix(users[~val], items[~val], n_users, n_items)
    say(f"choice model: factors on {int((~val).sum())} interactions, weights on {int(val.sum())} held-out choices")
    f = fit_factors(fold, text, cfg.factors, cfg.alpha, cfg.lam, cfg.lam_w, cfg.sweeps, seed)
    scale = float((f.P @ f.Q.T).std())
    fame, appetite = _fame(fold), _appetite(fold)
    all_r = _matrix(users, items, n_users, n_items)
    # Positives: the validation fold's choices (repeats once). Negatives: the exposure assumption,
    # exposures_per_watch unconsumed items per choice, uniform; a sampled share with matching weights.
    vpos = _matrix(users[val], items[val], n_users, n_items).tocoo()
    pu, pi = vpos.row.astype(np.int64), vpos.col.astype(np.int64)
    n_free = n_items - np.diff(all_r.indptr)
    exposures = cfg.exposures_per_watch * np.bincount(pu, minlength=n_users)
    rng = np.random.default_rng(seed + 104729)
    draws = rng.binomial(np.maximum(n_free, 0), cfg.negative_share)
    nu, ni = _sample_unconsumed(all_r, draws, rng)
    weight_neg = exposures[nu] / np.maximum(n_free[nu], 1) / cfg.negative_share
    u_all, i_all = np.concatenate([pu, nu]), np.concatenate([pi, ni])
    aff = np.einsum("nk,nk->n", f.P[u_all], f.Q[i_all]) / scale
    X = _design(aff, quality[i_all], fame[i_all], appetite[u_all])
    y = np.concatenate([np.ones(pu.size), np.zeros(nu.size)])
    w = np.concatenate([np.ones(pu.size), weight_neg])
    beta, u0, nll = fit_logit(X, y, w)
    return beta, u0, {"choices": int(pu.size), "sampled_negatives": int(nu.size), "nll_per_choice": nll / max(pu.size, 1)}


def _sessions(users: np.ndarray, stamps: np.ndarray, gap_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Sizes of each user's sessions (interactions split at pauses > ``gap_s``) and whether each is the user's first."""
    order = np.lexsort((stamps, users))
    u, t = users[order], stamps[order]
    new = np.r_[True, (u[1:] != u[:-1]) | (t[1:] - t[:-1] > gap_s)]
    starts = np.flatnonzero(new)
    sizes = np.diff(np.r_[starts, u.size])
    first = np.r_[True, u[starts][1:] != u[starts][:-1]]
    return sizes, first


def _leave_base(users: np.ndarray, stamps: np.ndarray, cfg: FitConfig, share_watched: float, decision: DecisionParams) -> tuple[float, dict]:
    """The leave hazard's intercept: pages per session are geometric with hazard h (MLE ``sessions / pages``).

    A session of n interactions spans ceil(n / (k * share_watched)) pages. The
    other leave terms (fatigue, patience, share watched) keep their values;
    the intercept makes the hazard h at their typical values.
    """
    if stamps.size == 0 or np.all(stamps == stamps[0]):
        return decision.leave_base, {"sessions": 0}
    sizes, first = _sessions(users, stamps, cfg.session_gap_s)
    later = sizes[~first]
    if later.size < 20:
        return decision.leave_base, {"sessions": int(later.size)}
    per_page = max(cfg.slate_size * share_watched, 1e-6)
    pages = np.ceil(later / per_page)
    h = float(later.size / pages.sum())
    h = min(max(h, 1e-3), 1 - 1e-3)
    d = decision
    typical = d.leave_fatigue * (2.0 * 0.12) - d.leave_patience * 0.55 - d.leave_quality * share_watched
    base = float(np.log(h / (1 - h)) - typical)
    info = {
        "sessions": int(sizes.size),
        "later_sessions": int(later.size),
        "median_interactions_per_later_session": float(np.median(later)),
        "first_session_share_of_interactions": float(sizes[first].sum() / sizes.sum()),
        "page_hazard": h,
    }
    return base, info


def fit_user_model(
    log: MovieLens, text: np.ndarray, train: np.ndarray | None = None, config: FitConfig | None = None, seed: int = 0, progress: Progress | None = None
) -> FittedModel:
    """Fit the user model to ``log`` (its ``train`` interactions only) and the items' ``text`` embeddings.

    Args:
        log: the interaction log (users, items, ratings - NaN where unknown -, timestamps).
        text: (n_items, d) item text embeddings, rows like ``log.items``.
        train: boolean mask over the log's interactions to fit on (default: all).
        config: fit settings.
        seed: the fit's seed (deterministic given it).
        progress: called with a line per stage.
    """
    cfg = config or FitConfig()
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    n_users, n_items = len(log.users), len(log.items)
    if text.shape[0] != n_items:
        raise DataError(f"the log has {n_items} items but {text.shape[0]} text embeddings; they must be the same items in the same order")
    mask = np.ones(log.n_ratings, bool) if train is None else np.asarray(train, bool)
    users = log.rating_user[mask].astype(np.int64)
    items = log.rating_item[mask].astype(np.int64)
    ratings = log.rating[mask].astype(np.float64)
    if users.size < 50:
        raise DataError(f"{log.source}: {users.size} interactions to fit on; the user model needs at least 50")
    text = np.asarray(text, np.float64)
    quality = _quality(users, items, ratings, n_items)
    beta, u0, choice_info = _choice_fit(users, items, ratings, n_users, n_items, text, quality, cfg, seed, say)
    say("item factors and tastes on all training interactions")
    R = _matrix(users, items, n_users, n_items)
    f = fit_factors(R, text, cfg.factors, cfg.alpha, cfg.lam, cfg.lam_w, cfg.sweeps, seed)
    scale = float((f.P @ f.Q.T).std())
    fame, appetite = _fame(R), _appetite(R)
    w = dict(zip(FIT_TERMS, beta))
    # The kernels' form: affinity = taste . factor with the scale folded into the taste;
    # item-only terms make the appeal, user-only terms the user's own threshold.
    taste = f.P / scale
    appeal = w["quality"] * quality + w["fame"] * fame
    threshold = -w["appetite"] * appetite
    say("awareness prior")
    rng = np.random.default_rng(seed + 1299709)
    coo = R.tocoo()
    n_free = n_items - np.diff(R.indptr)
    nu, ni = _sample_unconsumed(R, rng.binomial(np.maximum(n_free, 0), cfg.negative_share), rng)
    pu, pi = coo.row.astype(np.int64), coo.col.astype(np.int64)
    au, ai = np.concatenate([pu, nu]), np.concatenate([pi, ni])
    aff = np.einsum("nk,nk->n", taste[au], f.Q[ai])
    util = _design(aff, quality[ai], fame[ai], appetite[au]) @ beta - u0
    awareness = fit_awareness(
        util,
        np.column_stack([fame[ai], appetite[au]]),
        np.r_[np.ones(pu.size), np.zeros(nu.size)],
        np.r_[np.ones(pu.size), np.full(nu.size, 1 / cfg.negative_share)],
    )
    say("rating model")
    rated = ~np.isnan(ratings)
    qstd = float(f.Q.std()) or 1.0
    if rated.sum() >= 50:
        rf = fit_ordinal(users[rated], items[rated], ratings[rated], f.Q / qstd, text, n_users, cfg.rating_lam_x, cfg.rating_lam_b, seed=seed)
        rating_bias, rating_taste, item_rating_bias, cuts = rf.c, rf.X / qstd, rf.d, rf.theta
    else:
        rating_bias, rating_taste, item_rating_bias = np.zeros(n_users), np.zeros((n_users, cfg.factors)), np.zeros(n_items)
        cuts = np.array([DecisionParams().cut1, DecisionParams().cut2, DecisionParams().cut3, DecisionParams().cut4])
    decision = DecisionParams(
        affinity=w["affinity"],
        affinity_sq=w["affinity_sq"],
        affinity_appetite=w["affinity_appetite"],
        appeal=1.0,
        fame_appetite=w["fame_appetite"],
        no_click=u0,
        cut1=cuts[0],
        cut2=cuts[1],
        cut3=cuts[2],
        cut4=cuts[3],
    )
    say("session lengths")
    base, session_info = _leave_base(users, log.timestamp[mask].astype(np.int64), cfg, 0.3, decision)
    decision = decision.model_copy(update={"leave_base": base})
    report = {
        "interactions": int(users.size),
        "users": n_users,
        "items": n_items,
        "cold_items": int((np.asarray(R.sum(axis=0)).ravel() == 0).sum()),
        "coefficients": {**{t: float(b) for t, b in zip(FIT_TERMS, beta)}, "u0": u0},
        "awareness": {"intercept": float(awareness[0]), "fame": float(awareness[1]), "appetite": float(awareness[2])},
        "choice": choice_info,
        "sessions": session_info,
        "fit_seconds": round(time.perf_counter() - t0, 2),
    }
    return FittedModel(
        decision=decision,
        factors=f.Q.astype(np.float32),
        appeal=appeal.astype(np.float32),
        fame=fame.astype(np.float32),
        item_rating_bias=item_rating_bias.astype(np.float32),
        taste=taste.astype(np.float32),
        appetite=appetite.astype(np.float32),
        threshold=threshold.astype(np.float32),
        rating_bias=rating_bias.astype(np.float32),
        rating_taste=rating_taste.astype(np.float32),
        awareness=np.asarray(awareness, np.float64),
        text_map=f.W.astype(np.float32),
        train_mask=mask,
        config=cfg,
        seed=seed,
        source=log.source,
        report=report,
    )


# ---------------------------------------------------------------- cache
def model_key(log: MovieLens, text: np.ndarray, holdout: float, seed: int, config: FitConfig) -> str:
    """A content hash of everything a fit depends on."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": FIT_VERSION, "holdout": holdout, "seed": seed, "config": asdict(config)}, sort_keys=True).encode())
    for a in (log.rating_user, log.rating_item, log.rating, log.timestamp, np.asarray(text, np.float32)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:20]


def cache_dir() -> Path:
    """Where fitted models are cached."""
    from recworld.embeddings import cache_dir as root

    return root() / "usermodels"


@one_blas_thread()  # the fit (and the cache file other processes read) must not depend on the caller's BLAS threads
def fitted_model(
    log: MovieLens,
    text: np.ndarray,
    holdout: float = 0.0,
    seed: int = 0,
    config: FitConfig | None = None,
    progress: Progress | None = None,
    refit: bool = False,
) -> FittedModel:
    """The user model fitted to ``log`` (a share ``holdout`` of each user's interactions held out), from the cache when it is there.

    The held-out interactions are never seen by the fit; ``model.train_mask`` says which were used.
    """
    if not 0.0 <= holdout < 1.0:
        raise ConfigError(f"holdout must be in [0, 1), got {holdout}")
    cfg = config or FitConfig()
    path = cache_dir() / f"{model_key(log, text, holdout, seed, cfg)}.npz"
    if path.exists() and not refit:
        try:
            return FittedModel.load(path)
        except ConfigError:
            pass  # an unreadable or old cache entry: fit again
    train = ~holdout_split(log.rating_user, holdout, np.random.default_rng(seed)) if holdout > 0 else None
    model = fit_user_model(log, text, train, cfg, seed, progress)
    model.holdout = holdout
    try:
        model.save(path)
    except OSError:
        pass  # a read-only cache: the model still works for this process
    return model


__all__ = ["FITTED_DECISION", "FIT_TERMS", "FitConfig", "FittedModel", "cache_dir", "fit_user_model", "fitted_model", "model_key"]
