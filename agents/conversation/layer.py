"""The conversation channel: users talk with the platform's conversational agent, turn by turn.

A :class:`~recworld.protocols.WorldLayer` that registers a session hook
(:meth:`World.add_session_hook`). When a user's session opens, they open a
conversation first with probability ``rate`` × their role's weight. A
conversation (:meth:`ConversationLayer.converse`):

1. The user gets a hidden :class:`~recworld.agents.conversation.user.Intent`
   (``target`` or ``target_free`` mode) and a turn budget from their
   patience trait, and opens with a request (sometimes naming one attribute).
2. Each agent turn: the agent (:class:`~recworld.protocols.ConversationalAgent`,
   ``crs:`` in the scenario) acts — ask an attribute, recommend items with a
   reason, answer about an item, end — calling tools (:class:`WorldTools`:
   search, the recommender as ranking expert, item facts). Only items a tool
   returned in this conversation reach the user; others are dropped and
   counted as errors (InteRecAgent's rule), as are acts the agent fails to
   make (an exception, an unknown act): the conversation goes on or ends
   cleanly (``failed``), never the run.
3. The user replies: answers consistently with the intent; on a
   recommendation, the user model's page kernel decides which items they
   accept (:func:`~recworld.agents.conversation.intent.decide`, as on the
   feed), the world applies that page like a feed page (watches, ratings,
   satisfaction, the recommender's feedback, every metric), and the user
   accepts, or rejects with a reason (an attribute value, never the
   target's title); the kernel's leave ends the conversation and the session.
   When the budget runs out the user leaves (``abandoned``).
4. Every turn is a CONVERSE event (role, act, items;
   :class:`~recworld.payloads.TurnPayload`), the end a CONVERSATION_END
   event (outcome, target, reference set, what was offered per turn;
   :class:`~recworld.payloads.ConversationEndPayload`).

Users who leave end their session; the others go on to the feed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from recworld.agents.conversation import language as L
from recworld.agents.conversation.agents import MAX_ITEMS, POOL, make_crs
from recworld.agents.conversation.intent import ATTRIBUTES, AttributeIndex, decide, draw_intents, top_items_of, user_model_of
from recworld.agents.conversation.user import REFERENCE_SIZE, Intent, intent_for_target, intent_target_free
from recworld.agents.search import _roles, parse_section
from recworld.events import INT_NONE, EventBatch, EventType
from recworld.payloads import Author, ConversationEndPayload, TurnPayload
from recworld.protocols import AgentAct, ConversationalAgent, DialogueState, ItemFacts, Message
from recworld.search import CatalogSearch, title_words
from recworld.usermodel.draws import PageDraws

if TYPE_CHECKING:  # pragma: no cover
    from recworld.agents.brains.utility import UtilityBrain
    from recworld.protocols import RecorderSink
    from recworld.world import World

#: How much more or less than average each role talks with the platform.
ROLE_TALK = {"chatter": 2.0, "explorer": 1.5, "critic": 1.0, "poster": 1.0, "watcher": 0.5}
AGENT_ACTS = ("ask", "recommend", "answer_item", "end")
_CONVERSE = int(EventType.CONVERSE)


@runtime_checkable
class ConversationVoice(Protocol):
    """A brain that words its users' conversation turns (the LLM brains: hybrid, llm)."""

    def conversation_text(
        self, world: World, tick: int, user: int, agent_said: str, draft: str, must: str | None, forbid: tuple[str, ...]
    ) -> tuple[str, Author]:
        """The turn in the user's words, or the draft; and who wrote it."""
        ...


@runtime_checkable
class HasRuntime(Protocol):
    """A conversational agent with an LLM runtime: it reports its calls and is closed with the world."""

    def attach_recorder(self, recorder: RecorderSink) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class ActsInBatches(Protocol):
    """A conversational agent that acts for a round of conversations at once (:class:`~recworld.agents.conversation.agents.PolicyAgent`)."""

    def act_all(self, states: list[DialogueState], tools: list[WorldTools]) -> list[AgentAct]:
        """One act per state, in order (what ``act`` would answer for each)."""
        ...


#: User acts whose wording an LLM brain may write (the others name items and stay templated).
VOICED_ACTS = ("request", "answer", "reject", "leave")


