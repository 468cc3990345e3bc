"""Populations: real MovieLens users (taste from their ratings) or users sampled from a spec."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from recworld.agents.users import ROLES, Persona, UserAgent
from recworld.arrays import dot_rows, smallest_rows
from recworld.catalog import Catalog
from recworld.data.movielens import MovieLens
from recworld.errors import ConfigError
from recworld.state import UserArrays
from recworld.usermodel.fit import FittedModel

if TYPE_CHECKING:  # pragma: no cover
    from recworld.world import World


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)).astype(np.float32)


@dataclass
class Split:
    """Train/held-out split of each user's ratings (for calibration)."""

    train: np.ndarray  # bool mask over ml ratings
    test: np.ndarray


def split_ratings(ml: MovieLens, holdout: float, rng: np.random.Generator) -> Split:
    """Hold out a share of each user's ratings."""
    test = rng.random(ml.n_ratings) < holdout
    return Split(train=~test, test=test)


@dataclass
class PopulationStats:
    """What was derived from data, for calibration and reporting."""

    global_mean: float = 3.5
    taste_source: str = "sampled"
    extra: dict[str, float] = field(default_factory=dict)


class MovieLensPopulation:
    """The real users of an interaction log (MovieLens or any log the catalog loads).

    With a fitted user model (``recworld fit``) each user's taste, rating
    taste and bias, appetite and threshold are their own fitted values; without
    one, taste is the rating-weighted mean of the content embeddings of the
    items they rated (the content-only model). Traits: activity from how much
    they interacted, conformity from how mainstream their items are,
    diversity-seeking from their genre entropy; personas from their ratings.

    Args:
        ml: the data set (its items must be the catalog's items, same order).
        catalog: the catalog built from ``ml.items``.
        n_users: use the first ``n_users`` users (default: all).
        train_mask: only these interactions shape the users (default: the
            model's training interactions, or all).
        seed: for trait noise.
        model: the fitted user model of this log.
    """

    def __init__(
        self, ml: MovieLens, catalog: Catalog, n_users: int | None = None, train_mask: np.ndarray | None = None, seed: int = 0, model: FittedModel | None = None
    ) -> None:
        if len(catalog) < len(ml.items):
            raise ConfigError("population.source=movielens needs catalog.source=movielens (the same items)")
        total = len(ml.users)
        if n_users is not None and not 1 <= n_users <= total:
            raise ConfigError(f"population.n_users={n_users} but the data set has {total} users; use 1..{total} or population.source: sampled")
        if model is not None and (model.n_users != total or model.n_items != len(ml.items)):
            raise ConfigError(
                f"the fitted user model has {model.n_users} users and {model.n_items} items, the log {total} and {len(ml.items)}; fit it on this log"
            )
        self.ml = ml
        self.catalog = catalog
        self.model = model
        self.n = n_users or total
        if train_mask is None:
            train_mask = model.train_mask if model is not None else np.ones(ml.n_ratings, bool)
        self.mask = train_mask
        self.seed = seed
        self.stats = PopulationStats(taste_source="fitted" if model is not None else "content")
        self.personas: list[Persona] = []

    def build_arrays(self) -> tuple[UserArrays, list[Persona]]:
        """Derive numeric state and personas from the log (and the fitted model)."""
        ml, cat, n = self.ml, self.catalog, self.n
        rng = np.random.default_rng(self.seed)
        m = self.mask & (ml.rating_user < n)
        ru, ri = ml.rating_user[m].astype(np.int64), ml.rating_item[m].astype(np.int64)
        rr = ml.rating[m].astype(np.float64)
        rated = ~np.isnan(rr)
        mu = float(rr[rated].mean()) if rated.any() else 3.5
        cnt = np.bincount(ru, minlength=n)
        rcnt = np.bincount(ru[rated], minlength=n)
        umean = np.bincount(ru[rated], weights=rr[rated], minlength=n) / np.maximum(rcnt, 1)
        umean = np.where(rcnt > 0, umean, mu)
        centred = np.where(rated, rr - umean[ru], 0.0)
        if self.model is not None:
            a = UserArrays.allocate(n, self.model.factors.shape[1])
            for name in ("taste", "rating_taste", "rating_bias", "appetite", "threshold"):
                getattr(a, name)[:] = getattr(self.model, name)[:n]
            a.taste0[:] = a.taste
        else:
            a = UserArrays.allocate(n, cat.dim)
            a.taste[:] = content_tastes(cat, ru, ri, centred, n)
            a.taste0[:] = a.taste
            a.rating_bias[:] = (umean - mu).astype(np.float32)
        a.recent[:] = 0.0
        # Activity: sessions per day, log-scaled from interaction counts (20..700 in ML-100K).
        lc = np.log1p(cnt)
        z = (lc - lc.mean()) / max(lc.std(), 1e-6)
        a.activity[:] = np.clip(np.exp(0.5 * z) * rng.lognormal(0, 0.15, n), 0.2, 4.0)
        item_pop = np.log1p(np.bincount(ri, minlength=len(ml.items)))
        mainstream = np.bincount(ru, weights=item_pop[ri], minlength=n) / np.maximum(cnt, 1)
        a.conformity[:] = _to_unit_interval(mainstream)
        g = cat.tag_matrix[ri]
        gsum = np.zeros((n, g.shape[1]))
        np.add.at(gsum, ru, g)
        p = gsum / np.maximum(gsum.sum(1, keepdims=True), 1e-9)
        ent = -(p * np.log(np.where(p > 0, p, 1))).sum(1)
        a.diversity_seeking[:] = _to_unit_interval(ent)
        a.patience[:] = rng.beta(4, 3, n).astype(np.float32)
        a.next_return[:] = _first_arrivals(a.activity, rng)
        # Genre preferences for the persona text.
        gmean = np.zeros((n, g.shape[1]))
        np.add.at(gmean, ru, g * centred[:, None])
        gpref = gmean / np.maximum(gsum, 1)
        personas = []
        for i in range(n):
            u = ml.users[i]
            mine = np.flatnonzero((ru == i) & rated) if cnt[i] else np.zeros(0, int)
            personas.append(
                Persona(
                    external_id=u.external_id,
                    age=u.age,
                    gender=u.gender,
                    occupation=u.occupation,
                    liked_genres=_top_tags(cat, gpref[i], gsum[i], best=True),
                    disliked_genres=_top_tags(cat, gpref[i], gsum[i], best=False),
                    liked_titles=[cat.titles[ri[j]] for j in mine[np.argsort(-rr[mine], kind="stable")][:3]],
                    disliked_titles=[cat.titles[ri[j]] for j in mine[np.argsort(rr[mine], kind="stable")][:2] if rr[j] <= 2],
                    traits=_traits(a, i),
                    role=_role(a, i),
                )
            )
        self.stats = PopulationStats(global_mean=mu, taste_source=self.stats.taste_source)
        return a, personas

    def populate(self, world: World) -> None:
        """Create the users' mesa agents and state in ``world``."""
        arrays, personas = self.build_arrays()
        _attach(world, arrays, personas)
        self.personas = personas


