"""Interviews: ask the simulated users of a finished run a question (Agent4Rec's post-simulation interviews).

A user answers as who they were at the end of the run: their persona (from
the run's last checkpoint, or the scenario when it has none), their memories,
what they watched and rated, and what they posted and said (from the run's
event log). The answer comes from the run's own LLM configuration (the
scenario's ``llm:`` section), is checked like every model text
(:mod:`recworld.llm.grounding`: catalog titles, persona, echo, topic) and
falls back to a template built from the same data when rejected. Answers are
stored in the ``Interview`` table (the dashboard's user page shows them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from recworld.agents.brains import llm_text as T
from recworld.agents.language import continue_primer, title_index
from recworld.checkpoint import load_world
from recworld.errors import ConfigError, require_extra
from recworld.llm import LLMRequest, LLMRuntime
from recworld.llm.grounding import Grounding, check
from recworld.scenarios.build import build_world
from recworld.scenarios.schema import validate
from recworld.storage import queries as Q
from recworld.storage.db import redact


@dataclass(frozen=True)
class Answer:
    """One user's answer to one question."""

    user_id: int
    question: str
    answer: str
    by: str  # "llm" or "template"
    rejected: str | None
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    cached: bool = False


class _People:
    """The users of a run as they were at its end: personas and catalog (last checkpoint, else the scenario's world)."""

    def __init__(self, engine: Engine, run_id: int, scenario: Any) -> None:
        ck = Q.last_checkpoint(engine, run_id)
        if ck is not None:
            world = load_world(ck.state, ck.base)
        else:
            world = build_world(scenario)  # personas do not change during a run: the initial world has them
        self.catalog = world.catalog
        self.user_agents = list(getattr(world, "user_agents", []))
        self.n_users = int(world.n_users)


def _llm_config(scenario: Any):
    from recworld.agents.brains.llm import llm_config

    return llm_config(scenario.llm)


def interview(engine: Engine, run_id: int, users: list[int], question: str, *, runtime: LLMRuntime | None = None, store: bool = True) -> list[Answer]:
    """Ask ``users`` of run ``run_id`` the same ``question`` (one concurrent burst); store and return the answers.

    Args:
        engine: the run database.
        run_id: the run.
        users: user ids (0-based, as in the run).
        question: the question, one line.
        runtime: a ready LLM runtime; default: one built from the run's ``llm:`` section (closed afterwards).
        store: write the answers to the ``Interview`` table.

    Raises:
        ConfigError: no such run or user, or an empty question.
    """
    question = " ".join(str(question).split())
    if not question:
        raise ConfigError('the question is empty; pass one, e.g. recworld interview 1 7 "What did you enjoy most?"')
    run = Q.get_run(engine, run_id)
    if run is None:
        raise ConfigError(f"no run with id {run_id} in {redact(str(engine.url))}; see `recworld runs`")
    scenario = validate(Q.run_config(run), source=f"run {run_id}")
    people = _People(engine, run_id, scenario)
    bad = [u for u in users if not 0 <= u < people.n_users]
    if bad:
        raise ConfigError(f"run {run_id} has users 0..{people.n_users - 1}; got {bad[0]}")
    config = _llm_config(scenario)
    if runtime is None:
        require_extra("openai", "llm", "recworld interview")
        if config.backend == "embedded":
            require_extra("xllamacpp", "llm", "recworld interview with the embedded LLM")
    titles = title_index(people.catalog)
    reqs: list[LLMRequest] = []
    grounds: list[Grounding] = []
    fallbacks: list[str] = []
    for u in users:
        story = Q.user_story(engine, run_id, u)
        prompt = _prompt(people, u, story, question)
        reqs.append(
            LLMRequest(
                [{"role": "user", "content": prompt}], purpose="interview", user_id=u, tick=max(run.tick_done, 0), max_tokens=64, temperature=0.7, stop=("\n",)
            )
        )
        grounds.append(T.grounding(people, u, prompt))
        fallbacks.append(_template(people, u, story))
    own = runtime is None
    rt = runtime or LLMRuntime(config)
    try:
        results = rt.complete_many(reqs)
    finally:
        if own:
            rt.close()
    out: list[Answer] = []
    for u, req, res, g, fb in zip(users, reqs, results, grounds, fallbacks):
        if res.fell_back:
            text, by, reason = fb, "template", None
        else:
            primer = T.primer_of(req.messages[0]["content"])
            v = check(continue_primer(primer, res.text), g, titles, max_chars=400, primer=primer)
            text, by, reason = (v.text, "llm", None) if v.ok else (fb, "template", v.reason)
        out.append(Answer(u, question, str(text), by, reason, config.model, res.tokens_in, res.tokens_out, res.latency_ms, res.cached))
    if store:
        Q.add_interviews(
            engine,
            [
                {
                    "run_id": run_id,
                    "user_id": a.user_id,
                    "question": a.question,
                    "answer": a.answer,
                    "by": a.by,
                    "rejected": a.rejected,
                    "model": a.model,
                    "tokens_in": a.tokens_in,
                    "tokens_out": a.tokens_out,
                    "latency_ms": a.latency_ms,
                    "cached": a.cached,
                }
                for a in out
            ],
        )
    return out


def sample_users(n_users: int, sample: int | None, seed: int) -> list[int]:
    """All users, or ``sample`` of them drawn without replacement (seeded: the same sample every time)."""
    if sample is None or sample >= n_users:
        return list(range(n_users))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1E7]))
    return sorted(int(u) for u in rng.choice(n_users, size=sample, replace=False))


def run_users(engine: Engine, run_id: int) -> int:
    """How many users a run has (0 if there is no such run)."""
    run = Q.get_run(engine, run_id)
    return int(run.n_users) if run is not None else 0


def _watched_line(story: dict[str, Any]) -> str:
    parts = []
    for _i, title, year, rating in story["watched"]:
        t = f"{title} ({year})" if year and f"({year})" not in str(title) else str(title)
        parts.append(t + (f", rated {int(rating)}/5" if rating is not None else ""))
    return "; ".join(parts) or "nothing yet"


def _prompt(people: _People, u: int, story: dict[str, Any], question: str) -> str:
    said = [text for _kind, text in story["said"][:3]]
    mems = story["memories"][:2]
    return T.prompt_template("interview").format(
        profile=T.short_profile(people, u),
        memories=("\nRemembers: " + " ".join(mems)) if mems else "",
        watched=_watched_line(story),
        said=" ".join(f'"{s}"' for s in said) or "nothing yet.",
        question=question.replace('"', "'"),
    )


def _template(people: _People, u: int, story: dict[str, Any]) -> str:
    """An answer made of what the user did (when the model's answer cannot be used)."""
    p = T.persona_of(people, u)
    best = [str(t) for _i, t, _y, r in story["watched"] if r is not None and r >= 4][:2]
    parts = []
    if best:
        parts.append("I enjoyed " + " and ".join(best) + ".")
    elif story["watched"]:
        parts.append(f"I watched {story['watched'][0][1]}, among others.")
    else:
        parts.append("I did not find much to watch.")
    if p is not None and p.liked_genres:
        parts.append(f"I would like more {p.liked_genres[0]} movies.")
    return " ".join(parts)


__all__ = ["Answer", "interview", "run_users", "sample_users"]
