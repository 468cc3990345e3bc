"""The ``recworld`` command line: run, list, resume, compare and sweep scenarios; serve the dashboard; export; train; eval."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from recworld.errors import ConfigError, RecWorldError
from recworld.kpis import CLI_COMPARE, KPIS, RUN_KPIS
from recworld.storage.db import normalise_url, redact

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump, exit 2
        self.exit(EXIT_USAGE, f"recworld: error: {message} (see `{self.prog} --help`)\n")


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def summary_table(summary: dict[str, Any], title: str) -> Table:
    """A two-column table of a run's headline KPIs (:data:`recworld.kpis.RUN_KPIS`, labelled by the registry)."""
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for name in RUN_KPIS:
        kpi = KPIS[name]
        if name in summary and not (kpi.hide_zero and not summary[name]):
            t.add_row(kpi.label, _fmt(summary[name]))
    return t


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "ticks": getattr(args, "ticks", None),
        "seed": getattr(args, "seed", None),
        "population.n_users": getattr(args, "users", None),
        "recommender.name": getattr(args, "recommender", None),
        "brain.kind": getattr(args, "brain", None),
    }


def cmd_run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario

    scenario = load_scenario(args.scenario).with_overrides(**_overrides(args))
    db = args.db or os.environ.get("RECWORLD_DB") or scenario.storage.url
    server = None
    if args.dashboard:
        from recworld.scenarios.serve import start_dashboard

        server = start_dashboard(db, host="127.0.0.1", port=args.port)
        err.print(f"dashboard: http://127.0.0.1:{server.port}/")
    try:
        outcome = run_scenario(scenario, db_url=db, progress=not args.quiet, console=err)
    except KeyboardInterrupt:
        err.print("stopped; the run is marked interrupted. Resume it with `recworld resume RUN_ID --db ...`.")
        return 130
    finally:
        if server is not None and not args.keep_dashboard:
            server.stop()
    out.print(
        summary_table(outcome.summary, f"run {outcome.run_id} · {scenario.name} · {scenario.recommender.name} · {scenario.brain.kind} · seed {scenario.seed}")
    )
    _print_voices(out, db, outcome.run_id)
    if outcome.status == "interrupted":
        err.print(f"interrupted at tick {outcome.ticks_done}; resume with: recworld resume {outcome.run_id} --db {redact(db)}")
        return 130
    if args.interview:
        _interview_one(out, db, outcome.run_id, args.interview)
    err.print(f"run {outcome.run_id} completed; events in {redact(db)}.")
    out.print(
        f"Open the dashboard on this run: recworld dashboard --db {redact(db)}  ->  http://127.0.0.1:8000/runs/{outcome.run_id}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if server is not None and args.keep_dashboard:
        err.print("dashboard still serving; Ctrl-C to stop")
        try:
            server.wait()
        except KeyboardInterrupt:
            server.stop()
    return 0


def _print_voices(out: Console, db: str, run_id: int) -> None:
    """A few things users wrote during the run (posts, chats, instructions, feelings)."""
    from recworld.events import EventType
    from recworld.storage import connect
    from recworld.storage.queries import sample_texts

    engine = connect(db, create=False)
    for etype, label in (
        (EventType.POST, "posts"),
        (EventType.CHAT, "chats"),
        (EventType.INSTRUCTION, "instructions to the recommender"),
        (EventType.FEELING, "feelings"),
    ):
        rows = sample_texts(engine, run_id, int(etype))
        if rows:
            out.print(f"[bold]{label}[/]")
            for tick, user, text in rows:
                out.print(f"  tick {tick:>4} · user {user:>4}: {text}", markup=False, highlight=False, soft_wrap=True)
    line = language_line(engine, run_id)
    if line:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def language_line(engine: Any, run_id: int) -> str | None:
    """One line on what became of the model's text in a run: kept, rejected (by reason), no answer."""
    from recworld.storage.queries import llm_text_outcomes

    rows = [r for p, r in llm_text_outcomes(engine, run_id).items() if p != "decide"]
    calls = sum(int(r["calls"]) for r in rows)
    if not calls:
        return None
    kept = sum(r["kept"] for r in rows)
    reasons: dict[str, int] = {}
    for r in rows:
        for k, n in r["reasons"].items():
            reasons[k] = reasons.get(k, 0) + n
    failed = sum(r["failed"] for r in rows)
    why = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    return (
        f"model text: {kept} of {calls} texts kept ({kept / calls:.0%}); rejected by the grounding check: {sum(reasons.values())}"
        + (f" ({why})" if why else "")
        + (f"; no answer: {failed}" if failed else "")
        + "; rejected texts were replaced by templates"
    )


def _interview_one(out: Console, db: str, run_id: int, question: str) -> None:
    """Ask the run's most vocal user ``question`` and print the answer (the end of `recworld run --interview`)."""
    from recworld.scenarios.interview import interview
    from recworld.storage import connect
    from recworld.storage.queries import most_vocal_user

    engine = connect(db, create=False)
    user = most_vocal_user(engine, run_id)
    if user is None:
        return
    [a] = interview(engine, run_id, [user], question)
    out.print("[bold]an interview[/]")
    _print_answer(out, a)
    out.print(f'  (ask anyone else: recworld interview {run_id} USER "your question" --db {redact(db)})', markup=False, highlight=False, soft_wrap=True)


def _print_answer(out: Console, a: Any) -> None:
    note = "" if a.by == "llm" else f"  [template{': the model answer was rejected as ' + a.rejected if a.rejected else ': the model did not answer'}]"
    out.print(f"  Q to user {a.user_id}: {a.question}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"  A: {a.answer}{note}", markup=False, highlight=False, soft_wrap=True)


def cmd_interview(args: argparse.Namespace, out: Console, err: Console) -> int:
    from recworld.scenarios.interview import interview, run_users, sample_users
    from recworld.storage import connect
    from recworld.storage.queries import get_run

    db = args.db or os.environ.get("RECWORLD_DB") or "sqlite:///runs/recworld.db"
    engine = connect(db, create=False)
    if args.sample is not None and args.sample < 1:
        raise RecWorldError(f"--sample must be at least 1, got {args.sample}")
    path = args.out or f"run{args.run_id}_interviews.csv"
    if args.all and not path.endswith((".csv", ".json")):
        raise RecWorldError(f"--out {path!r}: expected a .csv or .json file")
    if args.all:
        if args.user is not None or args.question_pos is not None:
            raise RecWorldError('with --all give the question as --question "...", not as positional arguments')
        if not args.question:
            raise RecWorldError('--all needs --question "..."')
        run = get_run(engine, args.run_id)
        users = sample_users(run_users(engine, args.run_id), args.sample, run.seed if run is not None else 0)
        question = args.question
    else:
        if args.sample is not None:
            raise RecWorldError("--sample goes with --all")
        question = args.question_pos if args.question_pos is not None else args.question
        if args.user is None or not question:
            raise RecWorldError('expected RUN USER "question" (or RUN --all --question "...")')
        users = [args.user]
    if not users:
        raise RecWorldError(f"run {args.run_id} has no users in {redact(db)}; see `recworld runs --db {redact(db)}`")
    answers = interview(engine, args.run_id, users, question)
    if not args.all:
        _print_answer(out, answers[0])
        return 0
    t = Table(title=f"run {args.run_id}: {question}", header_style="bold")
    for col in ("user", "by", "answer"):
        t.add_column(col)
    for a in answers:
        t.add_row(str(a.user_id), a.by if a.by == "llm" else f"template ({a.rejected or 'no answer'})", a.answer)
    out.print(t)
    _write_answers(path, answers)
    kept = sum(a.by == "llm" for a in answers)
    err.print(f"wrote {len(answers)} answers to {path} ({kept} by the model, {len(answers) - kept} from templates); stored in {redact(db)}")
    return 0


def _write_answers(path: str, answers: list) -> None:
    import csv
    import dataclasses
    import json

    rows = [dataclasses.asdict(a) for a in answers]
    if path.endswith(".json"):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1, ensure_ascii=False)
        return
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["user_id"])
        w.writeheader()
        w.writerows(rows)


