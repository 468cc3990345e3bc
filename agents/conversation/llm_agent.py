"""The LLM conversational agent (RecLLM / LLM-CRS style): an LLM plans each turn's sub-task and tools do the work.

Each turn (:meth:`LLMAgent.act`):

1. a tool call first: the platform's search over what the user has said
   (or the recommender as ranking expert when nothing is known yet) gives
   up to ``pool`` candidates fitting the user's stated wishes;
2. ONE LLM call, JSON-schema constrained (:class:`AgentPlan`): the sub-task
   (``ask`` an attribute, ``search`` with a query, ``rank`` with an expert,
   ``recommend`` candidates, ``answer`` about an item, ``end``), its
   arguments, and an updated natural-language profile of the user, which the
   agent keeps across turns and shows the model next turn;
3. the plan is carried out with the tools. Items to recommend are resolved
   against the candidates the tools returned in this conversation, by id or
   exact title; anything else (an invented title, an id outside the
   results) is dropped and counted (``stats["unknown_items"]``), so it can
   never reach the user (InteRecAgent's rule; the layer enforces it again).
   Recommendation texts are written from the catalog titles of the items
   kept, never from the model's free text.

A call that falls back (a fault, a timeout, JSON that does not validate)
is counted (``stats["fallbacks"]``) and the turn is planned by the policy
agent's default policy instead: the conversation goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recworld.agents.conversation.agents import PolicyAgent, candidates
from recworld.agents.conversation.intent import ATTRIBUTES
from recworld.protocols import AgentAct, CRSTools, DialogueState

if TYPE_CHECKING:  # pragma: no cover
    from recworld.llm import LLMRuntime
    from recworld.protocols import RecorderSink


class AgentPlan(BaseModel):
    """The LLM's plan for one turn (the JSON schema of its answer)."""

    model_config = ConfigDict(extra="ignore")

    task: Literal["ask", "search", "rank", "recommend", "answer", "end"]
    attribute: str | None = Field(None, description="ask: genre, era or popularity")
    query: str | None = Field(None, description="search: the query")
    items: list[str] = Field(default_factory=list, description="recommend/answer: candidate ids or exact titles")
    text: str | None = Field(None, description="ask: the question to the user")
    profile: str | None = Field(None, description="the user's profile so far, in a sentence")


SYSTEM = (
    "You are a movie recommender talking with a user. Each turn choose ONE task: ask (about genre, era or popularity), "
    "search (with a query), rank (with the platform's recommender), recommend (candidates by id), answer (about an item), or end. "
    "Recommend only candidates listed below, by id. Keep a one-sentence profile of the user. Answer in JSON."
)