class ConversationConfig(BaseModel):
    """The scenario's ``conversation:`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    rate: float = Field(0.05, ge=0, le=1, description="chance a user opens a conversation when a session opens (times their role's weight)")
    mode: Literal["target", "target_free", "both"] = Field("both", description="hidden target item (iEvaLM), target-free (PEPPER), or half each")
    max_turns: int = Field(8, ge=1, le=50, description="agent turns the most patient user allows (budget = 1 + patience x (max_turns - 1))")
    reveal_first: float = Field(0.3, ge=0, le=1, description="chance the user's opening request names one attribute")
    ask_about_rate: float = Field(0.15, ge=0, le=1, description="chance the user asks about an offered item before deciding")
    use_llm: bool = Field(True, description="let an LLM brain (hybrid, llm) word the users' turns; templates otherwise")


class WorldTools:
    """The tools of one conversation, over the world (see :class:`recworld.protocols.CRSTools`).

    Args:
        world: the world.
        engine: the platform's search.
        user: the conversation's user.
    """

    def __init__(self, world: World, engine: CatalogSearch, index: AttributeIndex, user: int, ranks: RoundRanks | None = None) -> None:
        self.world = world
        self.engine = engine
        self.index = index
        self.user = int(user)
        self.ranks = ranks
        rec = world.recommender
        self.experts: tuple[str, ...] = ("search", getattr(rec, "name", type(rec).__name__))
        self.n_items = len(world.catalog)
        self.returned = ReturnedItems(self.n_items)
        self.fit_cache = index.fit_cache  # the agents' fits over the whole catalog, shared by the world's conversations

    def _note(self, items: np.ndarray) -> np.ndarray:
        self.returned.update(items)
        return items

    def search(self, query: str, k: int, exclude: tuple[int, ...] = ()) -> np.ndarray:
        return self._note(self.engine.ranking(query, k, exclude=np.asarray(exclude, np.int64) if exclude else None))

    def rank(self, expert: str, k: int, exclude: tuple[int, ...] = ()) -> np.ndarray:
        if expert == "search":
            return self.search("", k, exclude)
        if expert not in self.experts:
            raise ValueError(f"unknown ranking expert {expert!r}; tools have {', '.join(self.experts)}")
        w = self.world
        k_all = min(int(k) + len(exclude), len(w.catalog))
        items = self.ranks.get(self.user, k_all) if self.ranks is not None else None
        if items is None:
            items = np.asarray(w.recommender.recommend(np.array([self.user]), k_all, w.context()))[0]
        if exclude:
            items = without(items, exclude)
        return self._note(items[:k].astype(np.int64))

    def facts(self, item: int) -> ItemFacts:
        w = self.world
        a = self.index.attributes(int(item))
        y = int(w.catalog.years[item])
        self.returned.add(int(item))
        return ItemFacts(int(item), w.catalog.titles[item], y if y > 0 else None, a.genres, a.popularity, a.era)

    def matching(self, items: np.ndarray, attribute: str, value: str) -> np.ndarray:
        return self.index.matching(items, attribute, value)


class ReturnedItems:
    """The items the tools returned in one conversation (a mask over the catalog: pools are the whole catalog).

    Args:
        n: catalog size (grows when a larger id is noted).
    """

    def __init__(self, n: int) -> None:
        self.mask = np.zeros(max(int(n), 1), bool)

    def update(self, items: np.ndarray) -> None:
        """Note ``items`` (ids in the catalog)."""
        try:
            self.mask[items] = True
        except IndexError:  # the catalog grew (posts became items)
            items = np.asarray(items, np.int64)
            self.mask = np.concatenate([self.mask, np.zeros(int(items.max()) + 1 - self.mask.size, bool)])
            self.mask[items] = True

    def add(self, item: int) -> None:
        """Note one item."""
        if item >= self.mask.size:
            self.update(np.array([item], np.int64))
        self.mask[item] = True

    def __contains__(self, item: object) -> bool:
        i = int(item)  # type: ignore[call-overload]
        return 0 <= i < self.mask.size and bool(self.mask[i])


def without(items: np.ndarray, exclude: tuple[int, ...]) -> np.ndarray:
    """``items`` (distinct ids) in order, less those in ``exclude`` (a few items): a mask, not a Python loop over a whole-catalog pool."""
    if not exclude or not items.size:
        return items
    ex = np.asarray(exclude, np.int64)
    top = int(max(int(items.max()), int(ex.max()))) + 1
    out = np.zeros(top, bool)
    out[ex[ex >= 0]] = True
    return items[~out[items]]


class RoundRanks:
    """The platform recommender's ranking for every user of a round of conversations, asked once for all when the first agent ranks.

    Within a round the agents act before any page is served, so one
    recommender call for all users sees the same world as one call per agent.

    Args:
        world: the world.
        users: the round's users.
        depth: ranks to ask for (at least what the first request needs).
    """

    def __init__(self, world: World, users: list[int], depth: int) -> None:
        self.world = world
        self.users = users
        self.row = {u: r for r, u in enumerate(users)}
        self.depth = depth
        self.items: np.ndarray | None = None

    def get(self, user: int, k: int) -> np.ndarray | None:
        """``user``'s best ``k`` items, or ``None`` (not in the round, or deeper than asked for: the caller asks the recommender)."""
        r = self.row.get(user)
        if r is None:
            return None
        if self.items is None:
            w = self.world
            self.depth = min(max(self.depth, k), len(w.catalog))
            self.items = np.asarray(w.recommender.recommend(np.array(self.users, np.int64), self.depth, w.context()))
        return self.items[r, :k] if k <= self.items.shape[1] else None


