"""Users search the catalog: the search layer.

A :class:`~recworld.protocols.WorldLayer` that registers a session hook
(:meth:`World.add_session_hook`): when a user's session opens, they search
first with probability ``rate`` × their role's weight. The query comes from
what they are after (an item drawn from their taste by the user model,
:func:`~recworld.agents.conversation.intent.draw_intents`):

- ``known_item`` (with probability ``known_item_share`` × the item's fame):
  they know the title and type some of its words;
- ``explore``: they describe it by genre and era.

With an LLM brain (hybrid, llm) the LLM words the query (one call per
search, ``brain.params.max_search_calls_per_tick``), told what the user is
after (:func:`query_brief`); a query that is not a few words about it, or
names another title, falls back to the template, which is drawn either way.

The platform's search (:class:`recworld.search.CatalogSearch`: embedding
retrieval plus title match, ranked) answers with a page of ``page_size``
results, which the user browses with the user model's page kernel
(:func:`~recworld.agents.conversation.intent.decide`) and the world applies
like a feed page (:meth:`World.serve_page` with the decision): watches,
ratings, satisfaction, the recommender's feedback and every metric count it.
A SEARCH event (text = the query, value = results watched,
:class:`~recworld.payloads.SearchPayload`) precedes the page's events. A
user who leaves after the results page ends the session; the others go on
to the feed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recworld.agents.conversation.intent import attributes, decide, draw_intents, user_model_of
from recworld.agents.conversation.language import display_title
from recworld.errors import ConfigError
from recworld.events import EventBatch, EventType
from recworld.payloads import Author, SearchPayload
from recworld.search import CatalogSearch, title_words
from recworld.usermodel.draws import PageDraws

if TYPE_CHECKING:  # pragma: no cover
    from recworld.agents.brains.utility import UtilityBrain
    from recworld.protocols import RecorderSink
    from recworld.world import World

#: How much more or less than average each role searches.
ROLE_SEARCH = {"explorer": 2.0, "critic": 1.5, "chatter": 1.0, "poster": 1.0, "watcher": 0.6}


class SearchConfig(BaseModel):
    """The scenario's ``search:`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    rate: float = Field(0.1, ge=0, le=1, description="chance a user searches when a session opens (times their role's weight)")
    page_size: int = Field(10, ge=1, le=100, description="results on the page a search returns")
    known_item_share: float = Field(0.5, ge=0, le=1, description="chance (times the item's fame) that a user knows the title they look for")
    title_weight: float = Field(1.0, ge=0, le=10, description="weight of the title match against the embedding cosine")
    encoder: Literal["catalog", "minilm"] = Field(
        "catalog", description="query vectors: word vectors from the catalog's embeddings, or the MiniLM text encoder"
    )
    use_llm: bool = Field(True, description="let an LLM brain (hybrid, llm) write the users' queries; templates otherwise")


@runtime_checkable
class SearchVoice(Protocol):
    """A brain that writes its users' search queries (the LLM brains: hybrid, llm)."""

    def search_text(self, world: World, tick: int, user: int, draft: str, wanted: str, must: tuple[str, ...], allowed: frozenset[int]) -> tuple[str, Author]:
        """The query in the user's words, or the draft; and who wrote it."""
        ...


def parse_section(model: type[BaseModel], section: str, config: dict[str, Any] | None) -> Any:
    """Validate a scenario section dict with ``model``.

    Raises:
        ConfigError: an unknown key or a bad value, named ``<section>.<key>``.
    """
    try:
        return model(**dict(config or {}))
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(p) for p in e["loc"] if not isinstance(p, int)) or "(section)"
        if e["type"] == "extra_forbidden":
            raise ConfigError(f"unknown key '{section}.{loc}'; expected one of: {', '.join(model.model_fields)}") from None
        msg = e["msg"].removeprefix("Value error, ")
        raise ConfigError(f"field '{section}.{loc}': {msg} (got {e.get('input')!r})") from None


def query_text(world: World, item: int, known: bool, rng: np.random.Generator) -> str:
    """What a user types when looking for ``item``: title words when they know it, else its genres and era."""
    if known:
        w = title_words(world.catalog.titles[item])
        if w:
            return " ".join(w[: int(rng.integers(min(2, len(w)), min(4, len(w)) + 1))])
    a = attributes(world, item)
    genres = [g.lower() for g in a.genres[: 1 + int(rng.random() < 0.5)]]
    parts = genres + ([a.era] if a.era and rng.random() < 0.6 else [])
    return " ".join(parts) if parts else "something good"


