"""Protocols through which the World receives its users, brains, recommenders and layers (injection).

These are RecWorld's declared extension points: the World calls what is
declared here and nothing else (no hooks looked up with ``getattr``, no
attributes attached to the World from outside).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from recworld.events import EventBatch
from recworld.kpis import TickRecord
from recworld.payloads import Author
from recworld.seen import SeenMatrix
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
        seen: (n_users, >= n_items) items already shown to each user, one bit
            each (:class:`~recworld.seen.SeenMatrix`: ``seen[users]`` gives their
            dense ``bool`` rows); recommenders should not serve them again.
        rng: the recommender's own generator.
        page: page number within the session (0 = first page).
        instructions: user -> latest reflective instruction text.
        instruction_embeddings: user -> embedding of that instruction (catalog space).
    """

    tick: int
    n_items: int
    item_embeddings: np.ndarray
    seen: SeenMatrix
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


@runtime_checkable
class RecorderSink(Protocol):
    """What a layer may report to the run's recorder besides events (implemented by ``storage.RunRecorder``)."""

    def add_edges(self, edges: Iterable[tuple[int, int, int]]) -> None:
        """Follow edges ``(src, dst, tick)`` created."""
        ...

    def remove_edges(self, edges: Iterable[tuple[int, int, int]]) -> None:
        """Follow edges ``(src, dst, tick)`` removed at ``tick``."""
        ...

    def add_items(self, rows: Iterable[dict[str, Any]]) -> None:
        """Catalog items created during the run (``Item`` table fields)."""
        ...

    def add_llm_call(self, record: Any) -> None:
        """One LLM call's accounting (``LLMCall`` table fields)."""
        ...

    def add_memory(self, user_id: int, tick: int, kind: str, importance: float, text: str) -> None:
        """One memory a user formed."""
        ...


# ----------------------------------------------------------------- conversations
@dataclass(frozen=True)
class Message:
    """One turn of a conversation, as both sides see it.

    Attributes:
        role: ``user`` or ``agent``.
        act: what the turn does (:data:`recworld.payloads.TurnAct`).
        text: the utterance.
        items: item ids it mentions.
        attribute: the attribute asked about, answered, or given as a rejection's reason.
        value: the answer's (or the reason's) value, e.g. ``comedy``, ``1990s``, ``lesser-known``.
    """

    role: str
    act: str
    text: str
    items: tuple[int, ...] = ()
    attribute: str | None = None
    value: str | None = None


@dataclass
class DialogueState:
    """What a conversational agent knows of a conversation when it takes its turn (it must not change it).

    Attributes:
        conversation: the conversation's id in the run.
        user: the user's id.
        tick: the current tick.
        turn: agent turns taken so far.
        messages: the transcript so far, oldest first.
        known: attribute -> value the user has stated they want.
        avoid: attribute -> values the user said they do not want.
        offered: items offered so far (in order).
        accepted: items the user accepted.
        profile: the agent's own notes on the user (a natural-language profile for LLM agents).
    """

    conversation: int
    user: int
    tick: int
    turn: int = 0
    messages: list[Message] = field(default_factory=list)
    known: dict[str, str] = field(default_factory=dict)
    avoid: dict[str, set[str]] = field(default_factory=dict)
    offered: list[int] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    profile: str = ""

    @property
    def last(self) -> Message | None:
        """The latest message (the user's, when the agent is asked to act)."""
        return self.messages[-1] if self.messages else None


@dataclass(frozen=True)
class AgentAct:
    """A conversational agent's turn.

    Attributes:
        kind: ``ask`` (an attribute), ``recommend`` (items, with a reason),
            ``answer_item`` (facts about an item the user asked about) or ``end``.
        text: what the agent says ("" lets the world write it from a template).
        attribute: the attribute asked about.
        items: items recommended or talked about, by catalog id (only ids a
            tool returned in this conversation reach the user).
        reason: why these items (recommend).
        tools: the tool calls made for this turn (``search``, ``rank:<expert>``, ``facts``).
    """

    kind: str
    text: str = ""
    attribute: str | None = None
    items: tuple[int, ...] = ()
    reason: str = ""
    tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class ItemFacts:
    """What the item-facts tool says about an item."""

    item: int
    title: str
    year: int | None
    genres: tuple[str, ...]
    popularity: str
    era: str | None


