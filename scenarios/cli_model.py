"""The user-model commands of the ``recworld`` CLI: ``fit`` and ``validate``."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from recworld.errors import ConfigError


def _scenario(args: argparse.Namespace) -> Any:
    from recworld.scenarios.schema import load_scenario

    overrides = {"brain.kind": getattr(args, "brain", None)}
    return load_scenario(args.scenario).with_overrides(**overrides)


def cmd_fit(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Fit the user model to a scenario's interaction log (cached) and print what was fitted."""
    from recworld.scenarios.build import build_catalog
    from recworld.usermodel.fit import cache_dir, fitted_model, model_key

    scenario = _scenario(args)
    catalog, log = build_catalog(scenario)
    if log is None:
        raise ConfigError(
            "the scenario's catalog has no interaction log to fit; use catalog.source movielens/movielens_dir or an items_file with catalog.interactions"
        )
    if not 0.0 <= args.holdout < 1.0:
        raise ConfigError(f"--holdout must be in [0, 1), got {args.holdout}")
    with err.status("fitting the user model") as status:
        model = fitted_model(
            log, catalog.embeddings, holdout=args.holdout, seed=args.seed, progress=lambda m: status.update(f"fitting the user model: {m}"), refit=args.refit
        )
    rep = model.report
    t = Table(
        title=f"user model of {scenario.catalog.source} ({rep['interactions']} training interactions, {rep['users']} users, {rep['items']} items)",
        header_style="bold",
    )
    t.add_column("parameter")
    t.add_column("fitted", justify="right")
    for k, v in rep["coefficients"].items():
        t.add_row(f"choice: {k}", f"{v:.3f}")
    for k, v in rep["awareness"].items():
        t.add_row(f"awareness: {k}", f"{v:.3f}")
    d = model.decision
    t.add_row("rating cut points", ", ".join(f"{c:.2f}" for c in (d.cut1, d.cut2, d.cut3, d.cut4)))
    t.add_row("leave: base hazard (logit)", f"{d.leave_base:.3f}")
    t.add_row("cold items (text prior only)", str(rep["cold_items"]))
    out.print(t)
    cached = cache_dir() / f"{model_key(log, catalog.embeddings, args.holdout, args.seed, model.config)}.npz"
    if args.out:
        path = model.save(args.out)
        err.print(f"saved to {path}; use it with population: {{model: {path}}}")
    else:
        err.print(f"cached at {cached}")
    return 0


def _fit_config(args: argparse.Namespace) -> Any:
    from recworld.usermodel.fit import FitConfig

    if args.exposures_per_watch <= 0:
        raise ConfigError(f"--exposures-per-watch must be > 0, got {args.exposures_per_watch}")
    return FitConfig(exposures_per_watch=args.exposures_per_watch)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def validation_tables(report: dict[str, Any]) -> list[Table]:
    """The fidelity report as rich tables."""
    tables = []
    t = Table(title=f"taste alignment (Agent4Rec protocol), {report['brain']} brain, held-out {report['holdout']:.0%}", header_style="bold")
    for col in ("ratio", "decisions", "accuracy", "precision", "recall", "F1"):
        t.add_column(col, justify="right" if col not in ("ratio", "decisions") else "left")
    for ratio, row in report["taste_alignment"].items():
        for kind in ("most_likely", "sampled"):
            m = row.get(kind)
            if m:
                t.add_row(ratio, kind.replace("_", " "), *(_pct(m[k]) for k in ("accuracy", "precision", "recall", "f1")))
    tables.append(t)
    if "auc" in report:
        a = Table(title="watch propensity AUC (held-out vs never-interacted items, mean over users)", header_style="bold")
        a.add_column("scorer")
        a.add_column("AUC", justify="right")
        for k, label in (("model", "the simulated users"), ("mf", "implicit MF (reference)"), ("popularity", "training popularity (reference)")):
            a.add_row(label, _pct(report["auc"][k]))
        tables.append(a)
    if "ratings" in report:
        r = report["ratings"]
        rt = Table(title=f"held-out ratings ({r['ratings']})", header_style="bold")
        rt.add_column("measure")
        rt.add_column("value", justify="right")
        rt.add_row("RMSE (expected rating)", _pct(r["rmse"]))
        rt.add_row("MAE", _pct(r["mae"]))
        rt.add_row("RMSE of the global mean", _pct(r["global_mean_rmse"]))
        rt.add_row("TV distance of the histograms", _pct(r["tv"]))
        rt.add_row("histogram sampled / real", f"{r['histogram_sampled']} / {r['histogram_real']}")
        tables.append(rt)
    if "agreement" in report:
        ag = report["agreement"]
        g = Table(
            title=f"sim-to-real agreement ({ag['ticks']} ticks): Spearman {_pct(ag['spearman_recall'])}, Kendall {_pct(ag['kendall_recall'])} (recall@10); {_pct(ag['spearman_ndcg'])}, {_pct(ag['kendall_ndcg'])} (NDCG@10)",
            header_style="bold",
        )
        for col in ("recommender", "recall@10", "NDCG@10", "sim watches / user", "sim watch rate", "sim top-10% share", "KS per-user"):
            g.add_column(col, justify="left" if col == "recommender" else "right")
        for row in ag["rows"]:
            g.add_row(row["recommender"], *(_pct(row[k]) for k in ("recall@10", "ndcg@10", "watches_per_user", "watch_rate", "top10_share", "per_user_ks")))
        g.add_row("real (held out)", "", "", "", "", _pct(ag["real_top10_share"]), "")
        tables.append(g)
    if report.get("conversations"):
        cv = report["conversations"]
        c = Table(title=f"conversations (iEvaLM protocol), agent {cv['agent']}, the same {cv['users']} users per mode", header_style="bold")
        for col in ("intent", "conversations", "success", "95% CI", "recall@1", "recall@3", "recall@5", "agent turns"):
            c.add_column(col, justify="left" if col == "intent" else "right")
        for mode, label in (("target", "target from the model's taste"), ("target_free", "target-free"), ("held_out", "held-out real item (rated 4-5)")):
            r = cv["modes"].get(mode)
            if r:
                lo, hi = r["success_ci"]
                c.add_row(
                    label,
                    str(r["conversations"]),
                    _pct(r["success"]),
                    f"[{lo:.3f}, {hi:.3f}]",
                    *(_pct(r["recall"].get(k)) for k in ("@1", "@3", "@5")),
                    f"{r['agent_turns']:.2f}",
                )
        tables.append(c)
    tt = Table(title="targets", header_style="bold")
    for col in ("measure", "value", "target", "met"):
        tt.add_column(col)
    for k, v in report["targets"].items():
        met = "–" if v["met"] is None else ("yes" if v["met"] else "NO")
        tt.add_row(k, _pct(v["value"]), f"{'<=' if k.startswith('rating') else '>='} {v['target']}", met)
    tables.append(tt)
    return tables


