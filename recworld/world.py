"""The World: a mesa.Model that advances the platform one tick at a time.

Users, their brain and the recommender are injected. The hot path (serve
pages, decide, update state, log) works on batches of users at once; mesa
agents remain the handles that give each user an identity, persona and memory.

Mesa is used as Mesa, not beside it: the model's ``rng`` is the run's
"mesa" child stream (recworld.seeding), ``steps`` is the tick, and every user
is a ``mesa.Agent`` registered in the model's ``agents`` AgentSet
(``user_agents`` only indexes them by user id, which an AgentSet cannot).
What Mesa does not do here is schedule: a tick is not ``agents.do("step")``
but one batched pass over all active users, because a Python call per agent
and page is about two orders of magnitude slower than the array kernels of
:mod:`recworld.usermodel.kernels` at 10,000 users.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mesa
import numpy as np

from recworld import metrics as M
from recworld.arrays import add_counts
from recworld.catalog import Catalog
from recworld.config import WorldConfig
from recworld.errors import RecWorldError
from recworld.events import EventBatch, EventType, PageBlock
from recworld.kpis import TickRecord
from recworld.payloads import LEAVE_PAYLOADS, LEAVE_REASONS, AuthoredPayload
from recworld.protocols import Brain, Feedback, PageContext, PageDecision, Population, RecContext, Recommender, TickObserver, WorldLayer
from recworld.seeding import Seeder
from recworld.seen import SeenMatrix
from recworld.state import UserArrays, UserState
from recworld.threads import one_blas_thread
from recworld.usermodel import kernels as UK
from recworld.usermodel.draws import END_WIDTH, PageDraws, uniforms
from recworld.usermodel.items import content_item_table, copy_item_row, grow_item_table
from recworld.usermodel.kernels import ItemTable, Platform
from recworld.usermodel.params import dynamics_record

TickHook = Callable[["World", int], EventBatch]
#: Called when sessions open, before the feed: ``hook(world, users)`` may serve
#: those users pages of its own (search results, a conversation) and returns
#: the users still in session. Registered by layers with :meth:`World.add_session_hook`.
SessionHook = Callable[["World", np.ndarray], np.ndarray]
_REASON = {r: i for i, r in enumerate(LEAVE_REASONS)}


@dataclass(frozen=True)
class PackedAgents:
    """The user agents in a checkpoint, as their class packed them (``cls.pack_agents``; ``cls.unpack_agents`` makes them again)."""

    cls: type
    state: Any


class World(mesa.Model):
    """A simulated recommendation platform.

    Args:
        catalog: the items.
        population: creates the users (mesa agents + :class:`UserArrays`).
        brain: decides what users do on a page.
        recommender: serves pages and learns from feedback.
        config: session, return and churn dynamics.
        seed: root seed; every subsystem draws from its own child stream.
        name: a name for the world (the scenario's).

    Attributes:
        tick: the next tick to simulate (0-based).
        users: per-user numeric state.
        seen: (n_users, capacity) items each user was shown, one bit each (:class:`~recworld.seen.SeenMatrix`).
        exposure: (capacity,) times each item was shown.
        watch_counts: (capacity,) times each item was watched.
        layers: the :class:`~recworld.protocols.WorldLayer` s added, in order.
        user_agents: the mesa agents of the users (filled by the population).
        light_metrics: skip the exposure/diversity metrics (environments that
            read rewards from decisions set it).
    """

    def __init__(
        self,
        catalog: Catalog,
        population: Population,
        brain: Brain,
        recommender: Recommender,
        config: WorldConfig | None = None,
        seed: int = 0,
        items: ItemTable | None = None,
        name: str = "",
    ) -> None:
        seeder = Seeder(seed)
        # Mesa's own generator is one more named child of the run's seed root.
        super().__init__(rng=seeder.rng("mesa"))
        self.name = name
        self.config = config or WorldConfig()
        self.catalog = catalog
        self.brain = brain
        self.recommender = recommender
        self.seeder = seeder
        self.seed_value = int(seed)
        self._dynamics = dynamics_record(self.config)
        self.world_rng = self.seeder.rng("world")
        self.brain_rng = self.seeder.rng("brain")
        self.rec_rng = self.seeder.rng("recommender")
        self._item_rng = self.seeder.rng("items")
        self.tick = 0
        self.users: UserArrays = UserArrays.allocate(0, catalog.dim)
        self.observers: list[TickObserver] = []
        self.tick_hooks: list[TickHook] = []
        self.session_hooks: list[SessionHook] = []
        self.layers: list[WorldLayer] = []
        self.user_agents: list[Any] = []
        self.instructions: dict[int, str] = {}
        self.instruction_embeddings: dict[int, np.ndarray] = {}
        self.instruction_encoder: Callable[[list[str]], np.ndarray] | None = None
        population.populate(self)
        n = len(self.users)
        if n == 0:
            raise RecWorldError("the population is empty; set population.n_users >= 1")
        cap = len(catalog) + self.config.post_capacity
        self.items: ItemTable = grow_item_table(items if items is not None else content_item_table(catalog), cap)
        if self.items.factors.shape[1] != self.users.taste.shape[1]:
            raise RecWorldError(
                f"users' tastes have {self.users.taste.shape[1]} dimensions but the item table has {self.items.factors.shape[1]}; build both from the same user model"
            )
        self.seen = SeenMatrix(n, cap)
        self.exposure = np.zeros(cap, dtype=np.int64)
        self.watch_counts = np.zeros(cap, dtype=np.int64)
        self.churned_total = 0
        self._active_periods: list[np.ndarray] = []
        self._stats = _TickStats()
        self._batches: list[EventBatch] = []
        # Environments stepping every tick can skip the exposure/diversity metrics (the costly part of a tick's bookkeeping).
        self.light_metrics = False
        self.last_events = EventBatch.empty()
        self.last_metrics: TickRecord | None = None
        self.recommender.setup(n, catalog.embeddings, self.rec_rng)

    # ------------------------------------------------------------------ API
    @property
    def n_users(self) -> int:
        return len(self.users)

    def subscribe(self, observer: TickObserver) -> None:
        """Receive each tick's events and metrics."""
        self.observers.append(observer)

    def add_tick_hook(self, hook: TickHook) -> None:
        """Run ``hook(world, tick)`` after the sessions of each tick (a layer's ``on_tick`` is one)."""
        self.tick_hooks.append(hook)

    def add_session_hook(self, hook: SessionHook) -> None:
        """Run ``hook(world, users)`` when sessions open, before the feed (see :data:`SessionHook`)."""
        self.session_hooks.append(hook)

    def add_events(self, events: EventBatch) -> None:
        """Add a layer's events to the current tick's log, in order with the pages it serves."""
        if len(events):
            self._batches.append(events)

    # --------------------------------------------------------------- layers
    def add_layer(self, layer: WorldLayer) -> None:
        """Attach ``layer`` (see :class:`~recworld.protocols.WorldLayer`): it runs at the start of every tick and after its sessions.

        Layers run in the order they were added. A layer that hears what
        others say (an LLM brain's language pipeline) goes after them.
        """
        if layer in self.layers:
            raise RecWorldError(f"layer {layer.name!r} is already attached to this world")
        layer.attach(self)
        self.layers.append(layer)
        self.add_tick_hook(layer.on_tick)

    def attach_recorder(self, recorder: TickObserver) -> None:
        """Record this world: ``recorder`` receives every tick, and every layer reports to it."""
        for layer in self.layers:
            layer.attach_recorder(recorder)  # type: ignore[arg-type]  # a RunRecorder is both
        self.subscribe(recorder)

    def reattach_layers(self) -> None:
        """After loading a checkpoint: let every layer restore what was not pickled."""
        for layer in self.layers:
            layer.reattach(self)

    def close(self) -> None:
        """Close every layer (LLM runtimes, servers); the world can still be stepped (layers reopen lazily)."""
        for layer in self.layers:
            layer.close()

    def set_instruction_encoder(self, encoder: Callable[[list[str]], np.ndarray] | None) -> None:
        """Embed users' reflective instructions with ``encoder`` (texts -> vectors in the catalog's space)."""
        self.instruction_encoder = encoder

    def set_light_metrics(self, light: bool = True) -> None:
        """Skip the exposure/diversity metrics of each tick (the costly part of its bookkeeping)."""
        self.light_metrics = light

    # ------------------------------------------------- state changed by layers
    def count_social_watches(self, users: np.ndarray, items: np.ndarray) -> None:
        """Account watches of ``items`` by ``users`` that came from outside a page (the social feed)."""
        users = np.asarray(users, np.int64)
        items = np.asarray(items, np.int64)
        self.seen[users, items] = True
        add_counts(self.watch_counts, items)
        add_counts(self.users.watches, users)

    def shift_tastes(self, users: np.ndarray, item: int, rate: float) -> None:
        """Move ``users``' tastes a share ``rate`` towards ``item`` (the user model's taste shift, e.g. after a chat)."""
        UK.shift_tastes(self.state, self.items, np.asarray(users, np.int64), item, rate)

    def ensure_item_capacity(self) -> None:
        """Grow per-item arrays when user-created items outgrow the reserved room."""
        n = len(self.catalog)
        cap = self.seen.capacity
        if n <= cap:
            return
        extra = max(n - cap, cap // 2)
        self.items = grow_item_table(self.items, cap + extra)
        self.seen.grow(cap + extra)
        self.exposure = np.concatenate([self.exposure, np.zeros(extra, np.int64)])
        self.watch_counts = np.concatenate([self.watch_counts, np.zeros(extra, np.int64)])

    def add_item(self, title: str, text: str, embedding: np.ndarray, tags: tuple[str, ...] = (), creator: int = -1, like: int | None = None) -> int:
        """Add a user-created item (a post) now; returns its id.

        The user model sees it like ``like`` (the item it is about: the same
        factors with a little noise, less appeal), or as an unknown item.
        """
        idx = self.catalog.add_item(title, text, embedding, tags=tags, creator=creator, tick=self.tick)
        self.ensure_item_capacity()
        if like is not None:
            copy_item_row(self.items, idx, like, self._item_rng)
        return idx

    def mark_seen(self, users: np.ndarray, items: np.ndarray) -> None:
        """Record that ``users`` already know ``items`` (e.g. their history before the run): never shown again as new."""
        self.seen[np.asarray(users, np.int64), np.asarray(items, np.int64)] = True

    def context(self, page: int = 0) -> RecContext:
        """What the recommender sees now."""
        n_items = len(self.catalog)
        return RecContext(
            tick=self.tick,
            n_items=n_items,
            item_embeddings=self.catalog.embeddings,
            seen=self.seen,
            rng=self.rec_rng,
            page=page,
            instructions=self.instructions,
            instruction_embeddings=self.instruction_embeddings,
        )

    def step(self) -> None:
        """Simulate one tick: sessions page by page, social hooks, metrics, observers.

        BLAS runs on one thread during the tick (see :mod:`recworld.threads`).
        """
        with one_blas_thread():
            active = self.begin_tick()
            while active.size:
                result = self.serve_page(active)
                active = active[~result.leave]
            self.end_tick()

    def begin_tick(self, only: np.ndarray | None = None) -> np.ndarray:
        """Start the sessions due this tick; returns the users now in session.

        Finer-grained than :meth:`step` so environments can control pages:
        ``begin_tick()``, then :meth:`serve_page` until nobody is in session,
        then :meth:`end_tick`.

        Args:
            only: start the sessions of these users (not churned, not in
                session) instead of those due (an env that picks its user).
        """
        self._stats = _TickStats()
        self._batches = []
        self._page_of: dict[int, int] = {}
        for layer in self.layers:  # before any session: e.g. texts written in earlier ticks arrive
            self._batches.append(layer.on_tick_start(self, self.tick))
        u = self.users
        if only is None:
            due = np.flatnonzero(~u.churned & ~u.in_session & (u.next_return <= self.tick))
        else:
            only = np.asarray(only, np.int64)
            due = only[~u.churned[only] & ~u.in_session[only]]
        if due.size:
            self._batches.append(self._start_sessions(due, self.tick, self._stats))
            for hook in self.session_hooks:
                due = np.asarray(hook(self, due), np.int64)
                if not due.size:
                    break
        return due

    def start_sessions(self, users: np.ndarray) -> None:
        """Start sessions for ``users`` now (environments whose users come back on their own clock).

        The time away (for fatigue recovery) is ``tick - last_session``; callers
        set ``last_session`` to model a different away time.
        """
        if users.size:
            self._batches.append(self._start_sessions(np.asarray(users, np.int64), self.tick, self._stats))

    def tick_events(self, since: int = 0) -> EventBatch:
        """The events of the current tick so far (for tick hooks such as the social layer).

        Args:
            since: only those logged after :meth:`event_mark` returned this.
        """
        return EventBatch.concat(self._batches[since:])

    def event_mark(self) -> int:
        """A mark of the tick's events so far: ``tick_events(since=mark)`` returns the events logged after it."""
        return len(self._batches)

    def end_sessions(self, users: np.ndarray) -> None:
        """End the sessions of those of ``users`` still in session now, as :meth:`end_tick` ends leftover sessions
        (an env whose users' sessions end at different times within a tick)."""
        users = np.asarray(users, np.int64)
        users = users[self.users.in_session[users]]
        if users.size:
            self._batches.append(self._end_sessions(users, self.tick, self._stats))

    def in_session(self) -> np.ndarray:
        """Users currently in a session."""
        return np.flatnonzero(self.users.in_session)

    def serve_page(self, users: np.ndarray, slates: np.ndarray | None = None, decision: PageDecision | None = None) -> PageResult:
        """Serve one page to each of ``users`` (all in session) and apply their decisions.

        Args:
            users: users in session.
            slates: (len(users), k) items to show; ``None`` asks the recommender.
            decision: the users' decisions on ``slates`` when a layer made
                them with the user model (search results, items offered in a
                conversation); ``None`` asks the brain. Either way the page is
                applied, logged and counted like a feed page.

        Returns:
            The page's events, decisions and who left.
        """
        page = int(self.users.pages_in_session[users].min()) if users.size else 0
        ev, leave, dec, slates = self._serve_page(users, page, self.tick, self._stats, slates, decision)
        self._batches.append(ev)
        ending = users[leave]
        end_ev = EventBatch.empty()
        if ending.size:
            reasons = self._leave_reasons(ending, np.asarray(dec.leave, bool)[leave], np.asarray(dec.watched, bool)[leave].any(axis=1))
            end_ev = self._end_sessions(ending, self.tick, self._stats, reasons)
            self._batches.append(end_ev)
        return PageResult(users, slates, dec, leave, EventBatch.concat([ev, end_ev]))

    def end_tick(self, close_sessions: bool = True) -> TickRecord:
        """Close the tick: end leftover sessions, run hooks, compute metrics, notify observers.

        Args:
            close_sessions: end sessions still open; environments whose
                sessions span ticks pass ``False``.
        """
        tick = self.tick
        if close_sessions:
            self.end_sessions(self.in_session())
        for hook in self.tick_hooks:
            self._batches.append(hook(self, tick))
        events = EventBatch.concat(self._batches)
        metrics = self._tick_metrics(tick, events, self._stats)
        self.last_events = events
        self.last_metrics = metrics
        self._batches = []
        # The tick is complete before observers see it, so a checkpoint taken
        # by an observer resumes at the next tick.
        self.tick += 1
        self.steps = self.tick
        for obs in self.observers:
            obs.on_tick(self, events, metrics)
        return metrics

    def apply_instructions(self, users: np.ndarray, texts: list[str], payloads: list[dict[str, Any] | None] | None = None) -> EventBatch:
        """Users tell the recommender what they want: it reads ``texts`` from the next page on; returns the INSTRUCTION events.

        Args:
            users: who gives an instruction (one text each).
            texts: the instructions.
            payloads: per-event payloads (who wrote the text), or None.
        """
        users = np.asarray(users, np.int64)
        if users.size == 0:
            return EventBatch.empty()
        self.instructions.update({int(u): t for u, t in zip(users.tolist(), texts)})
        if self.instruction_encoder is not None:
            vecs = self.instruction_encoder(list(texts))
            for uid, v in zip(users.tolist(), vecs):
                self.instruction_embeddings[int(uid)] = v
        self._stats.instructions += len(texts)
        return EventBatch.build(self.tick, users, EventType.INSTRUCTION, texts=list(texts), payloads=payloads)

    def advance_clock(self) -> None:
        """Move to the next tick without simulating one (env cores whose users live on their own clock)."""
        self.tick += 1
        self.steps = self.tick

    def run(self, ticks: int, progress: Callable[[int], Any] | None = None) -> None:
        """Step ``ticks`` times, calling ``progress(tick)`` after each."""
        with one_blas_thread():  # once for all the ticks (each step's own block is then free)
            for _ in range(ticks):
                self.step()
                if progress is not None:
                    progress(self.tick)

    def __getstate__(self) -> dict[str, Any]:
        # Observers hold database connections; they are re-attached on resume.
        state = self.__dict__.copy()
        state["observers"] = []
        state["instruction_encoder"] = None
        state.pop("_platform", None)  # a view of arrays stored below
        state.pop("_norms", None)  # a cache of the catalog's (made again on use)
        # The seen matrix (most of the state) pickles as its bits.
        packed = self._packed_agents()
        if packed is not None:
            # A million agent objects and mesa's registries of them were most of a checkpoint's time: their class
            # keeps what they hold, and they are made again on load.
            state["user_agents"] = packed
            state["_agents"], state["_agents_by_type"], state["_all_agents"] = {}, {}, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["seen"], tuple):  # checkpoints written before SeenMatrix: (np.packbits rows, shape), the same layout
            bits, shape = state["seen"]
            state["seen"] = SeenMatrix.from_bits(bits, shape[1])
        self.__dict__.update(state)
        if isinstance(self.user_agents, PackedAgents):
            packed = self.user_agents
            self._all_agents = mesa.agent.AgentSet([], random=self.random)
            self.user_agents = packed.cls.unpack_agents(self, packed.state)

    def _packed_agents(self) -> PackedAgents | None:
        """The user agents as their class packs them (``pack_agents`` / ``unpack_agents``), when they are all the
        model's agents and their class can (it checks they are of that class, made in user order so that made
        again they get the same ids, and hold nothing else); else ``None``."""
        agents = self.user_agents
        if not agents:
            return None
        cls = type(agents[0])
        if not (hasattr(cls, "pack_agents") and hasattr(cls, "unpack_agents")) or len(self._agents) != len(agents):
            return None
        state = cls.pack_agents(agents)
        return None if state is None else PackedAgents(cls, state)

    # ------------------------------------------------------------ internals
    def _start_sessions(self, due: np.ndarray, tick: int, stats: _TickStats) -> EventBatch:
        u = self.users
        first = u.first_session[due] < 0
        away = np.where(first, 0, tick - u.last_session[due])
        UK.start_sessions(self._dynamics, self.state, due, tick)
        self._mark_active(due, tick)
        stats.sessions += int(due.size)
        stats.returns += int((~first).sum())
        types = np.where(first, int(EventType.SESSION_START), int(EventType.RETURN))
        return EventBatch.build(tick, due, types, values=away.astype(np.float64))

    def _mark_active(self, users: np.ndarray, tick: int) -> None:
        period = tick // self.config.period_ticks
        while len(self._active_periods) <= period:
            self._active_periods.append(np.zeros(self.n_users, bool))
        self._active_periods[period][users] = True

    def _validate_slates(self, slates: np.ndarray, b: int, k: int) -> np.ndarray:
        slates = np.asarray(slates)
        name = getattr(self.recommender, "name", type(self.recommender).__name__)
        if slates.shape != (b, k) or not np.issubdtype(slates.dtype, np.integer):
            raise RecWorldError(f"recommender {name!r} returned slates of shape {slates.shape} {slates.dtype}; expected ({b}, {k}) integers")
        n_items = len(self.catalog)
        if slates.size and (slates.min() < 0 or slates.max() >= n_items):
            raise RecWorldError(f"recommender {name!r} returned item ids outside [0, {n_items}); fix its recommend()")
        s = np.sort(slates, axis=1)
        if k > 1 and (s[:, 1:] == s[:, :-1]).any():
            raise RecWorldError(f"recommender {name!r} returned a slate with duplicate items; slates must hold k distinct items")
        return slates.astype(np.int64)

    def page_context(self, users: np.ndarray, slates: np.ndarray, page: int, draws: np.ndarray) -> PageContext:
        """What a brain may see when ``users`` look at ``slates``: read-only views, never the world itself."""
        return PageContext(
            tick=self.tick,
            page=page,
            users=_frozen(users),
            slates=_frozen(slates),
            draws=_frozen(draws),
            state=UserState(*(_frozen(a) for a in self.state)),
            items=ItemTable(*(_frozen(a) for a in self.items)),
            platform=Platform(*(_frozen(a) for a in self.platform)),
            catalog=self.catalog,
            max_pages=self.config.max_pages,
        )

    @property
    def state(self) -> UserState:
        """The users' arrays as the user-model kernels take them."""
        return self.users.view()

    @property
    def platform(self) -> Platform:
        """What was shown and watched, as the user-model kernels take it."""
        p = self.__dict__.get("_platform")
        if p is None or p.seen is not self.seen.bits or p.exposure is not self.exposure or p.watch_counts is not self.watch_counts:
            p = Platform(self.seen.bits, self.exposure, self.watch_counts)
            self.__dict__["_platform"] = p
        return p

    def _serve_page(
        self, active: np.ndarray, page: int, tick: int, stats: _TickStats, slates: np.ndarray | None = None, decision: PageDecision | None = None
    ) -> tuple[EventBatch, np.ndarray, PageDecision, np.ndarray]:
        cfg = self.config
        k = min(cfg.slate_size, len(self.catalog))
        if slates is None:
            slates = self.recommender.recommend(active, k, self.context(page))
        else:
            k = np.asarray(slates).shape[1] if np.asarray(slates).ndim == 2 else k
        slates = self._validate_slates(slates, active.size, k)
        if decision is None:
            draws = self._page_draws(active.size, k)
            dec: PageDecision = self.brain.decide(self.page_context(active, slates, page, draws))
        else:
            dec = decision
        watched = np.ascontiguousarray(dec.watched, bool)
        ratings = np.ascontiguousarray(dec.ratings, np.float64)
        leave = np.array(dec.leave, bool)
        b = active.size
        rows = np.repeat(active, k)
        flat_items = slates.ravel()
        w_items = slates[watched]
        n_w = watched.sum(axis=1)
        rated = ~np.isnan(ratings) & watched
        # The one implementation of how a page changes users and the platform (recworld/usermodel).
        UK.apply_pages(self._dynamics, self.state, self.items, self.platform, active, slates, watched, ratings, leave)

        # --- events --------------------------------------------------------
        positions = np.tile(np.arange(k, dtype=np.float64), b)
        wflat = watched.ravel()
        frac = np.asarray(dec.watch_frac, np.float64).ravel() if dec.watch_frac is not None else wflat.astype(np.float64)
        batches = []
        if cfg.log_impressions:
            batches.append(EventBatch.build(tick, rows, EventType.IMPRESSION, flat_items, positions))
        types = np.where(wflat, int(EventType.WATCH), int(EventType.SKIP))
        values = np.where(wflat, frac, positions)
        if cfg.log_skips:
            batches.append(EventBatch.build(tick, rows, types, flat_items, values))
        else:
            batches.append(EventBatch.build(tick, rows[wflat], types[wflat], flat_items[wflat], values[wflat]))
        rflat = rated.ravel()
        if rflat.any():
            batches.append(EventBatch.build(tick, rows[rflat], EventType.RATE, flat_items[rflat], ratings.ravel()[rflat]))
        # The event log stores these per-item events as one row per page (recworld.storage.pagelog).
        n_item_events = sum(len(x) for x in batches)
        block = PageBlock(0, n_item_events, active, slates, watched, frac.reshape(b, k), np.where(rated, ratings, np.nan), cfg.log_impressions, cfg.log_skips)
        if dec.feelings:
            us = sorted(dec.feelings)
            batches.append(EventBatch.build(tick, active[us], EventType.FEELING, texts=[dec.feelings[i] for i in us], payloads=[_by(dec, i) for i in us]))
        instr: dict[int, str] = {}
        if dec.instructions:
            us = sorted(dec.instructions)
            instr = {int(active[i]): dec.instructions[i] for i in us}
            batches.append(self.apply_instructions(active[us], [dec.instructions[i] for i in us], [_by(dec, i) for i in us]))
        if dec.fallback is not None and np.any(dec.fallback):
            fb = np.flatnonzero(dec.fallback)
            batches.append(EventBatch.build(tick, active[fb], EventType.FALLBACK))
        ev = EventBatch.concat(batches)
        ev.pages.append(block)

        stats.pages += b
        stats.impressions += b * k
        stats.watches += int(n_w.sum())
        stats.ratings += int(rated.sum())
        stats.rating_sum += float(ratings[rated].sum())
        stats.watched_items.append(w_items)
        if k > 1 and not self.light_metrics:
            shown_div, watched_div = M.slate_diversity(self.catalog.embeddings, slates, watched, self._embedding_norms())
            stats.diversity.append(shown_div)
            stats.consumption.append(watched_div)

        self.recommender.observe(Feedback(tick, active, slates, watched, ratings, leave, ev, instr))
        return ev, leave, dec, slates

    def _embedding_norms(self) -> np.ndarray:
        """The catalog vectors' squared norms, for the slate diversities: computed again only when the catalog's
        array is replaced (items added), not for every page round."""
        emb = self.catalog.embeddings
        cached = self.__dict__.get("_norms")
        if cached is None or cached[0] is not emb:
            cached = self._norms = (emb, M.squared_norms(emb))
        return cached[1]

    def _page_draws(self, rows: int, k: int) -> np.ndarray:
        """The uniforms a page's decisions take (the brain's stream)."""
        return PageDraws(k).draw(self.brain_rng, rows)

    def _end_draws(self, rows: int) -> np.ndarray:
        """The uniforms session ends take (churn, time away; the world's stream)."""
        return uniforms(self.world_rng, (rows, END_WIDTH))

    def _leave_reasons(self, ending: np.ndarray, chose: np.ndarray, watched_any: np.ndarray) -> np.ndarray:
        """Why each of ``ending`` leaves: indices into :data:`~recworld.payloads.LEAVE_REASONS`.

        From what the world knows after the page: the page limit when the brain
        did not choose to leave; else nothing watched on the last page, else
        fatigue at or above ``config.tired_fatigue``, else satisfied enough.
        """
        tired = self.users.fatigue[ending] >= self.config.tired_fatigue
        code = np.where(tired, _REASON["tired"], _REASON["satisfied"])
        code = np.where(watched_any, code, _REASON["nothing_to_watch"])
        return np.where(chose, code, _REASON["page_limit"]).astype(np.int8)

    def _end_sessions(self, ending: np.ndarray, tick: int, stats: _TickStats, reasons: np.ndarray | None = None) -> EventBatch:
        u = self.users
        churn = np.zeros(ending.size, bool)
        gap = np.zeros(ending.size, np.int64)
        UK.end_sessions(self._dynamics, self.state, ending, tick, self._end_draws(ending.size), churn, gap)
        if reasons is None:  # sessions closed by end_tick, not by a page
            reasons = np.full(ending.size, _REASON["session_closed"], np.int8)
        payloads = [LEAVE_PAYLOADS[c] for c in reasons.tolist()]
        leave_ev = EventBatch.build(tick, ending, EventType.LEAVE, values=u.pages_in_session[ending].astype(np.float64), payloads=payloads)
        churners = ending[churn]
        self.churned_total += int(churners.size)
        stats.churned += int(churners.size)
        return EventBatch.concat([leave_ev, EventBatch.build(tick, churners, EventType.CHURN)])

    def retention_rows(self) -> list[tuple[int, int, int, int]]:
        """Cohort retention rows (cohort, k, size, active) over complete periods so far."""
        n_periods = self.tick // self.config.period_ticks
        if n_periods == 0 or not self._active_periods:
            return []
        active = np.stack(self._active_periods[:n_periods] + [np.zeros(self.n_users, bool)] * max(0, n_periods - len(self._active_periods)), axis=1)
        first = np.where(self.users.first_session >= 0, self.users.first_session // self.config.period_ticks, -1)
        return M.retention_table(active, first, n_periods)

    def _tick_metrics(self, tick: int, events: EventBatch, stats: _TickStats) -> TickRecord:
        n_items = len(self.catalog)
        watched = np.concatenate(stats.watched_items) if stats.watched_items else np.zeros(0, np.int64)
        div = np.concatenate(stats.diversity) if stats.diversity else np.zeros(0)
        cons = np.concatenate(stats.consumption) if stats.consumption else np.zeros(0)
        cons = cons[~np.isnan(cons)]
        alive = ~self.users.churned
        t = events.type
        return TickRecord(
            tick=tick,
            active_users=stats.sessions,
            sessions=stats.sessions,
            returns=stats.returns,
            pages=stats.pages,
            pages_per_session=stats.pages / stats.sessions if stats.sessions else 0.0,
            impressions=stats.impressions,
            watches=stats.watches,
            watch_rate=stats.watches / stats.impressions if stats.impressions else 0.0,
            ratings=stats.ratings,
            mean_rating=stats.rating_sum / stats.ratings if stats.ratings else None,
            churned=stats.churned,
            churned_total=self.churned_total,
            alive_users=int(alive.sum()),
            coverage=float((self.exposure[:n_items] > 0).mean()),
            diversity=float(div.mean()) if div.size else None,
            consumption_diversity=float(cons.mean()) if cons.size else None,
            gini=None if self.light_metrics else M.gini(self.exposure[:n_items]),
            novelty=None if self.light_metrics else M.novelty(watched, self.watch_counts[:n_items]),
            mean_satisfaction=float(self.users.satisfaction[alive].mean()) if alive.any() else 0.0,
            population_diversity=None if self.light_metrics else M.spread(self.users.recent, alive),
            posts=int((t == EventType.POST).sum()),
            chats=int((t == EventType.CHAT).sum()),
            social_watches=int((t == EventType.SOCIAL_WATCH).sum()),
            instructions=stats.instructions,
            searches=int((t == EventType.SEARCH).sum()),
            search_clicks=int(((t == EventType.SEARCH) & (events.value > 0)).sum()),
            conversations=int((t == EventType.CONVERSATION_END).sum()),
            conversation_turns=int((t == EventType.CONVERSE).sum()),
            conversation_successes=int(((t == EventType.CONVERSATION_END) & (events.item >= 0)).sum()),
        )


def _frozen(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


def _by(dec: PageDecision, i: int) -> dict[str, str] | None:
    who = dec.authored.get(i)
    return None if who is None else AuthoredPayload(by=who).dump()


@dataclass
class PageResult:
    """What happened on one page for a batch of users."""

    users: np.ndarray
    slates: np.ndarray
    decision: PageDecision
    leave: np.ndarray
    events: EventBatch


class _TickStats:
    __slots__ = (
        "sessions",
        "returns",
        "pages",
        "impressions",
        "watches",
        "ratings",
        "rating_sum",
        "churned",
        "instructions",
        "watched_items",
        "diversity",
        "consumption",
    )

    def __init__(self) -> None:
        self.sessions = self.returns = self.pages = self.impressions = 0
        self.watches = self.ratings = self.churned = self.instructions = 0
        self.rating_sum = 0.0
        self.watched_items: list[np.ndarray] = []
        self.diversity: list[np.ndarray] = []
        self.consumption: list[np.ndarray] = []


__all__ = ["PageResult", "SessionHook", "TickHook", "World"]