class ConversationLayer:
    """Conversations with the platform's agent (see the module docstring).

    Args:
        config: a :class:`ConversationConfig`.
        agent: the conversational agent.
    """

    name = "conversation"

    def __init__(self, config: ConversationConfig | None = None, agent: ConversationalAgent | None = None) -> None:
        self.config = config or ConversationConfig()
        self.agent = agent if agent is not None else make_crs("policy")
        self.conversations = 0
        self.errors = 0
        self._world_catalog: Any = None

    @classmethod
    def from_config(cls, config: dict[str, Any] | None, crs: str = "policy", crs_params: dict[str, Any] | None = None, brain: Any = None) -> ConversationLayer:
        """Build from the scenario's ``conversation:`` dict and ``crs:`` spec (then ``world.add_layer(layer)``)."""
        return cls(parse_section(ConversationConfig, "conversation", config), make_crs(crs, crs_params))

    # ------------------------------------------------------------ protocol
    def attach(self, world: World) -> None:
        self.bind(world, world.seeder.rng("conversation"))
        world.add_session_hook(self.on_sessions)

    def bind(self, world: World, rng: np.random.Generator) -> None:
        """Use ``world``'s catalog, user model and ``rng`` (``attach`` does it; ``Conversation-v0`` drives conversations itself)."""
        if self._world_catalog is not world.catalog:  # the search index is built once per catalog
            self.engine = CatalogSearch(world.catalog)
            self.index = AttributeIndex(world)
            self._world_catalog = world.catalog
        self.model: UtilityBrain = user_model_of(world.brain)
        self.voice: ConversationVoice | None = world.brain if self.config.use_llm and isinstance(world.brain, ConversationVoice) else None
        self.rng = rng

    def on_tick_start(self, world: World, tick: int) -> EventBatch:
        """Nothing before the sessions: conversations happen in sessions (a session hook)."""
        return EventBatch.empty()

    def on_tick(self, world: World, tick: int) -> EventBatch:
        return EventBatch.empty()

    def attach_recorder(self, recorder: RecorderSink) -> None:
        """Turns are events and pages; an agent with an LLM reports its calls."""
        if isinstance(self.agent, HasRuntime):
            self.agent.attach_recorder(recorder)

    def reattach(self, world: World) -> None:
        """Nothing is left out of the checkpoint (an LLM agent reopens its runtime on first use)."""

    def close(self) -> None:
        """Close the agent's LLM runtime, if it has one."""
        if isinstance(self.agent, HasRuntime):
            self.agent.close()

    # ------------------------------------------------------------- sessions
    def on_sessions(self, world: World, users: np.ndarray) -> np.ndarray:
        """Some of ``users`` talk with the agent; returns those still in session."""
        weight = np.array([ROLE_TALK.get(r, 1.0) for r in _roles(world, users)])
        talkers = users[self.rng.random(users.size) < self.config.rate * weight]
        if not talkers.size:
            return users
        left = self.converse_all(world, talkers)
        return users[~np.isin(users, left)] if left.size else users

    def new_intents(self, world: World, users: np.ndarray) -> list[Intent]:
        """Each user's hidden intent for a new conversation (mode by the config); the user model scores the catalog once for all."""
        c, rng = self.config, self.rng
        users = np.asarray(users, np.int64)
        target = np.array([(c.mode if c.mode != "both" else ("target" if rng.random() < 0.5 else "target_free")) == "target" for _ in users.tolist()], bool)
        targets = draw_intents(world, self.model, users[target], rng) if target.any() else np.zeros(0, np.int64)
        refs = top_items_of(world, self.model, users[~target], REFERENCE_SIZE) if not target.all() else np.zeros((0, REFERENCE_SIZE), np.int64)
        out: list[Intent] = []
        t = f = 0
        for is_target in target.tolist():
            if is_target:
                item = int(targets[t])
                t += 1
                out.append(intent_for_target(item, self.index.attributes(item), rng))
            else:
                ref = refs[f]
                f += 1
                out.append(intent_target_free(ref.tolist(), [self.index.attributes(i) for i in ref.tolist()], rng))
        return out

    def new_intent(self, world: World, user: int) -> Intent:
        """The user's hidden intent for a new conversation (mode by the config)."""
        return self.new_intents(world, np.array([user]))[0]

    def converse(self, world: World, user: int, intent: Intent | None = None) -> bool:
        """Hold one conversation with ``user`` (in session); returns whether they left the session."""
        return Conversation(self, world, user, intent or self.new_intent(world, user)).run()

    def converse_all(self, world: World, users: np.ndarray, intents: list[Intent] | None = None) -> np.ndarray:
        """Hold a conversation with each of ``users`` (in session, distinct), all at once; returns those who left the session.

        ``intents``: the users' hidden intents (default: :meth:`new_intents`;
        validation passes held-out real items as targets).

        The conversations advance together, one turn per round: every open
        conversation's agent acts, then the users decide on all the items
        offered in the round with one call of the user model's page kernel
        per slate length (:func:`decide_offers`), and the world applies those
        pages together. A round's turns and ends are logged at the end of the round.
        """
        intents = intents if intents is not None else self.new_intents(world, users)
        convs = [Conversation(self, world, int(u), it) for u, it in zip(np.asarray(users).tolist(), intents)]
        for c in convs:
            c.begin()
        live = convs
        while live:
            share_ranks(world, live)
            offers = [(c, c.offer(act)) for c, act in zip(live, agent_acts(self, live))]
            for c in live:
                c.tools.ranks = None  # pages are served next: the ranking is stale
            decide_offers(self, world, [(c, items) for c, items in offers if items])
            for c in live:
                c.close_turn()
                if c.outcome is not None:
                    c.finish(log=False)
            flush_all(world, live)
            live = [c for c in live if c.outcome is None]
        return np.array([c.user for c in convs if c.left], np.int64)