def cmd_validate(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run the fidelity protocols, print the report, store it in the database, optionally write JSON."""
    from recworld.scenarios.validate import RECOMMENDERS, validate
    from recworld.storage import Validation, connect
    from recworld.storage.db import redact

    if not 0.0 < args.holdout < 1.0:
        raise ConfigError(f"--holdout must be in (0, 1), got {args.holdout}")
    if args.ticks < 1:
        raise ConfigError(f"--ticks must be >= 1, got {args.ticks}")
    if args.conversations < 0:
        raise ConfigError(f"--conversations must be >= 0, got {args.conversations}")
    recs = tuple(r for r in (args.recommenders or ",".join(RECOMMENDERS)).split(",") if r and r != "none")
    scenario = _scenario(args)
    with err.status("validating") as status:
        report = validate(
            scenario,
            holdout=args.holdout,
            seed=args.seed,
            ticks=args.ticks,
            recommenders=recs,
            llm_users=args.llm_users,
            config=_fit_config(args),
            progress=lambda m: status.update(m),
            conversations=args.conversations,
        )
    for t in validation_tables(report):
        out.print(t)
    name = args.name or datetime.now().strftime("validate-%Y%m%d-%H%M%S")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
        err.print(f"report written to {args.json}")
    db = args.db or scenario.storage.url
    from sqlmodel import Session

    engine = connect(db)
    with Session(engine) as s:
        s.add(Validation(name=name, scenario=scenario.name, brain=scenario.brain.kind, seed=args.seed, holdout=args.holdout, report_json=json.dumps(report)))
        s.commit()
    err.print(f"stored as {name!r} in {redact(db)}; see it with: recworld dashboard --db {redact(db)} (Validations)")
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``fit`` and ``validate`` on the CLI's subparsers."""
    f = sub.add_parser("fit", help="fit the user model to a scenario's interaction log (cached; set-up fits the bundled one)")
    f.add_argument("scenario", nargs="?", default="quickstart", help="scenario whose catalog's log to fit (default: quickstart = ML-100K)")
    f.add_argument("--holdout", type=float, default=0.0, help="share of each user's interactions held out of the fit (default 0)")
    f.add_argument("--seed", type=int, default=0, help="seed of the split and the fit (default 0)")
    f.add_argument("--out", help="also write the fitted model here (.npz); use it with population: {model: FILE}")
    f.add_argument("--refit", action="store_true", help="fit again even if a cached fit exists")
    f.add_argument(
        "--exposures-per-watch",
        type=float,
        default=1.0,
        help="the fit's exposure assumption: unconsumed items a user was shown per item consumed (default 1; see README)",
    )
    f.set_defaults(func=cmd_fit)
    v = sub.add_parser("validate", help="measure the simulated users against held-out real behaviour (fidelity report)")
    v.add_argument("scenario", nargs="?", default="quickstart", help="scenario to validate (default: quickstart = ML-100K users)")
    v.add_argument("--holdout", type=float, default=0.2, help="share of each user's interactions held out (default 0.2)")
    v.add_argument("--seed", type=int, default=0, help="seed of the split, the fit and the protocol (default 0)")
    v.add_argument("--brain", choices=["utility", "hybrid", "llm", "distilled"], help="override the scenario's brain")
    v.add_argument("--ticks", type=int, default=72, help="length of each sim-to-real agreement simulation (default 72)")
    v.add_argument("--recommenders", help="comma-separated recommenders for the agreement test, or 'none' (default: all built-ins)")
    v.add_argument(
        "--conversations",
        type=int,
        default=200,
        help="users in the conversation protocol: target, target-free and held-out-item intents (default 200; 0 skips)",
    )
    v.add_argument("--llm-users", type=int, default=None, help="llm brain: run the protocol for a sample of this many users (one LLM call per item)")
    v.add_argument(
        "--exposures-per-watch",
        type=float,
        default=1.0,
        help="the fit's exposure assumption: unconsumed items a user was shown per item consumed (default 1; see README)",
    )
    v.add_argument("--json", help="also write the report as JSON to this file")
    v.add_argument("--db", help="database to store the report in (default: the scenario's storage.url)")
    v.add_argument("--name", help="name of the stored report (default: validate-DATE-TIME)")
    v.set_defaults(func=cmd_validate)


__all__ = ["add_parsers", "cmd_fit", "cmd_validate", "validation_tables"]