class LLMAgent:
    """The LLM conversational agent (see the module docstring).

    Args:
        llm: the LLM section (``recworld.llm.LLMConfig`` keys); the scenario's ``llm:`` by default.
        k: items per recommendation.
        pool: candidates shown to the model.
        max_tokens: completion limit of the planning call.
    """

    name = "llm"

    def __init__(self, llm: dict[str, Any] | None = None, k: int = 3, pool: int = 12, max_tokens: int = 160) -> None:
        from recworld.agents.brains.llm import llm_config

        self.llm_config = llm_config(llm)
        self.k, self.pool, self.max_tokens = int(k), int(pool), int(max_tokens)
        self.fallback = PolicyAgent()
        self.profiles: dict[int, str] = {}
        self.stats = {"calls": 0, "fallbacks": 0, "unknown_items": 0}
        self._rt: LLMRuntime | None = None
        self._recorder: RecorderSink | None = None

    # --------------------------------------------------------------- runtime
    @property
    def runtime(self) -> LLMRuntime:
        """The LLM runtime (created on first use; not pickled)."""
        if self._rt is None:
            from recworld.llm import LLMRuntime

            self._rt = LLMRuntime(self.llm_config)
        return self._rt

    def attach_recorder(self, recorder: RecorderSink) -> None:
        """Report every LLM call to the run's recorder."""
        self._recorder = recorder

    def close(self) -> None:
        """Close the LLM runtime (idempotent)."""
        if self._rt is not None:
            self._rt.close()
            self._rt = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_rt"] = None
        state["_recorder"] = None
        return state

    # ------------------------------------------------------------------ turn
    def act(self, state: DialogueState, tools: CRSTools) -> AgentAct:
        """One turn: a candidate tool call, one planning LLM call, then the plan through the tools."""
        last = state.last
        if last is not None and last.act == "ask_about" and last.items:
            return AgentAct("answer_item", items=last.items[:1], tools=("facts",))
        cands, calls = candidates(state, tools, "search")
        cands = cands[: self.pool]
        plan = self._plan(state, tools, cands)
        if plan is None:
            self.stats["fallbacks"] += 1
            return self.fallback.act(state, tools)
        if plan.profile:
            self.profiles[state.conversation] = plan.profile[:300]
            state.profile = self.profiles[state.conversation]
        if plan.task == "ask":
            attr = plan.attribute if plan.attribute in ATTRIBUTES else next((a for a in ATTRIBUTES if a not in state.known), "genre")
            return AgentAct("ask", text=self._safe(plan.text, tools), attribute=attr, tools=tuple(calls))
        if plan.task == "end":
            return AgentAct("end", tools=tuple(calls))
        if plan.task == "search" and plan.query:
            found = tools.search(plan.query, self.pool, exclude=tuple(state.offered))
            return AgentAct("recommend", items=tuple(int(i) for i in found[: self.k]), reason="search", tools=(*calls, "search"))
        if plan.task == "rank":
            expert = tools.experts[-1]
            ranked = tools.rank(expert, self.pool, exclude=tuple(state.offered))
            return AgentAct("recommend", items=tuple(int(i) for i in ranked[: self.k]), reason=expert, tools=(*calls, f"rank:{expert}"))
        chosen = self._resolve(plan.items, cands, tools)
        if plan.task == "answer" and chosen:
            return AgentAct("answer_item", items=chosen[:1], tools=(*calls, "facts"))
        if not chosen:
            chosen = tuple(int(i) for i in cands[: self.k])
        if not chosen:
            return self.fallback.act(state, tools)
        return AgentAct("recommend", items=chosen[: self.k], reason="search", tools=tuple(calls))

    def observe(self, state: DialogueState, outcome: str, reward: float) -> None:
        """Forget the conversation's profile (a conversation is one visit)."""
        self.profiles.pop(state.conversation, None)

    # --------------------------------------------------------------- helpers
    def _plan(self, state: DialogueState, tools: CRSTools, cands: Any) -> AgentPlan | None:
        from recworld.llm import LLMCallRecord, LLMRequest

        lines = [f"{m.role}: {m.text}" for m in state.messages[-8:]]
        cand_lines = [f"{int(i)}: {f.title} ({f.year or '?'}) [{', '.join(f.genres)}]" for i in cands for f in (tools.facts(int(i)),)]
        prompt = (
            f"Profile: {self.profiles.get(state.conversation, 'unknown yet')}\n"
            f"Known wishes: {state.known or 'none'}\n"
            "Conversation:\n" + "\n".join(lines) + "\nCandidates:\n" + ("\n".join(cand_lines) or "none") + "\nYour plan (JSON):"
        )
        req = LLMRequest(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
            purpose="crs",
            user_id=state.user,
            tick=state.tick,
            max_tokens=self.max_tokens,
            json_schema=AgentPlan,
        )
        res = self.runtime.complete(req)
        self.stats["calls"] += 1
        if self._recorder is not None:
            import dataclasses

            self._recorder.add_llm_call(dataclasses.asdict(LLMCallRecord.of(req, res, self.llm_config.model)))
        if res.fell_back or not isinstance(res.parsed, AgentPlan):
            return None
        return res.parsed

    def _resolve(self, proposed: list[str], cands: Any, tools: CRSTools) -> tuple[int, ...]:
        """Proposed ids or titles -> candidate ids the tools returned; the rest is dropped and counted."""
        by_id = {str(int(i)): int(i) for i in cands}
        by_title = {tools.facts(int(i)).title.lower(): int(i) for i in cands}
        out: list[int] = []
        for p in proposed:
            key = str(p).strip()
            hit = by_id.get(key, by_title.get(key.lower()))
            if hit is None:
                self.stats["unknown_items"] += 1
            elif hit not in out:
                out.append(hit)
        return tuple(out)

    @staticmethod
    def _safe(text: str | None, tools: CRSTools) -> str:
        """The model's question when it is a short plain line (no invented titles); "" lets the layer use a template."""
        if not text or len(text) > 200 or '"' in text or "\n" in text:
            return ""
        # A capitalised word after the first may be a title the tools never returned: use the template.
        if any(w[:1].isupper() for w in text.split()[1:]):
            return ""
        return text.strip()


__all__ = ["SYSTEM", "AgentPlan", "LLMAgent"]
