"""What a user is looking for, and how they decide on items offered outside the feed — all through the user model.

Searches and conversations use the same pieces:

- :func:`user_model_of` finds the user model's decision record behind the world's brain;
- :func:`item_utilities` scores items for users with the user model's
  kernel (:func:`recworld.usermodel.kernels.utilities`, each item alone at
  the top of a page);
- :func:`draw_intents` draws the item a user is after from their taste
  (softmax of those utilities over items they have not seen);
- :func:`decide` decides a page of offered items (search results, a
  conversation's recommendations) with :func:`recworld.usermodel.kernels.decide_pages`,
  the very kernel that decides feed pages;
- :func:`attributes` describes items by the attributes a conversation talks
  about (genre, era, popularity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recworld.agents.brains.utility import UtilityBrain
from recworld.protocols import PageDecision
from recworld.search import decade_word
from recworld.usermodel import kernels as UK

if TYPE_CHECKING:  # pragma: no cover
    from recworld.world import World

#: The attributes a conversation asks about and users answer.
ATTRIBUTES: tuple[str, ...] = ("genre", "era", "popularity")
#: Above this fame an item is "well known" (fame is log-interactions over the most, in [0, 1]).
WELL_KNOWN = 0.6


def user_model_of(brain: Any) -> UtilityBrain:
    """The user-model brain behind ``brain``: itself, an LLM brain's decision model, or the model's defaults."""
    from recworld.agents.social import SocialVoice

    if isinstance(brain, UtilityBrain):
        return brain
    if isinstance(brain, SocialVoice):
        return brain.utility
    return UtilityBrain()


def item_utilities(world: World, model: UtilityBrain, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(len(users), len(items)) each item's utility minus the no-click utility, shown alone (the user model's kernel)."""
    users = np.asarray(users, np.int64)
    items = np.asarray(items, np.int64)
    b, n = users.size, items.size
    out = np.empty((b * n, 1))
    UK.utilities(model.record, world.state, world.items, world.platform, np.repeat(users, n), np.tile(items, b).reshape(-1, 1), out)
    return out.reshape(b, n)