def query_brief(world: World, item: int, known: bool) -> tuple[str, tuple[str, ...], frozenset[int]]:
    """What an LLM is told the user looks for, the words its query must hold one of, and the titles it may name.

    A user who knows the title looks for it by name; the others describe it
    by genre and era and may name no title (that would change what they are after).
    """
    if known and title_words(world.catalog.titles[item]):
        title = world.catalog.titles[item]
        return f'the film they know as "{display_title(title)}"', tuple(title_words(title)), frozenset({int(item)})
    a = attributes(world, item)
    genres = [g.lower() for g in a.genres]
    kind = " or ".join(genres) or "good"
    wanted = f"a {kind} film" + (f", from the {a.era}" if a.era else "")
    return wanted, (*genres, *([a.era] if a.era else [])), frozenset()


class SearchLayer:
    """Users' searches (see the module docstring).

    Args:
        config: a :class:`SearchConfig`.
    """

    name = "search"

    def __init__(self, config: SearchConfig | None = None) -> None:
        self.config = config or SearchConfig()
        self.searches = 0

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> SearchLayer:
        """Build from the scenario's ``search:`` dict (then ``world.add_layer(layer)``)."""
        return cls(parse_section(SearchConfig, "search", config))

    # ------------------------------------------------------------ protocol
    def attach(self, world: World) -> None:
        c = self.config
        self.engine = CatalogSearch(world.catalog, title_weight=c.title_weight, encoder=c.encoder)
        self.model: UtilityBrain = user_model_of(world.brain)
        self.rng = world.seeder.rng("search")
        self.voice: SearchVoice | None = world.brain if self.config.use_llm and isinstance(world.brain, SearchVoice) else None
        world.add_session_hook(self.on_sessions)

    def on_tick_start(self, world: World, tick: int) -> EventBatch:
        """Nothing before the sessions: searches happen in sessions (a session hook)."""
        return EventBatch.empty()

    def on_tick(self, world: World, tick: int) -> EventBatch:
        return EventBatch.empty()

    def attach_recorder(self, recorder: RecorderSink) -> None:
        """Searches are events and pages: nothing else to report."""

    def reattach(self, world: World) -> None:
        """Nothing is left out of the checkpoint."""

    def close(self) -> None:
        """Nothing to release."""

    # ------------------------------------------------------------- sessions
    def on_sessions(self, world: World, users: np.ndarray) -> np.ndarray:
        """Some of ``users`` search and browse the results; returns those still in session."""
        c = self.config
        roles = _roles(world, users)
        weight = np.array([ROLE_SEARCH.get(r, 1.0) for r in roles])
        searchers = users[self.rng.random(users.size) < c.rate * weight]
        if not searchers.size:
            return users
        left = self.search_and_browse(world, searchers)
        return users[~np.isin(users, left)]

    def search_and_browse(self, world: World, users: np.ndarray) -> np.ndarray:
        """``users`` each search for what they are after and browse the results; returns who left the session."""
        c = self.config
        rng = self.rng
        intents = draw_intents(world, self.model, users, rng)
        known = rng.random(users.size) < c.known_item_share * world.items.fame[intents]
        queries = [query_text(world, int(it), bool(kn), rng) for it, kn in zip(intents, known)]
        authors: list[Author] = ["template"] * users.size
        if self.voice is not None:
            # The templates are drawn first either way: the layer's random stream does not depend on the LLM.
            for r in range(users.size):
                wanted, must, allowed = query_brief(world, int(intents[r]), bool(known[r]))
                queries[r], authors[r] = self.voice.search_text(world, world.tick, int(users[r]), queries[r], wanted, must, allowed)
        k = min(c.page_size, len(world.catalog))
        slates = np.stack([self.engine.search(q, k).items for q in queries])
        dec = decide(world, self.model, users, slates, PageDraws(k).draw(rng, users.size))
        clicks = dec.watched.sum(axis=1)
        payloads = [
            SearchPayload(
                results=slates[r].tolist(),
                clicked=slates[r][dec.watched[r]].tolist(),
                intent="known_item" if known[r] else "explore",
                wanted=int(intents[r]),
                by=authors[r],
            ).dump()
            for r in range(users.size)
        ]
        world.add_events(EventBatch.build(world.tick, users, EventType.SEARCH, values=clicks.astype(np.float64), texts=list(queries), payloads=list(payloads)))
        self.searches += int(users.size)
        res = world.serve_page(users, slates, decision=dec)
        return users[res.leave]


def _roles(world: World, users: np.ndarray) -> list[str]:
    agents = world.user_agents
    if not agents:
        return ["watcher"] * users.size
    return [agents[int(x)].persona.role for x in users]


__all__ = ["ROLE_SEARCH", "SearchConfig", "SearchLayer", "SearchVoice", "parse_section", "query_brief", "query_text"]