def cmd_resume(args: argparse.Namespace, out: Console, err: Console) -> int:
    from recworld.scenarios.runner import resume_run

    db = args.db or os.environ.get("RECWORLD_DB") or "sqlite:///runs/recworld.db"
    try:
        outcome = resume_run(args.run_id, db_url=db, progress=not args.quiet, console=err)
    except KeyboardInterrupt:
        err.print(f"stopped again; resume with `recworld resume {args.run_id} --db {redact(db)}`")
        return 130
    out.print(summary_table(outcome.summary, f"run {outcome.run_id} (resumed)"))
    return 0 if outcome.status == "completed" else 130


def cmd_list(args: argparse.Namespace, out: Console, err: Console) -> int:
    from recworld.scenarios.schema import load_scenario, shipped

    t = Table(title="shipped scenarios", header_style="bold")
    for col in ("name", "recommender", "brain", "users", "ticks", "description"):
        t.add_column(col)
    for name, path in shipped().items():
        s = load_scenario(path)
        t.add_row(name, s.recommender.name, s.brain.kind, str(s.population.n_users or "all"), str(s.ticks), s.description)
    out.print(t)
    return 0


def cmd_runs(args: argparse.Namespace, out: Console, err: Console) -> int:
    from recworld.storage import connect
    from recworld.storage.queries import list_runs

    db = args.db or os.environ.get("RECWORLD_DB") or "sqlite:///runs/recworld.db"
    engine = connect(db, create=False)
    t = Table(title=f"runs in {redact(db)}", header_style="bold")
    for col in ("id", "name", "recommender", "brain", "seed", "status", "ticks", "users"):
        t.add_column(col)
    for r in list_runs(engine, limit=args.limit):
        t.add_row(str(r.id), r.name, r.recommender, r.brain, str(r.seed), r.status, f"{r.tick_done + 1}/{r.ticks_total}", str(r.n_users))
    out.print(t)
    return 0