def content_tastes(cat: Catalog, ru: np.ndarray, ri: np.ndarray, centred: np.ndarray, n: int) -> np.ndarray:
    """Content-only tastes: the rating-centred mean embedding of what each user rated (unit vectors)."""
    emb = cat.embeddings
    taste = np.zeros((n, cat.dim))
    np.add.at(taste, ru, centred[:, None] * emb[ri])
    # Users who rate everything alike still have a taste: what they chose to watch.
    liked_mean = np.zeros((n, cat.dim))
    np.add.at(liked_mean, ru, emb[ri])
    taste = np.where(np.linalg.norm(taste, axis=1, keepdims=True) > 1e-6, _unit(taste) + 0.5 * _unit(liked_mean), _unit(liked_mean))
    return _unit(taste)


class SampledPopulation:
    """Users sampled from a population spec.

    With a fitted user model, each new user's fitted parameters (taste,
    rating taste and bias, appetite, threshold) are those of a random real
    user plus Gaussian noise of ``taste_noise`` times the population's spread
    per dimension (a smoothed bootstrap: it keeps the real users' mix of
    tastes and how the parameters go together). Without one, each user likes
    1-3 tags (genres) of the catalog and their taste is the mean embedding of
    items with those tags plus noise. Traits are Beta-distributed with the spec's means.

    Args:
        catalog: the catalog.
        n_users: how many users.
        seed: sampling seed.
        activity_mean: mean sessions per day.
        patience, conformity, diversity_seeking: mean of each trait in (0, 1).
        taste_noise: how far new users scatter around real (or genre) tastes.
        model: the fitted user model of the catalog's log.
        item_factors: (n_items, d) item vectors the personas' liked titles are
            ranked by (default: the model's factors, or the catalog's embeddings);
            a replicated catalog passes its item table's.
    """

    OCCUPATIONS = ("student", "engineer", "artist", "writer", "educator", "programmer", "administrator", "healthcare", "retired", "other")

    def __init__(
        self,
        catalog: Catalog,
        n_users: int,
        seed: int = 0,
        activity_mean: float = 1.0,
        patience: float = 0.55,
        conformity: float = 0.5,
        diversity_seeking: float = 0.5,
        taste_noise: float = 0.6,
        model: FittedModel | None = None,
        item_factors: np.ndarray | None = None,
    ) -> None:
        if n_users < 1:
            raise ConfigError(f"population.n_users must be >= 1, got {n_users}")
        self.catalog = catalog
        self.n = n_users
        self.seed = seed
        self.activity_mean = activity_mean
        self.means = {"patience": patience, "conformity": conformity, "diversity_seeking": diversity_seeking}
        self.taste_noise = taste_noise
        self.model = model
        self.item_factors = item_factors
        self.stats = PopulationStats(taste_source="fitted" if model is not None else "content")
        self.personas: Sequence[Persona] = []
        if model is not None:
            self._real = model.user_parameters().astype(np.float64)
            self._spread = self._real.std(axis=0)

    @property
    def dim(self) -> int:
        """Dimensions of the users' tastes."""
        return self.model.factors.shape[1] if self.model is not None else self.catalog.dim

    def _centroids(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit taste centroids of the catalog's tags with at least 3 items, and those tags' indices."""
        if getattr(self, "_cen", None) is None:
            cat = self.catalog
            tm = cat.tag_matrix
            usable = np.flatnonzero(tm.sum(axis=0) >= 3)
            if usable.size == 0:
                self._cen = (_unit(cat.embeddings.mean(axis=0, keepdims=True)), np.zeros(1, np.int64))
            else:
                # Contiguous float64 copy: the strided float32 product is needlessly slow.
                c = np.ascontiguousarray(tm[:, usable].T).astype(np.float64) @ cat.embeddings.astype(np.float64)
                self._cen = (_unit(c), usable)
        return self._cen

    def sample_arrays(self, n: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """Draw ``n`` users' tastes and traits (no personas; cheap enough for env resets).

        Returns:
            Arrays by :class:`UserArrays` field name, and (content model only)
            the (n, G) 0/1 matrix of liked tags (columns index the usable tags).
        """
        if self.model is not None:
            base = self._real[rng.integers(0, self._real.shape[0], n)]
            drawn = base + self.taste_noise * self._spread * rng.standard_normal(base.shape)
            out = {name: arr.astype(np.float32) for name, arr in self.model.split_parameters(drawn).items()}
            out["taste0"] = out["taste"].copy()
            pick = None
        else:
            cen, _ = self._centroids()
            g = cen.shape[0]
            k = np.minimum(rng.integers(1, 4, n), g)
            order = np.argsort(rng.random((n, g)), axis=1)
            pick = np.zeros((n, g), np.float64)
            np.put_along_axis(pick, order, (np.arange(g)[None, :] < k[:, None]).astype(np.float64), axis=1)
            taste = (pick @ cen) / k[:, None]
            taste = _unit(_unit(taste) + self.taste_noise * _unit(rng.normal(size=taste.shape)) / np.sqrt(1 + k[:, None]))
            out = {"taste": taste, "taste0": taste.copy(), "rating_bias": rng.normal(0, 0.35, n)}
        out["activity"] = np.clip(rng.lognormal(np.log(self.activity_mean), 0.5, n), 0.1, 6.0)
        for name, mean in self.means.items():
            m = float(np.clip(mean, 0.02, 0.98))
            out[name] = rng.beta(6 * m, 6 * (1 - m), n)
        return out, pick

    def build_arrays(self) -> tuple[UserArrays, SampledPersonas]:
        """Draw the users' state; their personas are a table that builds each one when asked."""
        cat, n = self.catalog, self.n
        rng = np.random.default_rng(self.seed)
        drawn, pick = self.sample_arrays(n, rng)
        a = UserArrays.allocate(n, self.dim)
        for name, arr in drawn.items():
            getattr(a, name)[:] = arr
        a.next_return[:] = _first_arrivals(a.activity, rng)
        items = self.item_factors if self.item_factors is not None else self.model.factors if self.model is not None else cat.embeddings
        personas = SampledPersonas(cat, items[: len(cat)], a, _demographics(rng, n, self.OCCUPATIONS), pick, self._centroids()[1] if pick is not None else None)
        return a, personas

    def populate(self, world: World) -> None:
        arrays, personas = self.build_arrays()
        _attach(world, arrays, personas)
        self.personas = personas


class SampledPersonas(Sequence[Persona]):
    """The personas of a sampled population, each built when asked for (not stored).

    A persona's liked and disliked titles are the items its user's core taste
    (``taste0`` at creation) scores highest and lowest, its liked genres the
    tags it was drawn from (content model) or the most frequent tags among its
    30 best-matching items (fitted model). Making these for a million users
    over a 10,000-item catalog up front would rank 10^10 scores; here a
    persona costs one pass over the catalog when it is read (prompts, the
    dashboard's profile rows). Indexing by one user gives the same persona
    every time; the table holds arrays only (24 bytes per user, plus the
    content model's liked-tag flags).

    Args:
        catalog: the catalog (titles, tags).
        items: (n_items, d) item vectors in the taste space.
        arrays: the users' arrays (tastes and traits are copied or referenced as at creation).
        demographics: (age, gender index, occupation index) per user.
        pick: (n, G) liked tags of the content model (``None`` with a fitted model).
        usable: the tag index of each column of ``pick``.
    """

    def __init__(
        self,
        catalog: Catalog,
        items: np.ndarray,
        arrays: UserArrays,
        demographics: tuple[np.ndarray, np.ndarray, np.ndarray],
        pick: np.ndarray | None,
        usable: np.ndarray | None,
    ) -> None:
        self.catalog = catalog
        self.items = np.ascontiguousarray(items, np.float32)
        # The core taste never changes in a world; keep a reference, not a copy.
        self.taste = arrays.taste0
        # The traits at creation, read as _traits/_role read a UserArrays.
        self.traits = SimpleNamespace(
            **{name: np.array(getattr(arrays, name), copy=True) for name in ("activity", "patience", "conformity", "diversity_seeking", "rating_bias")}
        )
        self.age, self.gender, self.occupation = demographics
        self.pick = None if pick is None else pick.astype(bool)
        self.usable = usable

    def __len__(self) -> int:
        return int(self.age.shape[0])

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.build(np.arange(*i.indices(len(self)), dtype=np.int64))
        i = operator.index(i)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"user {i} is not in this population of {n}")
        return self.build(np.array([i], np.int64))[0]

    def build(self, users: np.ndarray) -> list[Persona]:
        """The personas of ``users`` (ids in range), ranked together: a batch costs a fraction of one-by-one
        (the recorder's profile rows of a million users), and each persona is the same whatever the batch."""
        cat = self.catalog
        users = np.asarray(users, np.int64)
        sims = dot_rows(self.taste[users], self.items.T)  # a user's scores do not depend on the batch
        # The liked titles are the first 3 of the best 30 (the tags' items): the same as ranking 3 alone (see smallest_rows).
        best = smallest_rows(sims, 3 if self.pick is not None else 30, negate=True)
        worst = smallest_rows(sims, 2)
        if self.pick is not None:
            liked = [[cat.tag_names[int(self.usable[j])] for j in np.flatnonzero(self.pick[u])] for u in users.tolist()]
        else:
            liked = _liked_tags(cat, best)
        titles = cat.titles
        return [
            Persona(
                external_id=f"s{u}",
                age=int(self.age[u]),
                gender="FM"[int(self.gender[u])],
                occupation=SampledPopulation.OCCUPATIONS[int(self.occupation[u])],
                liked_genres=liked[r],
                disliked_genres=[],
                liked_titles=[titles[j] for j in best[r, :3].tolist()],
                disliked_titles=[titles[j] for j in worst[r].tolist()],
                traits=_traits(self.traits, u),
                role=_role(self.traits, u),
            )
            for r, u in enumerate(users.tolist())
        ]