def share_ranks(world: World, convs: list[Conversation]) -> None:
    """Give ``convs``' tools one :class:`RoundRanks` (the platform recommender asked once for all their users), deep enough
    for the agents' candidate pools (the whole catalog when ``POOL`` is ``None``; capped at the catalog). Valid until a page is served."""
    ranks = RoundRanks(world, [c.user for c in convs], (POOL or len(world.catalog)) + max(len(c.state.offered) for c in convs))
    for c in convs:
        c.tools.ranks = ranks


def agent_acts(layer: ConversationLayer, convs: list[Conversation]) -> list[AgentAct | None]:
    """The agent's acts for ``convs`` (one turn each), checked (:meth:`Conversation.check`).

    One call for all when the agent acts in batches (:class:`ActsInBatches`),
    else one per conversation. An agent's fault is counted and ends only the
    conversations it hits: when a batched call fails, each conversation asks
    on its own.
    """
    agent = layer.agent
    acts: list[Any] | None = None
    if batches(agent):
        try:
            acts = list(agent.act_all([c.state for c in convs], [c.tools for c in convs]))
        except Exception:  # noqa: BLE001  # an agent's fault must not stop the world: retried one conversation at a time
            acts = None
        if acts is not None and len(acts) != len(convs):
            acts = None
    if acts is None:
        acts = [_act_alone(agent, c) for c in convs]
    return [c.check(a) for c, a in zip(convs, acts)]


def batches(agent: Any) -> bool:
    """Whether ``agent`` acts in batches: it has ``act_all`` and no subclass below it overrides ``act`` alone
    (a ``PolicyAgent`` subclass written for one state at a time keeps its own ``act``)."""
    if not isinstance(agent, ActsInBatches):
        return False
    mro = type(agent).__mro__

    def owner(name: str) -> int:
        return next((i for i, c in enumerate(mro) if name in c.__dict__), len(mro))

    return owner("act_all") <= owner("act")