def draw_intents(world: World, model: UtilityBrain, users: np.ndarray, rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
    """(len(users),) the item each user is after, drawn from their taste among items they have not seen."""
    n = len(world.catalog)
    items = np.arange(n)
    util = item_utilities(world, model, users, items) / max(temperature, 1e-6)
    util[world.seen[np.asarray(users, np.int64), :n]] = -np.inf
    util -= util.max(axis=1, keepdims=True)
    p = np.exp(util)
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(len(users))
    return np.minimum((p.cumsum(axis=1) < u[:, None]).sum(axis=1), n - 1).astype(np.int64)


def top_items(world: World, model: UtilityBrain, user: int, k: int) -> np.ndarray:
    """The ``k`` unseen items ``user`` likes most under the user model (target-free conversations' reference set)."""
    return top_items_of(world, model, np.array([user]), k)[0]


def top_items_of(world: World, model: UtilityBrain, users: np.ndarray, k: int) -> np.ndarray:
    """(len(users), k) each user's ``k`` unseen items they like most under the user model, best first (ties by item id)."""
    n = len(world.catalog)
    users = np.asarray(users, np.int64)
    util = item_utilities(world, model, users, np.arange(n))
    util[world.seen[users, :n]] = -np.inf
    k = min(k, n)
    b = users.size
    out = np.empty((b, k), np.int64)
    if not b:
        return out
    # The first k of a stable descending sort (ties by item id), without sorting the whole catalog:
    # every item at least as good as the k-th best, then the exact order among those.
    cut = util[np.arange(b), np.argpartition(-util, k - 1, axis=1)[:, k - 1]] if k < n else np.full(b, -np.inf)
    ge = util >= cut[:, None]
    exact = ge.sum(axis=1) == k  # no tie at the cut (nearly always): all rows at once
    rows = np.flatnonzero(exact)
    if rows.size:
        cand = np.nonzero(ge[rows])[1].reshape(rows.size, k)  # item ids ascending in each row
        out[rows] = np.take_along_axis(cand, np.argsort(-util[rows[:, None], cand], axis=1, kind="stable"), axis=1)
    for r in np.flatnonzero(~exact).tolist():
        cand = np.flatnonzero(ge[r])
        out[r] = cand[np.lexsort((cand, -util[r, cand]))][:k]
    return out


def decide(world: World, model: UtilityBrain, users: np.ndarray, slates: np.ndarray, draws: np.ndarray) -> PageDecision:
    """The users' decisions on pages of offered items: :func:`recworld.usermodel.kernels.decide_pages`, as on the feed."""
    b, k = slates.shape
    watched = np.empty((b, k), bool)
    frac = np.empty((b, k))
    ratings = np.empty((b, k))
    leave = np.empty(b, bool)
    UK.decide_pages(
        model.record, world.state, world.items, world.platform, np.asarray(users, np.int64), np.asarray(slates, np.int64), draws, watched, frac, ratings, leave
    )
    return PageDecision(watched=watched, ratings=ratings, leave=leave, watch_frac=frac)


@dataclass(frozen=True)
class ItemAttributes:
    """An item as a conversation talks about it."""

    genres: tuple[str, ...]
    era: str | None
    popularity: str

    def value(self, attribute: str) -> str | None:
        """The item's value of ``attribute`` (the first genre for ``genre``)."""
        if attribute == "genre":
            return self.genres[0].lower() if self.genres else None
        if attribute == "era":
            return self.era
        return self.popularity

    def matches(self, attribute: str, value: str) -> bool:
        """Whether the item has ``value`` for ``attribute``."""
        if attribute == "genre":
            return value in (g.lower() for g in self.genres)
        return self.value(attribute) == value


def attributes(world: World, item: int) -> ItemAttributes:
    """Genre, era and popularity of ``item`` (popularity from the user model's fame)."""
    cat = world.catalog
    y = int(cat.years[item])
    genres = tuple(g for g in cat.tags[item] if g.lower() not in ("unknown",))
    fame = float(world.items.fame[item])
    return ItemAttributes(genres=genres, era=decade_word(y) if y > 0 else None, popularity="well-known" if fame >= WELL_KNOWN else "lesser-known")


class AttributeIndex:
    """Every item's attributes as arrays, for fast filtering (rebuilt when the catalog grows).

    Args:
        world: the world (catalog tags and years, the user model's fame).
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self._n = -1
        self._build()

    def _build(self) -> None:
        w = self.world
        cat = w.catalog
        n = len(cat)
        self.genre_col = {t.lower(): j for j, t in enumerate(cat.tag_names)}
        self.genres = cat.tag_matrix[:n] > 0
        self.era = np.array([decade_word(int(y)) if y > 0 else "" for y in cat.years[:n]])
        self.well_known = np.asarray(w.items.fame[:n]) >= WELL_KNOWN
        self._attrs: dict[int, ItemAttributes] = {}
        self._masks: dict[tuple[str, str], np.ndarray] = {}
        #: Conversational agents' fits over the whole catalog, by what the user said (see ``agents.fit_mask``).
        self.fit_cache: dict[Any, np.ndarray] = {}
        self._n = n

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_masks", {})  # checkpoints written before the masks were kept
        state.setdefault("fit_cache", {})
        self.__dict__.update(state)

    def attributes(self, item: int) -> ItemAttributes:
        """:func:`attributes` of ``item``, kept (an item's genres, year and fame do not change)."""
        if len(self.world.catalog) != self._n:
            self._build()
        a = self._attrs.get(item)
        if a is None:
            a = self._attrs[item] = attributes(self.world, item)
        return a

    def matching(self, items: np.ndarray, attribute: str, value: str) -> np.ndarray:
        """(len(items),) bool: which ``items`` have ``value`` for ``attribute``."""
        if len(self.world.catalog) != self._n:
            self._build()
        return self.mask(attribute, value)[np.asarray(items, np.int64)]

    def mask(self, attribute: str, value: str) -> np.ndarray:
        """(catalog size,) bool: which items have ``value`` for ``attribute`` (kept: agents filter the whole catalog every turn)."""
        if len(self.world.catalog) != self._n:
            self._build()
        key = (attribute, value)
        m = self._masks.get(key)
        if m is None:
            if attribute == "genre":
                j = self.genre_col.get(value)
                m = self.genres[:, j].copy() if j is not None else np.zeros(self._n, bool)
            elif attribute == "era":
                m = self.era == value
            elif attribute == "popularity":
                m = self.well_known == (value == "well-known")
            else:
                m = np.zeros(self._n, bool)
            self._masks[key] = m
        return m


__all__ = [
    "ATTRIBUTES",
    "AttributeIndex",
    "WELL_KNOWN",
    "ItemAttributes",
    "attributes",
    "decide",
    "draw_intents",
    "item_utilities",
    "top_items",
    "top_items_of",
    "user_model_of",
]