def cmd_compare(args: argparse.Namespace, out: Console, err: Console) -> int:
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario

    base = load_scenario(args.scenario).with_overrides(**_overrides(args))
    db = args.db or os.environ.get("RECWORLD_DB") or base.storage.url
    names = [n.strip() for n in args.recommenders.split(",") if n.strip()]
    if not names:
        raise RecWorldError("--recommenders is empty; pass e.g. --recommenders random,popularity,mf,linucb")
    results = []
    for name in names:
        s = base.with_overrides(**{"recommender.name": name})
        err.print(f"[bold]{name}[/]")
        o = run_scenario(s, db_url=db, progress=not args.quiet, console=err, run_name=f"{base.name}:{name}")
        results.append((name, o))
    keys = [k for k in CLI_COMPARE if k in results[0][1].summary]
    t = Table(title=f"{base.name}: {base.population.n_users or 'all'} users, {base.ticks} ticks, seed {base.seed}", header_style="bold")
    t.add_column("recommender")
    t.add_column("run")
    for k in keys:
        t.add_column(k, justify="right")
    for name, o in results:
        t.add_row(name, str(o.run_id), *[_fmt(o.summary.get(k)) for k in keys])
    out.print(t)
    if args.markdown:
        print("| recommender | " + " | ".join(keys) + " |")
        print("|---|" + "---:|" * len(keys))
        for name, o in results:
            print(f"| {name} | " + " | ".join(_fmt(o.summary.get(k)) for k in keys) + " |")
    return 0