def _act_alone(agent: ConversationalAgent, c: Conversation) -> Any:
    try:
        return agent.act(c.state, c.tools)
    except Exception:  # noqa: BLE001  # counted by Conversation.check (not an AgentAct), the conversation ends cleanly
        return None


def flush_all(world: World, convs: list[Conversation]) -> None:
    """Log the conversations' events not logged yet, one conversation after another, as one batch."""
    users: list[int] = []
    rows: list[tuple[int, int, str | None, int, dict[str, Any]]] = []
    for c in convs:
        if c.rows:
            users += [c.user] * len(c.rows)
            rows += c.rows
            c.rows = []
    if rows:
        types, items, texts, turns, payloads = zip(*rows)
        world.add_events(EventBatch.build(world.tick, np.array(users), np.array(types), np.array(items), np.array(turns, float), list(texts), list(payloads)))


def decide_offers(layer: ConversationLayer, world: World, offers: list[tuple[Conversation, tuple[int, ...]]]) -> None:
    """The users decide on the items offered to them (one conversation each): the user model's page kernel, as on the feed.

    One kernel call and one world page per slate length; each conversation's
    turns so far are logged before its page's events.
    """
    by_k: dict[int, list[tuple[Conversation, tuple[int, ...]]]] = {}
    for c, items in offers:
        by_k.setdefault(len(items), []).append((c, items))
    for k, group in by_k.items():
        users = np.array([c.user for c, _ in group], np.int64)
        slates = np.array([items for _, items in group], np.int64).reshape(len(group), k)
        dec = decide(world, layer.model, users, slates, PageDraws(k).draw(layer.rng, len(group)))
        flush_all(world, [c for c, _ in group])  # the turns so far precede the page's events
        res = world.serve_page(users, slates, decision=dec)
        for r, (c, items) in enumerate(group):
            c.resolve(items, dec.watched[r], bool(res.leave[r]))


