"""What LLM users cost and how much of their text is worth keeping, per run: the README's language table.

For each run: wall time, ticks and users, language calls (everything but the
``llm`` brain's ``decide``), tokens, and the share of calls whose text was
kept, rejected by the grounding check (per reason) or got no usable answer.

Runs recorded before the grounding check existed (``LLMCall.rejected`` never
set) are re-checked with ``--recheck``: every text the model wrote that the
run used (events with payload ``"by": "llm"``) goes through
:func:`recworld.llm.grounding.check` with the persona rebuilt from the run's
scenario, the page it reacted to (from the log) and the few-shot examples of
the prompts it was written from (``--prompts``: that version's prompt folder);
calls whose text that version already threw away count as ``empty``.

    .venv/bin/python benchmarks/bench_language.py --db runs/demo.db --run 1
    .venv/bin/python benchmarks/bench_language.py --db before.db --run 1 --recheck --prompts OLD/agents/brains/prompts
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from recworld.agents.language import title_index
from recworld.events import EventType
from recworld.llm.grounding import REASONS, Grounding, check, check_lines
from recworld.scenarios.build import build_world
from recworld.scenarios.schema import validate
from recworld.storage import Event, LLMCall, Run, connect
from recworld.storage.queries import get_run, llm_text_outcomes, run_config


def measured(engine, run_id: int) -> dict:
    """Counts of a run whose calls carry their grounding verdicts."""
    rows = [r for p, r in llm_text_outcomes(engine, run_id).items() if p != "decide"]
    reasons: Counter = Counter()
    for r in rows:
        reasons.update(r["reasons"])
    return {
        "calls": sum(int(r["calls"]) for r in rows),
        "tokens": sum(int(r["tokens"] or 0) for r in rows),
        "kept": sum(r["kept"] for r in rows),
        "failed": sum(r["failed"] for r in rows),
        "reasons": dict(reasons),
    }


def rechecked(engine, run_id: int, prompts: Path | None) -> dict:
    """Counts of a run recorded without verdicts: its used model texts judged now (see the module docstring)."""
    run = get_run(engine, run_id)
    scenario = validate(run_config(run), source=f"run {run_id}")
    world = build_world(scenario.with_overrides(**{"brain.kind": "utility"}))  # the personas (they do not change during a run)
    titles = title_index(world.catalog)
    examples = {p.stem: p.read_text(encoding="utf-8").rsplit("\n\n", 1)[0] for p in sorted(prompts.glob("*.txt"))} if prompts else {}

    def ground(user: int, kind: str, allowed=None) -> Grounding:
        p = world.user_agents[user].persona
        return Grounding(examples.get(kind, ""), None if allowed is None else frozenset(allowed), tuple(p.liked_genres), tuple(p.disliked_genres))

    with engine.connect() as con:
        calls = con.execute(
            select(LLMCall.purpose, LLMCall.fell_back, LLMCall.error, LLMCall.tokens_in + LLMCall.tokens_out).where(
                LLMCall.run_id == run_id, LLMCall.purpose != "decide"
            )
        ).all()
        texts = con.execute(
            select(Event.id, Event.tick, Event.user_id, Event.type, Event.text, Event.payload).where(
                Event.run_id == run_id,
                Event.type.in_([int(EventType.FEELING), int(EventType.INSTRUCTION), int(EventType.POST), int(EventType.CHAT)]),
                Event.payload.like('%"by": "llm"%'),
            )
        ).all()
        pages = {}
        for eid, tick, user, etype, _t, _p in texts:
            if etype in (int(EventType.FEELING), int(EventType.INSTRUCTION)):
                items = con.execute(
                    select(Event.item_id)
                    .where(
                        Event.run_id == run_id,
                        Event.tick == tick,
                        Event.user_id == user,
                        Event.id < eid,
                        Event.type.in_([int(EventType.WATCH), int(EventType.SKIP)]),
                    )
                    .order_by(Event.id.desc())
                    .limit(world.config.slate_size)
                ).scalars()
                pages[eid] = [int(i) for i in items]
    reasons: Counter = Counter()
    kept = 0
    chats: dict[int, list[tuple[int, str]]] = {}
    for eid, _tick, user, etype, text, payload in texts:
        if etype == int(EventType.CHAT):
            chats.setdefault(json.loads(payload)["conversation"], []).append((user, text))
            continue
        kind = {int(EventType.FEELING): "feeling", int(EventType.INSTRUCTION): "instruction", int(EventType.POST): "post"}[etype]
        allowed = pages.get(eid) if kind == "feeling" else None
        v = check(text, ground(user, kind, allowed), titles, clean=False)
        kept += v.ok
        reasons.update([v.reason] if v.reason else [])
    for lines in chats.values():
        speakers = list(dict.fromkeys(u for u, _ in lines))
        v = check_lines([t for _, t in lines], [ground(u, "chat") for u in speakers], titles)
        kept += v.ok
        reasons.update([v.reason] if v.reason else [])
    thrown = sum(1 for _p, fell, err, _t in calls if fell and err and "unusable" in err)
    failed = sum(1 for _p, fell, err, _t in calls if fell and not (err and "unusable" in err))
    reasons["empty"] += thrown
    # Reflections went to memory, not to the log: the used ones count as kept, unchecked.
    kept += sum(1 for p, fell, _e, _t in calls if p == "reflection" and not fell)
    return {"calls": len(calls), "tokens": sum(int(t or 0) for *_x, t in calls), "kept": kept, "failed": failed, "reasons": dict(reasons)}


def _pct(k: int, n: int) -> str:
    return f"{k / n:.0%}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--run", type=int, action="append", help="run id (repeatable; default: every run in the database)")
    ap.add_argument("--recheck", action="store_true", help="re-judge the used texts of runs recorded before the grounding check")
    ap.add_argument("--prompts", type=Path, help="the prompt folder the run's texts were written from (echo check of --recheck)")
    ap.add_argument("--label", default="", help="a label for the rows")
    args = ap.parse_args()
    engine = connect(args.db, create=False)
    with Session(engine) as s:
        runs = list(s.exec(select(Run).where(Run.id.in_(args.run) if args.run else Run.id > 0).order_by(Run.id)).scalars())
    with engine.connect() as con:
        ticks = dict(con.execute(select(Event.run_id, func.max(Event.tick) + 1).group_by(Event.run_id)).all())
    head = (
        "| run | users × ticks | wall time | language calls | tokens | kept | "
        + " | ".join(f"rejected: {r.replace('_', ' ')}" for r in REASONS)
        + " | no answer |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for run in runs:
        m = rechecked(engine, run.id, args.prompts) if args.recheck else measured(engine, run.id)
        n = max(m["calls"], 1)
        wall = (run.finished_at - run.created_at).total_seconds() if run.finished_at else float("nan")
        cells = [_pct(m["reasons"].get(r, 0), n) for r in REASONS]
        print(
            f"| {args.label}{run.id} {run.name} | {run.n_users} × {ticks.get(run.id, 0)} | {wall / 60:.1f} min | {m['calls']} | {m['tokens']:,} | {_pct(m['kept'], n)} | "
            + " | ".join(cells)
            + f" | {_pct(m['failed'], n)} |"
        )


if __name__ == "__main__":
    main()