def _pm(row: dict[str, Any]) -> str:
    """``mean ± half-width`` of a sweep comparison cell."""
    if row["mean"] is None:
        return "–"
    half = (row["ci_high"] - row["ci_low"]) / 2
    return f"{row['mean']:.3f} ± {half:.3f}"


def sweep_table(cmp: dict[str, Any]) -> Table:
    """A sweep's comparison: a row per KPI, a column per recommender, mean ± 95% half-width over seeds."""
    cells = {(r["recommender"], r["metric"]): r for r in cmp["rows"]}
    n = {rec: max((r["n_seeds"] for r in cmp["rows"] if r["recommender"] == rec), default=0) for rec in cmp["recommenders"]}
    t = Table(title=f"sweep {cmp['name']} · {cmp['scenario']} · mean ± 95% CI half-width over seeds (Student-t)", header_style="bold")
    t.add_column("metric")
    for rec in cmp["recommenders"]:
        t.add_column(f"{rec} (n={n[rec]})", justify="right")
    for m in cmp["metrics"]:
        t.add_row(KPIS[m].label if m in KPIS else m, *[_pm(cells[(rec, m)]) if (rec, m) in cells else "–" for rec in cmp["recommenders"]])
    return t


def cmd_sweep(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from recworld.scenarios.schema import load_scenario
    from recworld.scenarios.sweep import parse_recommenders, parse_seeds, run_sweep
    from recworld.storage import connect
    from recworld.storage.queries import sweep_comparison

    if args.no_ray and args.ray:
        raise RecWorldError("--no-ray and --ray ADDRESS contradict each other; pass one of them")
    if args.workers is not None and args.workers < 1:
        raise RecWorldError(f"--workers must be >= 1, got {args.workers}")
    use_ray = not args.no_ray and not (args.workers == 1 and not args.ray)
    base = load_scenario(args.scenario).with_overrides(**_overrides(args))
    seeds = parse_seeds(args.seeds)
    recs = parse_recommenders(args.recommenders)
    db = args.db or os.environ.get("RECWORLD_DB") or base.storage.url
    if args.ray and normalise_url(db).startswith("sqlite"):
        err.print(
            "[yellow]note:[/] a SQLite file works on a cluster only if every node sees it at the same path; use a PostgreSQL URL with --db otherwise",
            soft_wrap=True,
        )
    name = args.name or f"{base.name}-{datetime.now():%Y%m%d-%H%M%S}"
    bar = Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=err, disable=args.quiet)
    task = bar.add_task("runs", total=None)

    def say(msg: str) -> None:
        if not args.quiet:
            bar.console.print(msg, highlight=False, soft_wrap=True)

    def planned(jobs) -> None:
        bar.update(task, total=len(jobs))
        where = "in this process" if not use_ray else (f"on Ray at {args.ray}" if args.ray else "on a local Ray")
        say(f"sweep {name!r}: {len(jobs)} runs ({len(seeds)} seeds x {len(recs)} recommenders) {where}, into {redact(db)}")
        bar.start()

    def finished(r) -> None:
        bar.advance(task)
        if r.status == "completed":
            wr = r.summary.get("watch_rate")
            say(f"  run {r.run_id:>5} · {r.recommender} · seed {r.seed} · {r.seconds:.1f} s" + (f" · watch rate {wr:.3f}" if wr is not None else ""))
        else:
            say(f"  [red]run {r.run_id} · {r.recommender} · seed {r.seed}: {r.status}[/] {escape(r.error or '')}")

    if use_ray:
        from recworld.scenarios.sweep import import_ray

        import_ray()  # a missing extra is one line, before anything is printed
        say(f"connecting to Ray at {args.ray} ..." if args.ray else f"starting a local Ray with {args.workers or os.cpu_count()} workers ...")
    try:
        outcome = run_sweep(
            base, seeds, recs, db_url=db, name=name, use_ray=use_ray, address=args.ray, workers=args.workers, on_planned=planned, on_result=finished
        )
    except KeyboardInterrupt:
        bar.stop()
        err.print(f"stopped; unfinished runs of sweep {name!r} are marked interrupted (see `recworld runs --db {redact(db)}`)")
        return 130
    finally:
        bar.stop()
    cmp = sweep_comparison(connect(outcome.db_url), name)
    if cmp is not None and cmp["metrics"]:
        out.print(sweep_table(cmp))
        if args.markdown:
            print("| metric | " + " | ".join(cmp["recommenders"]) + " |")
            print("|---|" + "---:|" * len(cmp["recommenders"]))
            cells = {(r["recommender"], r["metric"]): r for r in cmp["rows"]}
            for m in cmp["metrics"]:
                print(f"| {m} | " + " | ".join(_pm(cells[(rec, m)]) for rec in cmp["recommenders"]) + " |")
    ray_note = f"; Ray start {outcome.ray_start_seconds:.1f} s" if outcome.ray_start_seconds else ""
    err.print(f"{len(outcome.results)} runs in {outcome.seconds:.1f} s ({outcome.mode}{ray_note})", soft_wrap=True)
    err.print(f"browse: recworld dashboard --db {redact(db)}  ->  /compare?sweep={name}", soft_wrap=True, highlight=False)
    if outcome.failed:
        first = outcome.failed[0]
        err.print(f"recworld: {len(outcome.failed)} of {len(outcome.results)} runs did not complete; first: run {first.run_id}: {first.error}")
        return 1
    return 0