@runtime_checkable
class CRSTools(Protocol):
    """The tools a conversational agent calls: catalog search, the recommenders as ranking experts, item facts.

    Every item id a tool returns is remembered for the conversation; the
    world lets an agent recommend only those (InteRecAgent's rule).

    Attributes:
        experts: names of the ranking experts (``search`` first, then the recommenders).
        n_items: items in the catalog.
    """

    experts: tuple[str, ...]
    n_items: int

    def search(self, query: str, k: int, exclude: tuple[int, ...] = ()) -> np.ndarray:
        """The platform's search (:class:`recworld.search.CatalogSearch`): ``k`` item ids, best first."""
        ...

    def rank(self, expert: str, k: int, exclude: tuple[int, ...] = ()) -> np.ndarray:
        """``k`` items for the conversation's user ranked by ranking expert ``expert`` (one of :attr:`experts`)."""
        ...

    def facts(self, item: int) -> ItemFacts:
        """Title, year, genres, era and popularity of ``item``."""
        ...

    def matching(self, items: np.ndarray, attribute: str, value: str) -> np.ndarray:
        """(len(items),) bool: which ``items`` have ``value`` for ``attribute``."""
        ...


@runtime_checkable
class ConversationalAgent(Protocol):
    """The platform's conversational recommender: one act per turn, learning from how conversations went."""

    name: str

    def act(self, state: DialogueState, tools: CRSTools) -> AgentAct:
        """The agent's next turn, given the conversation so far (the last message is the user's)."""
        ...

    def observe(self, state: DialogueState, outcome: str, reward: float) -> None:
        """How a conversation ended (an outcome of :data:`recworld.payloads.ConversationOutcome`) and its reward."""
        ...


@runtime_checkable
class WorldLayer(Protocol):
    """A part of the world beyond sessions: the social layer, an LLM brain's language and memory, ...

    A layer is added with :meth:`World.add_layer` and then driven by the World:

    1. ``attach(world)``: once, when added (set up per-user state, register
       what the world should call, e.g. :meth:`World.set_instruction_encoder`).
    2. ``on_tick_start(world, tick)``: at the start of every tick, before any
       session (e.g. texts written in the background arriving, so an
       instruction reaches the recommender on the user's next page); and
       ``on_tick(world, tick)``: after the sessions of every tick. Both return
       the layer's events (they join the tick's log and metrics). Layers run
       in the order they were added. The layer changes the world's state only
       through World methods.
    3. ``attach_recorder(recorder)``: when a run is recorded
       (:meth:`World.attach_recorder`): report edges, items, LLM calls, memories.
    4. Checkpoint state: a layer is pickled with the world. It leaves out what
       cannot be pickled (connections, LLM runtimes, the recorder) in
       ``__getstate__`` and restores it in ``reattach(world)``, which
       :meth:`World.reattach_layers` calls after a checkpoint is loaded.
    5. ``close()``: at the end of a run (:meth:`World.close`): release servers, files.
    """

    name: str

    def attach(self, world: World) -> None:
        """Called once by :meth:`World.add_layer`."""
        ...

    def on_tick_start(self, world: World, tick: int) -> EventBatch:
        """The layer's actions at the start of ``tick``, before any session; returns their events."""
        ...

    def on_tick(self, world: World, tick: int) -> EventBatch:
        """The layer's actions after the sessions of ``tick``; returns their events."""
        ...

    def attach_recorder(self, recorder: RecorderSink) -> None:
        """Report to ``recorder`` from now on."""
        ...

    def reattach(self, world: World) -> None:
        """After a checkpoint load: restore what was not pickled."""
        ...

    def close(self) -> None:
        """Release what the layer holds (idempotent)."""
        ...