class Conversation:
    """One conversation: the loop of agent acts and user replies, its log and its end."""

    def __init__(self, layer: ConversationLayer, world: World, user: int, intent: Intent) -> None:
        self.layer = layer
        self.world = world
        self.user = int(user)
        self.intent = intent
        self.rng = layer.rng
        self.cid = layer.conversations
        layer.conversations += 1
        self.state = DialogueState(conversation=self.cid, user=self.user, tick=world.tick)
        self.tools = WorldTools(world, layer.engine, layer.index, user)
        patience = float(world.users.patience[user])
        self.budget = 1 + int(round(patience * (layer.config.max_turns - 1)))
        self.turn = 0
        self.rows: list[tuple[int, int, str | None, int, dict[str, Any]]] = []  # type, item, text, turn, payload: the events not yet logged
        self.recommended: list[list[int]] = []
        self.errors = 0
        self.success_turn: int | None = None
        self.success_item = INT_NONE

    # ---------------------------------------------------------------- log
    def say(
        self, role: str, act: str, text: str, items: tuple[int, ...] = (), attribute: str | None = None, value: str | None = None, tools: tuple[str, ...] = ()
    ) -> None:
        """Add a turn to the transcript; an LLM brain words the user's turns (:data:`VOICED_ACTS`)."""
        by: Author = "template"
        voice = self.layer.voice
        if voice is not None and role == "user" and act in VOICED_ACTS:
            last = self.state.last
            text, by = voice.conversation_text(self.world, self.world.tick, self.user, last.text if last else "", text, value, self.forbidden())
        items = tuple(map(int, items)) if items else ()
        self.state.messages.append(Message(role, act, text, items, attribute, value))
        p = TurnPayload.dump_of(  # thousands of turns a second: the payload's dict without validating a model (same dict)
            conversation=self.cid, turn=self.turn, role=role, act=act, items=list(items), attribute=attribute, value=value, tools=list(tools), by=by
        )
        self.rows.append((_CONVERSE, items[0] if items else INT_NONE, text, self.turn, p))
        self.turn += 1

    def forbidden(self) -> tuple[str, ...]:
        """What the user must not say: the hidden target's title and its longer words (its title is never named or paraphrased)."""
        t = self.intent.target
        if t is None:
            return ()
        w = title_words(self.world.catalog.titles[t])
        return (" ".join(w), *(x for x in w if len(x) >= 5))

    def flush(self) -> None:
        """Log the turns (and the end) not logged yet."""
        flush_all(self.world, [self])

    # --------------------------------------------------------------- loop
    def run(self) -> bool:
        """The conversation to its end with the layer's agent; returns whether the user left the session."""
        self.begin()
        while self.outcome is None:
            self.step(self.agent_act())
        self.finish()
        return self.left

    def begin(self) -> None:
        """The user's opening turn."""
        self.outcome: str | None = None
        self.left = False
        self.pending: tuple[int, ...] = ()
        self.agent_turns = 0
        self.open()

    def step(self, act: AgentAct | None) -> None:
        """One agent turn (``None``: the agent failed) and the user's reply; sets :attr:`outcome` when the conversation ends."""
        items = self.offer(act)
        if items:
            decide_offers(self.layer, self.world, [(self, items)])
        self.close_turn()

    def offer(self, act: AgentAct | None) -> tuple[int, ...]:
        """The agent's turn and the user's reply when it needs no decision; returns the items the user now decides on (``()``: none)."""
        self.agent_turns += 1
        self.state.turn = self.agent_turns
        if act is None:
            self.outcome = "failed"
            self.say("agent", "end", L.pick(self.rng, L.END))
            return ()
        self.recommended.append(list(act.items) if act.kind == "recommend" else [])
        if act.kind == "end":
            self.say("agent", "end", act.text or L.pick(self.rng, L.END), tools=act.tools)
            self.outcome = "ended_by_agent"
            return ()
        if act.kind == "ask":
            self.say("agent", "ask", act.text or L.pick(self.rng, L.ASK[act.attribute]), attribute=act.attribute, tools=act.tools)
            self.answer(act.attribute)
            self.pending = ()
            return ()
        if act.kind == "answer_item":
            facts = self.tools.facts(act.items[0])
            self.say("agent", "answer_item", act.text or L.describe(facts), items=act.items[:1], tools=act.tools)
            items, self.pending = self.pending, ()
            return items
        # recommend
        facts = [self.tools.facts(i) for i in act.items]
        text = act.text or L.pick(self.rng, L.RECOMMEND).format(titles=L.titles(facts), reason=L.reason_for(self.state.known, act.reason, len(facts)))
        self.say("agent", "recommend", text, items=act.items, tools=act.tools)
        if self.rng.random() < self.layer.config.ask_about_rate:
            self.pending = act.items
            self.say("user", "ask_about", L.pick(self.rng, L.ASK_ABOUT).format(title=L.display_title(facts[0].title)), items=act.items[:1])
            return ()
        return act.items

    def close_turn(self) -> None:
        """After the user's reply: out of patience, the user leaves (``abandoned``)."""
        if self.outcome is None and self.agent_turns >= self.budget:
            self.say("user", "leave", L.pick(self.rng, L.LEAVE))
            self.outcome = "abandoned"

    def open(self) -> None:
        """The user's opening request (sometimes naming one attribute they want)."""
        wants = [a for a in ATTRIBUTES if self.intent.wants.get(a)]
        if wants and self.rng.random() < self.layer.config.reveal_first:
            a = self.intent.order[0] if self.intent.order[0] in wants else wants[0]
            v = self.intent.wants[a]
            self.state.known[a] = v  # type: ignore[assignment]
            self.say("user", "request", L.pick(self.rng, L.REQUEST_WITH[a]).format(value=v), attribute=a, value=v)
        else:
            self.say("user", "request", L.pick(self.rng, L.REQUEST))

    def agent_act(self) -> AgentAct | None:
        """The agent's act, checked (:func:`agent_acts` for this conversation alone)."""
        return agent_acts(self.layer, [self])[0]

    def check(self, act: Any) -> AgentAct | None:
        """``act`` if the agent may make it: unknown acts and failures (``None``: the agent raised) are counted and end the conversation (``None``); recommended items no tool returned are dropped."""
        if not isinstance(act, AgentAct) or act.kind not in AGENT_ACTS:
            self.errors += 1
            return None
        if act.kind == "ask" and act.attribute not in ATTRIBUTES:
            self.errors += 1
            return None
        if act.kind in ("recommend", "answer_item"):
            n = len(self.world.catalog)
            seen_here = set(self.state.offered)
            items: list[int] = []
            for i in act.items:
                ok = isinstance(i, (int, np.integer)) and 0 <= int(i) < n and int(i) in self.tools.returned and int(i) not in items
                ok = ok and (act.kind == "answer_item" or int(i) not in seen_here)
                if ok:
                    items.append(int(i))
                else:
                    self.errors += 1
            items = items[:MAX_ITEMS]
            if not items:
                return None
            # The agent's own text may name items it was not allowed to offer: keep it only when nothing was dropped.
            text = act.text if len(items) == len(act.items) else ""
            act = AgentAct(act.kind, text, act.attribute, tuple(items), act.reason, act.tools)
        return act

    def answer(self, attribute: str | None) -> None:
        v = self.intent.wants.get(attribute or "")
        if v is None:
            self.say("user", "answer", L.pick(self.rng, L.NO_PREFERENCE), attribute=attribute)
            return
        self.state.known[attribute] = v  # type: ignore[index]
        self.say("user", "answer", L.sentence(L.pick(self.rng, L.ANSWER[attribute]).format(value=v)), attribute=attribute, value=v)

    def resolve(self, items: tuple[int, ...], watched: np.ndarray, left: bool) -> None:
        """The user's reply to offered ``items`` after the user model decided (``watched``) and the world applied the page (``left``: the session ended)."""
        w = self.world
        accepted = [int(i) for i, a in zip(items, watched) if a]
        self.state.offered.extend(items)
        self.state.accepted.extend(accepted)
        hit = [i for i in accepted if i == self.intent.target] if self.intent.mode == "target" else accepted
        if hit:
            self.success_turn = self.turn
            self.success_item = hit[0]
            self.say("user", "accept", L.pick(self.rng, L.ACCEPT).format(title=L.display_title(w.catalog.titles[hit[0]])), items=tuple(hit))
            self.outcome, self.left = "success", left
            return
        if accepted:  # watched, but not what they are after (target mode)
            self.say("user", "accept", L.pick(self.rng, L.PARTIAL).format(title=L.display_title(w.catalog.titles[accepted[0]])), items=tuple(accepted))
        else:
            a, want, got = self.intent.reject_reason(self.layer.index.attributes(int(items[0])))
            if a is not None:
                self.state.known[a] = want  # type: ignore[assignment]
                if got:
                    self.state.avoid.setdefault(a, set()).add(got)
            text = L.sentence(L.pick(self.rng, L.REJECT[a]).format(value=want, got=got or "that"))
            self.say("user", "reject", text, items=tuple(items), attribute=a, value=want)
        if left:
            self.say("user", "leave", L.pick(self.rng, L.LEAVE))
            self.outcome, self.left = "left", True

    def finish(self, log: bool = True) -> float:
        """Log the end (``log=False``: left for :func:`flush_all`), tell the agent; returns the conversation's reward (1 for a success, minus 0.05 per recommendation turn)."""
        outcome = self.outcome or "failed"
        self.layer.errors += self.errors
        it = self.intent
        p = ConversationEndPayload.dump_of(  # one a conversation, plain values: the model's dict without validating a model
            conversation=self.cid,
            outcome=outcome,
            mode=it.mode,
            agent=str(self.layer.agent.name),
            target=None if it.target is None else int(it.target),
            reference=[int(i) for i in it.reference],
            recommended=[list(r) for r in self.recommended],
            accepted=list(self.state.accepted),
            success_turn=self.success_turn,
            errors=self.errors,
        )
        self.rows.append((int(EventType.CONVERSATION_END), self.success_item, None, self.turn, p))
        if log:
            self.flush()
        reward = (1.0 if outcome == "success" else 0.0) - 0.05 * len(self.recommended)
        try:
            self.layer.agent.observe(self.state, outcome, reward)
        except Exception:  # noqa: BLE001  # a learning agent's fault is counted, not raised
            self.layer.errors += 1
        return reward

    @property
    def agent(self) -> ConversationalAgent:
        return self.layer.agent


__all__ = [
    "AGENT_ACTS",
    "ActsInBatches",
    "ROLE_TALK",
    "VOICED_ACTS",
    "Conversation",
    "ReturnedItems",
    "RoundRanks",
    "agent_acts",
    "batches",
    "decide_offers",
    "share_ranks",
    "ConversationConfig",
    "ConversationLayer",
    "ConversationVoice",
    "WorldTools",
]