def cmd_dashboard(args: argparse.Namespace, out: Console, err: Console) -> int:
    from recworld.scenarios.serve import serve_dashboard

    db = args.db or os.environ.get("RECWORLD_DB") or "sqlite:///runs/recworld.db"
    return serve_dashboard(
        db, host=args.host, port=args.port, allow_remote=args.allow_remote, token=args.token or os.environ.get("RECWORLD_DASHBOARD_TOKEN"), console=err
    )


EXPORTS = {
    # what: (function name in recworld.export, default file, what a row is)
    "conversations": ("export_conversations", "run{run}_conversations.jsonl", "conversations"),
    "metrics": ("export_metrics", "run{run}_metrics.csv", "ticks"),
    "events": ("export_events", "run{run}_events.csv", "events"),
}


def cmd_export(args: argparse.Namespace, out: Console, err: Console) -> int:
    import recworld.export as X
    from recworld.storage import connect

    db = args.db or os.environ.get("RECWORLD_DB") or "sqlite:///runs/recworld.db"
    engine = connect(db, create=False)
    fn, default, unit = EXPORTS[args.what]
    path = args.out or default.format(run=args.run_id)
    n = getattr(X, fn)(engine, args.run_id, path)
    err.print(f"wrote {n:,} {unit} to {path}")
    return 0


def cmd_distill(args: argparse.Namespace, out: Console, err: Console) -> int:
    from recworld.agents.brains.distilled import DistilledBrain
    from recworld.scenarios.build import build_world
    from recworld.scenarios.schema import load_scenario

    scenario = load_scenario(args.scenario).with_overrides(**_overrides(args))
    world = build_world(scenario)
    teacher = world.brain
    err.print(f"warming the world for {args.warmup} ticks with the {scenario.brain.kind} brain, then {args.pages} pages of decisions")
    try:
        world.run(args.warmup)
        student = DistilledBrain.fit(world, teacher, pages=args.pages, seed=scenario.seed)
    finally:
        world.close()
    path = student.save(args.out)
    t = Table(title=f"distilled from {scenario.brain.kind} ({args.pages} pages)", header_style="bold")
    t.add_column("parameter")
    t.add_column("fitted", justify="right")
    for k, v in sorted(student.fit_report["params"].items()):
        t.add_row(k, f"{v:.3f}")
    out.print(t)
    err.print(f"saved to {path}; use it with brain: {{kind: distilled, params: {{path: {path}}}}}")
    return 0


