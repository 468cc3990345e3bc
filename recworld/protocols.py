"""Protocols through which the World receives its users, brains and recommenders (injection)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from recworld.events import EventBatch
from recworld.kpis import TickRecord
from recworld.payloads import Author
from recworld.state import UserState
from recworld.usermodel.kernels import ItemTable, Platform

if TYPE_CHECKING:  # pragma: no cover
    from recworld.catalog import Catalog
    from recworld.world import World


@dataclass
class PageDecision:
    """A brain's decisions for a batch of pages (one page per user).

    Attributes:
        watched: (B, k) bool, item watched.
        ratings: (B, k) float, rating 1..5 or NaN when not rated.
        leave: (B,) bool, the user leaves after this page.
        watch_frac: (B, k) float in [0, 1], share of the item watched (0 if skipped).
        feelings: user index in batch -> a sentence on how the page felt.
        instructions: user index in batch -> a reflective instruction for the recommender.
        fallback: (B,) bool, an LLM decision fell back to the utility model.
        authored: user index in batch -> who wrote that user's texts ("llm" or "template");
            the world stores it as the FEELING/INSTRUCTION :class:`~recworld.payloads.AuthoredPayload`.
    """

    watched: np.ndarray
    ratings: np.ndarray
    leave: np.ndarray
    watch_frac: np.ndarray | None = None
    feelings: dict[int, str] = field(default_factory=dict)
    instructions: dict[int, str] = field(default_factory=dict)
    fallback: np.ndarray | None = None
    authored: dict[int, Author] = field(default_factory=dict)


@dataclass(frozen=True)
class PageContext:
    """What a brain sees when a batch of users each look at a page: read-only views, never the world.

    Attributes:
        tick: the current tick.
        page: page number within the session (0 = first page) of the batch's first user.
        users: (B,) user ids.
        slates: (B, k) item ids shown.
        draws: (B, 4k + 2) uniforms for this page, laid out as
            :class:`~recworld.usermodel.draws.PageDraws` (the user model takes
            its randomness from them; other brains may ignore them).
        state: every user's arrays (:class:`~recworld.state.UserState`), read-only.
        items: the user model's item table, read-only.
        platform: what was shown and watched so far, read-only.
        catalog: the items' metadata (titles, texts, tags, content embeddings).
        max_pages: pages a session may last at most.
    """

    tick: int
    page: int
    users: np.ndarray
    slates: np.ndarray
    draws: np.ndarray
    state: UserState
    items: ItemTable
    platform: Platform
    catalog: Catalog
    max_pages: int


@runtime_checkable
class Brain(Protocol):
    """Decides, for a batch of users each looking at a page, what they do."""

    name: str

    def decide(self, ctx: PageContext) -> PageDecision:
        """Decide watch/skip, ratings and leave for ``ctx.users`` shown ``ctx.slates`` (B, k)."""
        ...


@dataclass
class RecContext:
    """What a recommender may see when it serves pages.

    Attributes:
        tick: current tick.
        n_items: items in the catalog now (it grows when users post).
        item_embeddings: (n_items, d) content features of items.
        seen: (n_users, >= n_items) bool, items already shown to each user;
            recommenders should not serve them again.
        rng: the recommender's own generator.
        page: page number within the session (0 = first page).
        instructions: user -> latest reflective instruction text.
        instruction_embeddings: user -> embedding of that instruction (catalog space).
    """

    tick: int
    n_items: int
    item_embeddings: np.ndarray
    seen: np.ndarray
    rng: np.random.Generator
    page: int = 0
    instructions: dict[int, str] = field(default_factory=dict)
    instruction_embeddings: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class Feedback:
    """What happened on a batch of pages, passed to ``Recommender.observe``.

    Attributes:
        tick: the tick.
        users: (B,) user indices.
        slates: (B, k) items served.
        watched: (B, k) bool.
        ratings: (B, k) float (NaN when not rated).
        leave: (B,) bool.
        events: the event batch of these pages (including instructions).
        instructions: user -> instruction text given on these pages.
    """

    tick: int
    users: np.ndarray
    slates: np.ndarray
    watched: np.ndarray
    ratings: np.ndarray
    leave: np.ndarray
    events: EventBatch
    instructions: dict[int, str] = field(default_factory=dict)


@runtime_checkable
class Recommender(Protocol):
    """Serves slates and learns from feedback."""

    name: str

    def setup(self, n_users: int, item_embeddings: np.ndarray, rng: np.random.Generator) -> None:
        """Called once before the first tick."""
        ...

    def recommend(self, users: np.ndarray, k: int, context: RecContext) -> np.ndarray:
        """Return (len(users), k) distinct, unseen item indices."""
        ...

    def observe(self, feedback: Feedback) -> None:
        """Learn from a batch of page feedback."""
        ...


@runtime_checkable
class Population(Protocol):
    """Creates the users of a world: their mesa agents and their numeric state."""

    def populate(self, world: World) -> None:
        """Create one mesa agent per user and fill ``world.users`` (a :class:`~recworld.state.UserArrays`)."""
        ...


@runtime_checkable
class TickObserver(Protocol):
    """Anything that wants each tick's events and metrics (storage, live views)."""

    def on_tick(self, world: World, events: EventBatch, metrics: TickRecord) -> None: ...
