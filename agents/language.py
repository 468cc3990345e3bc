"""What users say: language written by a model in the background and heard at a fixed tick.

Feelings, reflective instructions, reflections, posts and chats are
:class:`Utterance` jobs. A brain with a model hands them to its
:class:`LanguagePipeline`, which starts the model calls at once (one burst
per batch, through :meth:`~recworld.llm.LLMRuntime.submit_many`) and lets the
world go on. The texts are *heard* at a fixed point of simulated time:

- with ``lag`` >= 1, at the start of tick ``t + lag`` for a text asked for in
  tick ``t`` (before any session, so an instruction reaches the recommender
  on the user's next page);
- with ``lag`` = 0, at the end of tick ``t`` (after the social layer);
- texts still pending after the run's last tick (``horizon``) are heard at the
  end of that tick.

Hearing a text means: wait for its answer if it is not in yet, check it
(:func:`recworld.llm.grounding.check`: catalog titles, persona, echo, topic),
fall back to the job's template when the model failed or the text was
rejected (the reason goes to ``LLMCall.rejected``), then apply it (log the
event, tell the recommender, publish the post, ...). Which texts exist, their
prompts and their templates are decided when they are asked for; when they
arrive does not change anything, so the event log is the same whatever the
model's speed: same scenario + seed + LLM cache, same events.

Checkpoints: pending jobs are pickled with their requests (plain data), not
with the calls in flight; after a resume the requests are sent again, in the
same order, before the first one is needed. A cached or deterministic model
answers them as it did the first time, so a resumed run replays exactly
without the checkpoint ever waiting for the model.

Brains without a model use :class:`TemplateVoice`: the same jobs, said at
once with their templates (zero LLM calls).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from recworld.errors import RecWorldError
from recworld.events import EventBatch
from recworld.llm.grounding import Grounding, TitleIndex, Verdict, check, check_lines
from recworld.llm.records import LLMCallRecord, LLMRequest, LLMResult
from recworld.payloads import AuthoredPayload

if TYPE_CHECKING:  # pragma: no cover
    from recworld.catalog import Catalog
    from recworld.llm.client import LLMRuntime, PendingCalls
    from recworld.world import World

KINDS = ("feeling", "instruction", "reflection", "post", "chat")


@dataclass(frozen=True)
class Said:
    """What a user ends up saying for one :class:`Utterance`.

    Attributes:
        text: the text (a list of lines for a chat).
        by: ``"llm"`` (the model's text, checked) or ``"template"``.
        asked: the tick the text was asked for.
        rejected: why the model's text was not used (a grounding reason), if it was rejected.
    """

    text: Any
    by: str
    asked: int
    rejected: str | None = None

    def payload(self) -> dict[str, Any]:
        """The FEELING/INSTRUCTION payload of this text: who wrote it and the tick of the page it is about."""
        return AuthoredPayload(by=self.by, asked=self.asked).dump()  # type: ignore[arg-type]


@dataclass
class Utterance:
    """A text a user is going to say.

    Attributes:
        kind: one of :data:`KINDS`.
        user: who says it.
        tick: when it was asked for.
        fallback: the template text (a list of lines for a chat), used when the model fails or is not asked.
        apply: ``apply(world, tick, said, *args) -> EventBatch``: what saying it does (a bound method of its owner).
        args: more arguments of ``apply``.
        about: what the prompt is made of (read by the writer's ``compose``).
        ask: write it with the model (False: over the call budget, the template).
        request: the model request (set by the pipeline).
        grounds: what the text must agree with, one per speaker (set by the pipeline).
        primer: the words the prompt starts the text with; the model's completion is appended (set by the pipeline).
    """

    kind: str
    user: int
    tick: int
    fallback: Any
    apply: Callable[..., EventBatch]
    args: tuple = ()
    about: dict[str, Any] = field(default_factory=dict)
    ask: bool = True
    request: LLMRequest | None = None
    grounds: tuple[Grounding, ...] = ()
    primer: str = ""


class Voice(Protocol):
    """Where a layer hands the texts its users say (a pipeline, or templates said at once)."""

    def take_budget(self, tick: int, n: int, pool: str = "page") -> int:
        """Model calls granted out of ``n`` wanted in ``pool`` this tick."""
        ...

    def say(self, world: Any, tick: int, jobs: list[Utterance]) -> EventBatch:
        """Take ``jobs``; returns the events of what was said now (deferred texts: none yet)."""
        ...


def hear(world: World, tick: int, job: Utterance, said: Said) -> EventBatch:
    """Apply one said text (the job's ``apply``)."""
    return job.apply(world, tick, said, *job.args)


class TemplateVoice:
    """Templates said at once: the voice of users without a model."""

    def take_budget(self, tick: int, n: int, pool: str = "page") -> int:
        return 0

    def say(self, world: World, tick: int, jobs: list[Utterance]) -> EventBatch:
        return EventBatch.concat([hear(world, tick, j, Said(j.fallback, "template", j.tick)) for j in jobs])


class Writer(Protocol):
    """The owner of a pipeline (an LLM brain): model access, prompts, budget and accounting."""

    @property
    def runtime(self) -> LLMRuntime: ...

    model_name: str
    horizon: int | None

    def compose(self, source: Any, job: Utterance) -> tuple[LLMRequest, tuple[Grounding, ...], str]:
        """The request, groundings and primer of ``job`` (``source`` has ``catalog`` and ``user_agents``)."""
        ...

    def take_budget(self, tick: int, n: int, pool: str = "page") -> int: ...

    def report(self, record: LLMCallRecord, templated: bool) -> None:
        """Account one finished call (and whether its text fell back to the template)."""
        ...

    def count_template(self) -> None:
        """Count a text said by its template without asking the model."""
        ...


@dataclass
class _Group:
    due: int
    jobs: list[Utterance]
    calls: PendingCalls | None = None


def title_index(catalog: Catalog) -> TitleIndex:
    """The grounding index of a catalog's own items (not user-created posts, so it is the same whenever it is built)."""
    n = len(catalog)
    own = [i for i in range(n) if int(catalog.creators[i]) < 0]
    titles = [catalog.titles[i] if int(catalog.creators[i]) < 0 else "" for i in range(own[-1] + 1 if own else 0)]
    years = [int(catalog.years[i]) for i in range(len(titles))]
    return TitleIndex(titles, years)


class LanguagePipeline:
    """Texts written by a model in the background and heard ``lag`` ticks later (see the module docstring).

    Args:
        writer: the brain that owns it (runtime, prompts, budget, accounting).
        lag: ticks between asking for a text and hearing it (0 = the end of the same tick).
    """

    def __init__(self, writer: Writer, lag: int = 1) -> None:
        self.writer = writer
        self.lag = int(lag)
        self.pending: list[_Group] = []
        self._titles: TitleIndex | None = None
        self._resent = True
        self._ended = -1  # the last tick whose end has been heard

    # ------------------------------------------------------------ lifecycle
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Calls in flight are not state: the requests are, and are sent again after a load.
        state["pending"] = [_Group(g.due, g.jobs, None) for g in self.pending]
        state["_titles"] = None
        state["_resent"] = not any(j.request is not None for g in self.pending for j in g.jobs)
        return state

    def titles(self, catalog: Catalog) -> TitleIndex:
        """The catalog's title index (built on first use)."""
        if self._titles is None:
            self._titles = title_index(catalog)
        return self._titles

    @property
    def in_flight(self) -> int:
        """Texts asked for and not heard yet."""
        return sum(len(g.jobs) for g in self.pending)

    # ----------------------------------------------------------------- say
    def take_budget(self, tick: int, n: int, pool: str = "page") -> int:
        return self.writer.take_budget(tick, n, pool)

    def say(self, source: Any, tick: int, jobs: list[Utterance]) -> EventBatch:
        """Start the model on ``jobs`` now (one burst); they are heard at tick ``tick + lag``.

        Args:
            source: what prompts are made from (``catalog``, ``user_agents``): the world or a brain's view of it.
            tick: the current tick.
            jobs: the texts; those with ``ask`` get a model request.
        """
        if not jobs:
            return EventBatch.empty()
        if tick <= self._ended:
            # A text asked for after its tick's end was heard could be heard late, or never (the run's last tick).
            raise RecWorldError(
                f"{jobs[0].kind} texts asked for in tick {tick} after the language pipeline heard that tick's end; "
                "add the LLM brain to the world after the layers whose users speak (world.add_layer(brain) last)"
            )
        self._resend()
        for j in jobs:
            if j.ask:
                j.request, j.grounds, j.primer = self.writer.compose(source, j)
        reqs = [j.request for j in jobs if j.request is not None]
        calls = self.writer.runtime.submit_many(reqs) if reqs else None
        self.pending.append(_Group(tick + self.lag, jobs, calls))
        return EventBatch.empty()

    # ---------------------------------------------------------------- hear
    def on_tick_start(self, world: World, tick: int) -> EventBatch:
        """At the start of a tick (the owner layer's ``on_tick_start``): hear the texts due now."""
        return self._hear(world, tick, last=False)

    def on_tick_end(self, world: World, tick: int) -> EventBatch:
        """After a tick's sessions and the layers added before the owner: hear texts due now, and everything on the run's last tick."""
        h = self.writer.horizon
        self._ended = tick
        return self._hear(world, tick, last=h is not None and tick >= h - 1)

    def drain(self, world: World) -> EventBatch:
        """Hear every pending text now (a run driven from Python that ends without a horizon)."""
        return self._hear(world, world.tick, last=True)

    def _resend(self) -> None:
        # After a checkpoint load: send the pending requests again, in their order.
        if self._resent:
            return
        self._resent = True
        for g in self.pending:
            reqs = [j.request for j in g.jobs if j.request is not None]
            if reqs and g.calls is None:
                g.calls = self.writer.runtime.submit_many(reqs)

    def _hear(self, world: World, tick: int, last: bool) -> EventBatch:
        if not self.pending:
            return EventBatch.empty()
        self._resend()
        due = [g for g in self.pending if last or g.due <= tick]
        if not due:
            return EventBatch.empty()
        self.pending = [g for g in self.pending if not (last or g.due <= tick)]
        titles = self.titles(world.catalog)
        out: list[EventBatch] = []
        for g in due:
            results = iter(g.calls.results() if g.calls is not None else [])
            for job in g.jobs:
                said = Said(job.fallback, "template", job.tick)
                if job.request is None:
                    self.writer.count_template()
                else:
                    said = self._judge(job, next(results), tick, titles)
                out.append(hear(world, tick, job, said))
        return EventBatch.concat(out)

    def _judge(self, job: Utterance, res: LLMResult, tick: int, titles: TitleIndex) -> Said:
        assert job.request is not None
        # Accounted at the tick the text is heard: the tick whose events it changes.
        rec = dataclasses.replace(LLMCallRecord.of(job.request, res, self.writer.model_name), tick=int(tick))
        said = Said(job.fallback, "template", job.tick)
        if not res.fell_back:
            verdict = judge_text(job.kind, continue_primer(job.primer, res.text), job.grounds, titles, job.primer)
            if verdict.ok:
                said = Said(verdict.text.split("\n") if job.kind == "chat" else verdict.text, "llm", job.tick)  # type: ignore[union-attr]
            else:
                said = Said(job.fallback, "template", job.tick, verdict.reason)
                rec = dataclasses.replace(rec, fell_back=True, error=f"rejected: {verdict.reason}", rejected=verdict.reason)
        self.writer.report(rec, said.by == "template")
        return said


def continue_primer(primer: str, text: str) -> str:
    """A primer and the model's continuation as one text.

    The server drops the continuation's leading whitespace (the tokenizer's
    word-start marker of its first token), so the space or newline between
    the two is put back: a new chat turn goes on a new line, a word after a
    word gets a space.
    """
    if not primer or not text:
        return primer + text
    if text.lstrip().startswith(("A:", "B:")):
        return primer + "\n" + text.lstrip()
    if text[0].isspace() or text[0] in ",.;:!?'\")":
        return primer + text
    return primer + " " + text


def judge_text(kind: str, text: str, grounds: tuple[Grounding, ...], titles: TitleIndex | None, primer: str = "") -> Verdict:
    """Parse and check a model's answer (its ``primer`` included) for a text of ``kind`` (chats: the A:/B: lines, each against its speaker)."""
    from recworld.agents.brains.llm_text import parse_chat

    if kind == "chat":
        # The prompt wrote A's first line (its primer); the model's lines are the rest.
        return check_lines(parse_chat(text), grounds, titles, given=1)
    return check(text, grounds[0] if grounds else Grounding(), titles, primer=primer)


__all__ = ["KINDS", "LanguagePipeline", "Said", "TemplateVoice", "Utterance", "Voice", "Writer", "continue_primer", "hear", "judge_text", "title_index"]