#: ``recworld train --algo`` per ``--env``: the choices (the first is the default).
TRAIN_ALGOS: dict[str, tuple[str, ...]] = {"feed": ("slate_pg", "ppo"), "conversation": ("es", "fqi")}


def cmd_train(args: argparse.Namespace, out: Console, err: Console) -> int:
    algos = TRAIN_ALGOS[args.env]
    if args.algo is None:
        args.algo = algos[0]
    elif args.algo not in algos:
        raise ConfigError(f"--algo {args.algo} does not apply to --env {args.env}; use one of: {', '.join(algos)}")
    if args.env == "conversation":
        return _train_conversation(args, out, err)
    from recworld.envs.train import train  # PPO names the 'rl' extra when it is missing

    path = train(algo=args.algo, timesteps=args.timesteps, seed=args.seed, out_path=args.out, progress=not args.quiet, n_background=args.background)
    err.print(f"saved policy to {path}; use it in a scenario with recommender: {{name: policy, params: {{path: {path}}}}}")
    return 0


def _train_conversation(args: argparse.Namespace, out: Console, err: Console) -> int:
    import numpy as np

    from recworld.envs.conversation import compare_policies
    from recworld.envs.conversation_train import train_conversation_policy

    if args.timesteps < 1:
        raise ConfigError(f"--timesteps must be >= 1, got {args.timesteps}")
    rounds = [0]
    # An ES generation is many conversations, an FQI round one batch of them.
    every, label = (1, "score (success - turns to success / limit)") if args.algo == "es" else (10, "mean return")

    def show(steps: int, value: float) -> None:
        rounds[0] += 1
        if not args.quiet and rounds[0] % every == 0:
            err.print(f"[dim]{steps:,d}/{args.timesteps:,d} turns: {label} {value:.3f}[/]")

    w, info = train_conversation_policy(args.algo, timesteps=args.timesteps, seed=args.seed, progress=show)
    out_path = args.out if args.out.endswith(".npz") else os.path.splitext(args.out)[0] + ".npz"
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    np.savez(out_path, weights=w, algo=np.array(args.algo))
    if not args.quiet and info.get("chosen"):
        err.print(
            f"[dim]{args.algo}: {info['generations']} generations, {info['train_steps']:,d} training turns; chose {info['chosen']} on validation worlds[/]"
        )
    seeds = list(range(args.eval_seed_start, args.eval_seed_start + args.eval_seeds))
    rows = compare_policies(w, seeds, episodes=args.eval_episodes)
    t = Table(title=f"Conversation-v0: held-out seeds {seeds[0]}..{seeds[-1]} ({args.eval_episodes} conversations each)", header_style="bold")
    for col in ("policy", "metric", "mean", "95% CI"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["policy"], r["metric"], f"{r['mean']:.3f}", f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
    out.print(t)
    err.print(f"saved conversation policy to {out_path}; use it in a scenario with crs: {{name: policy, params: {{path: {out_path}}}}}")
    return 0


def cmd_eval(args: argparse.Namespace, out: Console, err: Console) -> int:
    from recworld.envs.evaluate import evaluate, store_results

    policies: dict[str, str] = {}
    for spec in args.policies.split(","):
        spec = spec.strip()
        if not spec:
            continue
        name, _, target = spec.partition("=")
        policies[name] = target or name
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    results = evaluate(policies, seeds=seeds, episodes=args.episodes, n_background=args.background)
    db = args.db or os.environ.get("RECWORLD_DB") or "sqlite:///runs/recworld.db"
    name = args.name or f"eval-{datetime.now():%Y%m%d-%H%M%S}"
    store_results(db, name, results)
    t = Table(title=f"evaluation on held-out seeds {seeds[0]}..{seeds[-1]}", header_style="bold")
    for col in ("policy", "metric", "mean", "95% CI"):
        t.add_column(col)
    for r in results:
        t.add_row(r["policy"], r["metric"], f"{r['mean']:.3f}", f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
    out.print(t)
    err.print(f"stored as evaluation {name!r} in {redact(db)}; see it under Evaluations in: recworld dashboard --db {redact(db)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="recworld", description="RecWorld: a simulated recommendation platform with LLM users and RL recommenders.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    sub.required = True

    r = sub.add_parser("run", help="run a scenario (a .yaml file or a shipped name)")
    r.add_argument("scenario")
    r.add_argument("--ticks", type=int, help="override the number of ticks")
    r.add_argument("--users", type=int, help="override population.n_users")
    r.add_argument("--seed", type=int, help="override the seed")
    r.add_argument("--recommender", help="override the recommender name")
    r.add_argument("--brain", choices=["utility", "scripted", "hybrid", "llm", "distilled"], help="override the brain")
    r.add_argument("--db", help="database URL or SQLite file (default: the scenario's storage.url)")
    r.add_argument("--dashboard", action="store_true", help="serve the dashboard while the run goes on")
    r.add_argument("--keep-dashboard", action="store_true", help="keep serving the dashboard after the run")
    r.add_argument("--port", type=int, default=8000, help="dashboard port (0 = any free port)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--interview", metavar="QUESTION", help="after the run, ask its most vocal user this question and print the answer")
    r.set_defaults(func=cmd_run)

    iv = sub.add_parser("interview", help='ask the users of a finished run a question: RUN USER "question", or RUN --all --question "..." [--sample N]')
    iv.add_argument("run_id", type=int)
    iv.add_argument("user", type=int, nargs="?", help="the user to ask (0-based id, as on the dashboard)")
    iv.add_argument("question_pos", nargs="?", metavar="question")
    iv.add_argument("--all", action="store_true", help="ask every user (or --sample N of them) and write a table")
    iv.add_argument("--question", help="the question (with --all)")
    iv.add_argument("--sample", type=int, help="with --all: ask this many users, drawn with the run's seed")
    iv.add_argument("--out", help="with --all: a .csv or .json file (default: runN_interviews.csv)")
    iv.add_argument("--db")
    iv.set_defaults(func=cmd_interview)

    c = sub.add_parser("compare", help="run a scenario once per recommender and print a side-by-side table")
    c.add_argument("scenario")
    c.add_argument("--recommenders", default="random,popularity,mf,linucb,itemknn")
    c.add_argument("--ticks", type=int)
    c.add_argument("--users", type=int)
    c.add_argument("--seed", type=int)
    c.add_argument("--db")
    c.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=cmd_compare)

    sw = sub.add_parser("sweep", help="run a scenario over seeds x recommenders (Ray tasks) and compare with 95%% intervals")
    sw.add_argument("scenario")
    sw.add_argument("--seeds", default="0-4", help="seeds: a range (0-31), a list (0,1,2) or both (default 0-4)")
    sw.add_argument("--recommenders", default="random,popularity,mf,linucb,itemknn")
    sw.add_argument("--ray", metavar="ADDRESS", help="a Ray cluster: auto (joins `ray start` on this machine) or ray://host:10001 (default: start a local Ray)")
    sw.add_argument("--workers", type=int, help="CPUs of the local Ray (default: all cores); 1 runs in this process without Ray")
    sw.add_argument("--no-ray", action="store_true", help="run the worlds one by one in this process")
    sw.add_argument("--name", help="sweep name (default: SCENARIO-DATE-TIME); its runs are stored as sweep:NAME")
    sw.add_argument("--ticks", type=int)
    sw.add_argument("--users", type=int)
    sw.add_argument("--brain", choices=["utility", "scripted", "hybrid", "llm", "distilled"])
    sw.add_argument("--db", help="the one database every run writes (SQLite file or PostgreSQL URL)")
    sw.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    sw.add_argument("--quiet", action="store_true", help="no progress")
    sw.set_defaults(func=cmd_sweep)

    s = sub.add_parser("resume", help="continue an interrupted or killed run from its last checkpoint")
    s.add_argument("run_id", type=int)
    s.add_argument("--db")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_resume)

    ls = sub.add_parser("list", help="list the shipped scenarios")
    ls.set_defaults(func=cmd_list)

    rs = sub.add_parser("runs", help="list the runs in a database")
    rs.add_argument("--db")
    rs.add_argument("--limit", type=int, default=50)
    rs.set_defaults(func=cmd_runs)

    d = sub.add_parser("dashboard", help="serve the web dashboard over a run database")
    d.add_argument("--db")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8000)
    d.add_argument("--allow-remote", action="store_true", help="required to bind an address other than loopback")
    d.add_argument("--token", help="access token (required with --allow-remote; or RECWORLD_DASHBOARD_TOKEN)")
    d.set_defaults(func=cmd_dashboard)

    e = sub.add_parser("export", help="export data of a run: per-tick metrics (CSV), the event log (CSV), conversations (JSONL)")
    e.add_argument("what", choices=sorted(EXPORTS))
    e.add_argument("run_id", type=int)
    e.add_argument("--db")
    e.add_argument("--out", help="output file (default: runN_<what>.csv, or .jsonl for conversations)")
    e.set_defaults(func=cmd_export)

    di = sub.add_parser("distill", help="fit a fast utility brain to the decisions of a scenario's (LLM) brain")
    di.add_argument("scenario")
    di.add_argument("--brain", choices=["utility", "scripted", "hybrid", "llm"], help="the teacher (default: the scenario's brain)")
    di.add_argument("--users", type=int)
    di.add_argument("--seed", type=int)
    di.add_argument("--warmup", type=int, default=24, help="ticks to run first so user state varies")
    di.add_argument("--pages", type=int, default=2000, help="pages of teacher decisions to fit on")
    di.add_argument("--out", default="runs/distilled.json")
    di.set_defaults(func=cmd_distill)

    t = sub.add_parser("train", help="train an RL recommender on RecWorld/Feed-v0, or a conversational policy on RecWorld/Conversation-v0")
    t.add_argument(
        "--env",
        choices=["feed", "conversation"],
        default="feed",
        help="feed: a recommender (Feed-v0); conversation: the policy agent's policy (Conversation-v0)",
    )
    t.add_argument("--eval-seeds", type=int, default=5, help="conversation: held-out seeds the trained policy is compared on")
    t.add_argument("--eval-seed-start", type=int, default=1000)
    t.add_argument("--eval-episodes", type=int, default=100, help="conversation: conversations per held-out seed")
    t.add_argument(
        "--algo",
        choices=sorted({a for v in TRAIN_ALGOS.values() for a in v}),
        help="feed: slate_pg (default) or ppo; conversation: es (evolution-strategy policy search, default) or fqi (fitted Monte Carlo Q)",
    )
    t.add_argument("--timesteps", type=int, default=50_000)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="runs/policy.zip")
    t.add_argument("--background", type=int, default=100, help="background users living around each trained user")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="compare policies over held-out seeds with confidence intervals")
    ev.add_argument("--policies", default="random,popularity", help="comma list of NAME or NAME=path/to/policy")
    ev.add_argument("--seeds", type=int, default=10)
    ev.add_argument("--seed-start", type=int, default=1000)
    ev.add_argument("--episodes", type=int, default=8)
    ev.add_argument("--background", type=int, default=100, help="background users living around each evaluated user")
    ev.add_argument("--name", help="name of the stored evaluation (default: eval-DATE-TIME); a rerun under the same name replaces its results")
    ev.add_argument("--db")
    ev.set_defaults(func=cmd_eval)

    from recworld.scenarios.cli_model import add_parsers

    add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``recworld`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Console()
    err = Console(stderr=True)
    try:
        return int(args.func(args, out, err) or 0)
    except RecWorldError as exc:
        # Plain write: one line whatever the terminal width.
        sys.stderr.write(f"recworld: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("recworld: interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