def _liked_tags(cat: Catalog, best: np.ndarray, n: int = 3) -> list[list[str]]:
    """Per row of ``best`` (users x their best-matching items), the most frequent tags among those items."""
    counts = cat.tag_matrix[best].sum(axis=1)
    order = np.argsort(-counts, axis=1, kind="stable")[:, :n]
    names = cat.tag_names
    return [[names[t] for t in row if c[t] > 0 and names[t] != "unknown"] for row, c in zip(order.tolist(), counts)]


def _demographics(rng: np.random.Generator, n: int, occupations: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Age, gender and occupation of ``n`` sampled users, as ``rng.integers(16, 70)``, ``rng.choice(["F", "M"])``, ``rng.choice(occupations)`` per user.

    The values (and the generator's state after) are those of the per-user
    calls, drawn in one call: each bounded draw takes one 32-bit word
    (Lemire's method). In the rare case that a word would have been rejected
    and redrawn, the per-user calls are made instead.
    """
    state = rng.bit_generator.state
    words = rng.integers(0, 2**32, size=3 * n, dtype=np.uint32).reshape(n, 3).astype(np.uint64)
    out, redraw = [], False
    for col, span in enumerate((54, 2, len(occupations))):
        m = words[:, col] * np.uint64(span)
        redraw |= bool(((m & np.uint64(0xFFFFFFFF)) < np.uint64((2**32 - span) % span)).any())
        out.append((m >> np.uint64(32)).astype(np.int16))
    if redraw:
        rng.bit_generator.state = state
        rows = [(int(rng.integers(16, 70)) - 16, int(rng.integers(0, 2)), int(rng.integers(0, len(occupations)))) for _ in range(n)]
        out = [np.asarray(c, np.int16).reshape(n) for c in zip(*rows)] if n else [np.zeros(0, np.int16)] * 3
    return (out[0] + 16).astype(np.int16), out[1].astype(np.int8), out[2].astype(np.int8)


def _attach(world: World, arrays: UserArrays, personas: Sequence[Persona]) -> None:
    world.users = arrays
    world.user_agents = UserAgent.make_all(world, personas)


def _first_arrivals(activity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Users open the app for the first time spread over their usual gap.
    return np.floor(rng.exponential(24.0 / np.maximum(activity, 0.1))).astype(np.int64)


def _to_unit_interval(x: np.ndarray) -> np.ndarray:
    r = np.argsort(np.argsort(x, kind="stable"), kind="stable")
    return ((r + 0.5) / len(x)).astype(np.float32)


def _top_tags(cat: Catalog, pref: np.ndarray, counts: np.ndarray, best: bool, n: int = 3) -> list[str]:
    ok = np.asarray([t for t in np.flatnonzero(counts >= 2) if cat.tag_names[t] != "unknown"], dtype=int)
    if ok.size == 0:
        return []
    order = ok[np.argsort(-pref[ok] if best else pref[ok], kind="stable")]
    sel = [cat.tag_names[t] for t in order[:n] if (pref[t] > 0 if best else pref[t] < 0)]
    return sel


def _traits(a: UserArrays | SimpleNamespace, i: int) -> dict[str, float]:
    return {
        "activity": round(float(a.activity[i]), 3),
        "patience": round(float(a.patience[i]), 3),
        "conformity": round(float(a.conformity[i]), 3),
        "diversity_seeking": round(float(a.diversity_seeking[i]), 3),
    }


def _role(a: UserArrays | SimpleNamespace, i: int) -> str:
    # RecAgent-style roles from traits: who mostly watches, explores, critiques, chats or posts.
    scores = {
        "watcher": 0.5,
        "explorer": float(a.diversity_seeking[i]),
        "critic": float(abs(a.rating_bias[i])) * 1.5,
        "chatter": float(a.conformity[i]) * 0.9,
        "poster": float(a.activity[i]) / 4.0,
    }
    return max(ROLES, key=lambda r: scores[r])
