"""``recworld validate``: how faithful the simulated users are, on held-out real behaviour.

The user model is fitted on a training split of the scenario's interaction log
only (a share of each user's interactions held out); then, on the held-out
split:

- Agent4Rec's taste alignment at 1:1, 1:3 and 1:9: each item shown alone to
  its user, who decides whether to watch it; accuracy, precision, recall and
  F1 of the users' most likely decisions and of their decisions as sampled
  in a run (the brain's own ``decide`` with random draws);
- the AUC of the users' watch propensity (held-out items vs never-interacted
  items), beside training-set popularity and a plain implicit MF on the same split;
- rating RMSE and MAE of the expected rating, and the total-variation
  distance between the histograms of sampled and real held-out ratings;
- shapes: interactions per user and the share of consumption on the top 10%
  of items, simulated vs real (held out);
- sim-to-real agreement: the built-in recommenders, trained on the training
  split, ranked by engagement in a simulation of the training-split users and
  by recall@10 / NDCG@10 on the real held-out interactions; Spearman and
  Kendall correlations of the two rankings;
- conversations (iEvaLM's interactive protocol): the same users talk with the
  scenario's conversational agent with a hidden target drawn from their
  modelled taste, target-free, and with a held-out real item they rated 4 or
  5 as the target; success rate and recall@k by turn in each mode.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from recworld.agents.population import MovieLensPopulation
from recworld.agents.recommenders import make_recommender
from recworld.catalog import Catalog
from recworld.data.movielens import MovieLens, item_quality
from recworld.errors import ConfigError
from recworld.protocols import RecContext, WorldLayer
from recworld.scenarios.build import build_brain, build_catalog
from recworld.scenarios.schema import Scenario
from recworld.seen import SeenMatrix
from recworld.usermodel import fidelity as F
from recworld.usermodel.draws import PageDraws
from recworld.usermodel.fit import FitConfig, FittedModel, fitted_model
from recworld.usermodel.kernels import rating_distribution
from recworld.usermodel.params import decision_record
from recworld.usermodel.report import ValidationReport
from recworld.usermodel.wrmf import fit_factors
from recworld.world import World

RATIOS = (1, 3, 9)
RECOMMENDERS = ("random", "popularity", "mf", "linucb", "itemknn")
# What the targets ask of a faithful user model (README table).
TARGETS = {
    "accuracy_most_likely_1:1": 0.85,
    "f1_most_likely_1:1": 0.85,
    "accuracy_sampled_1:1": 0.78,
    "f1_sampled_1:1": 0.78,
    "auc": 0.92,
    "rating_rmse": 0.92,
    "rating_tv": 0.05,
    "spearman": 0.9,
}
Say = Callable[[str], None]


@dataclass
class Split:
    """The log split for validation: per user, held-out items and every item they interacted with."""

    log: MovieLens
    train: np.ndarray
    held_out: list[np.ndarray]
    interacted: list[np.ndarray]


def _split(log: MovieLens, model: FittedModel) -> Split:
    n_users = len(log.users)
    test = ~model.train_mask
    by_user = [[] for _ in range(n_users)]
    for u, i in zip(log.rating_user[test].tolist(), log.rating_item[test].tolist()):
        by_user[u].append(i)
    every = [[] for _ in range(n_users)]
    for u, i in zip(log.rating_user.tolist(), log.rating_item.tolist()):
        every[u].append(i)
    return Split(log, model.train_mask, [np.unique(np.asarray(x, np.int64)) for x in by_user], [np.unique(np.asarray(x, np.int64)) for x in every])


def _train_catalog(catalog: Catalog, log: MovieLens, train: np.ndarray) -> Catalog:
    # Item quality from the training ratings only: the held-out ratings must not leak into the world.
    cat = copy.deepcopy(catalog)
    cat.quality = item_quality(log, mask=train)[0]
    return cat


def _world(scenario: Scenario, catalog: Catalog, split: Split, model: FittedModel, recommender: str, brain: Any, seed: int) -> World:
    pop = MovieLensPopulation(split.log, catalog, seed=seed, model=model)
    cfg = scenario.world
    world = World(catalog, pop, brain, make_recommender(recommender), config=cfg, seed=seed, items=model.item_table())
    tu, ti = split.log.rating_user[split.train], split.log.rating_item[split.train]
    world.mark_seen(tu, ti)  # what users already consumed before the run is not new to them
    return world


def _decide_alone(world: World, brain: Any, users: np.ndarray, items: np.ndarray, rng: np.random.Generator, batch: int = 4096) -> tuple[np.ndarray, int]:
    """Sampled decisions of ``brain`` for each item shown alone on a page to its user, and how many fell back to the user model."""
    out = np.zeros(users.size, bool)
    layout = PageDraws(1)
    fallbacks = 0
    for s in range(0, users.size, batch):
        u, it = users[s : s + batch], items[s : s + batch, None]
        dec = brain.decide(world.page_context(u, it, 0, layout.draw(rng, u.size)))
        out[s : s + batch] = np.asarray(dec.watched, bool)[:, 0]
        if dec.fallback is not None:
            fallbacks += int(np.sum(dec.fallback))
    return out, fallbacks


def _watch_logits(world: World, brain: Any, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Logit of P(watch) of each item shown alone to its user (the user model's propensity)."""
    utility = getattr(brain, "utility", brain)  # hybrid/llm brains decide with their inner user model
    ctx = world.page_context(users, items[:, None], 0, np.zeros((users.size, PageDraws(1).width)))
    return np.asarray(utility.watch_logits(ctx))[:, 0]


def taste_alignment(world: World, brain: Any, split: Split, seed: int, users: np.ndarray | None = None) -> dict[str, Any]:
    """Agent4Rec's protocol at 1:1, 1:3 and 1:9 (most likely decisions only for user-model brains)."""
    n_items = len(split.log.items)
    held, inter = split.held_out, split.interacted
    if users is not None:
        keep = set(users.tolist())
        held = [h if u in keep else h[:0] for u, h in enumerate(held)]
    out: dict[str, Any] = {}
    # Brains that decide with the user model (utility, distilled, hybrid) have a most likely decision; the llm brain only samples.
    model_brain = getattr(brain, "name", "") != "llm"
    for m in RATIOS:
        ps = F.protocol_set(held, inter, n_items, m, np.random.default_rng(seed * 1000 + m))
        row: dict[str, Any] = {"shown": int(ps.users.size), "positives": int(ps.labels.sum())}
        if model_brain:
            p_logit = _watch_logits(world, brain, ps.users, ps.items)
            row["most_likely"] = F.decision_metrics(p_logit > 0, ps.labels)
        sampled, fallbacks = _decide_alone(world, brain, ps.users, ps.items, np.random.default_rng(seed * 1000 + 500 + m))
        row["sampled"] = F.decision_metrics(sampled, ps.labels)
        row["fallbacks"] = fallbacks
        if users is not None:  # a sample (LLM brains): keep what was shown and decided
            row["items"] = {"users": ps.users.tolist(), "items": ps.items.tolist(), "labels": ps.labels.tolist(), "decisions": sampled.tolist()}
        out[f"1:{m}"] = row
    return out


def propensity_auc(world: World, brain: Any, split: Split, seed: int) -> dict[str, float]:
    """Mean per-user AUC of the watch propensity, training-set popularity and a plain implicit MF."""
    log, n_items = split.log, len(split.log.items)
    n_users = len(log.users)
    all_items = np.arange(n_items)
    cache: dict[int, np.ndarray] = {}

    def model_scores(u: int) -> np.ndarray:
        if u not in cache:
            cache.clear()
            cache[u] = _watch_logits(world, brain, np.full(n_items, u), all_items)
        return cache[u]

    counts = np.bincount(log.rating_item[split.train], minlength=n_items).astype(np.float64)
    from scipy import sparse

    R = sparse.csr_matrix((np.ones(int(split.train.sum())), (log.rating_user[split.train], log.rating_item[split.train])), shape=(n_users, n_items))
    R.data[:] = 1.0
    mf = fit_factors(R, np.zeros((n_items, 1)), k=32, alpha=10.0, lam=10.0, seed=seed)
    return {
        "model": F.mean_user_auc(model_scores, split.held_out, split.interacted, n_items),
        "popularity": F.mean_user_auc(lambda u: counts, split.held_out, split.interacted, n_items),
        "mf": F.mean_user_auc(lambda u: mf.P[u] @ mf.Q.T, split.held_out, split.interacted, n_items),
    }


def rating_fidelity(world: World, model: FittedModel, brain: Any, split: Split, seed: int) -> dict[str, Any]:
    """RMSE/MAE of the expected held-out rating; TV distance of sampled vs real rating histograms."""
    log = split.log
    test = ~split.train & ~np.isnan(log.rating)
    users, items, real = log.rating_user[test].astype(np.int64), log.rating_item[test].astype(np.int64), log.rating[test].astype(np.float64)
    utility = getattr(brain, "utility", brain)
    params = getattr(utility, "record", None) if hasattr(utility, "record") else decision_record(model.decision)
    probs = np.empty((users.size, 5))
    rating_distribution(params, world.state, world.items, users, items, probs)
    expected = probs @ np.arange(1, 6)
    rng = np.random.default_rng(seed + 31)
    sampled = 1 + (rng.random((users.size, 1)) > np.cumsum(probs, axis=1)).sum(axis=1)
    hist_sim, hist_real = F.histogram(sampled), F.histogram(real)
    return {
        **F.rating_errors(expected, real),
        "global_mean_rmse": F.rating_errors(np.full(real.size, real.mean()), real)["rmse"],
        "tv": F.tv_distance(hist_sim, hist_real),
        "histogram_sampled": [round(float(x), 4) for x in hist_sim],
        "histogram_real": [round(float(x), 4) for x in hist_real],
        "ratings": int(real.size),
    }


def _top_k(rec: Any, users: np.ndarray, n_items: int, seen: SeenMatrix, emb: np.ndarray, k: int = 10) -> np.ndarray:
    ctx = RecContext(tick=0, n_items=n_items, item_embeddings=emb, seen=seen, rng=np.random.default_rng(0), page=0)
    out = []
    for s in range(0, users.size, 256):
        out.append(np.asarray(rec.recommend(users[s : s + 256], k, ctx)))
    return np.concatenate(out)


def agreement(
    scenario: Scenario,
    catalog: Catalog,
    split: Split,
    model: FittedModel,
    brain_factory: Callable[[], Any],
    seed: int,
    ticks: int,
    recommenders: tuple[str, ...],
    say: Say,
) -> dict[str, Any]:
    """Rank recommenders by simulated engagement and by offline accuracy on the held-out split; their correlation."""
    log = split.log
    n_users, n_items = len(log.users), len(log.items)
    tu, ti, tr = log.rating_user[split.train], log.rating_item[split.train], log.rating[split.train]
    real_counts_user = np.bincount(log.rating_user[~split.train], minlength=n_users)
    real_counts_item = np.bincount(log.rating_item[~split.train], minlength=n_items)
    rows = []
    for name in recommenders:
        say(f"agreement: {name} (offline top-10, then {ticks} simulated ticks)")
        world = _world(scenario, catalog, split, model, name, brain_factory(), seed)
        world.recommender.pretrain(tu, ti, tr, n_items, np.random.default_rng(seed + 17), k=world.config.slate_size)
        ranked = _top_k(world.recommender, np.arange(n_users), n_items, world.seen, catalog.embeddings)
        recall, ndcg = F.recall_ndcg_at_k(ranked, split.held_out, 10)
        before = world.users.watches.copy()
        impressions = watches = 0
        item_watch = np.zeros(n_items)
        sessions_before = world.users.sessions.copy()
        for _ in range(ticks):
            world.step()
            m = world.last_metrics
            impressions += m["impressions"] if isinstance(m, dict) else m.impressions
            watches += m["watches"] if isinstance(m, dict) else m.watches
        per_user = world.users.watches - before
        item_watch = world.watch_counts[:n_items].astype(np.float64)
        norm = lambda x: x / max(x.mean(), 1e-9)  # noqa: E731
        rows.append(
            {
                "recommender": name,
                "recall@10": recall,
                "ndcg@10": ndcg,
                "watches_per_user": float(per_user.mean()),
                "watch_rate": watches / max(impressions, 1),
                "sessions_per_user": float((world.users.sessions - sessions_before).mean()),
                "top10_share": F.top_share(item_watch),
                "per_user_ks": F.ks_distance(norm(per_user.astype(np.float64)), norm(real_counts_user.astype(np.float64))),
            }
        )
    eng = np.array([r["watches_per_user"] for r in rows])
    rec10 = np.array([r["recall@10"] for r in rows])
    nd10 = np.array([r["ndcg@10"] for r in rows])
    return {
        "ticks": ticks,
        "rows": rows,
        "spearman_recall": F.spearman(eng, rec10),
        "kendall_recall": F.kendall(eng, rec10),
        "spearman_ndcg": F.spearman(eng, nd10),
        "kendall_ndcg": F.kendall(eng, nd10),
        "real_top10_share": F.top_share(real_counts_item.astype(np.float64)),
        "real_per_user_quantiles": F.quantiles(real_counts_user),
    }


def validate(
    scenario: Scenario,
    holdout: float = 0.2,
    seed: int = 0,
    ticks: int = 72,
    recommenders: tuple[str, ...] = RECOMMENDERS,
    llm_users: int | None = None,
    config: FitConfig | None = None,
    progress: Say | None = None,
    conversations: int = 200,
) -> dict[str, Any]:
    """The fidelity report of ``scenario``'s users (see the module docstring).

    Args:
        holdout: share of each user's interactions held out.
        seed: the split's and the protocol's seed.
        ticks: length of each agreement simulation.
        recommenders: the recommenders ranked in the agreement test (empty: skip it).
        llm_users: with an LLM brain, run the protocol for this many users only (one LLM call per item).
        config: the fit's settings (default: :class:`~recworld.usermodel.fit.FitConfig`).
        conversations: users in the conversation protocol (:func:`conversation_modes`; 0 skips it).
    """
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    catalog, log = build_catalog(scenario)
    if log is None:
        raise ConfigError("validate needs an interaction log: catalog.source movielens or movielens_dir, or an items_file with catalog.interactions")
    if scenario.population.model not in ("fitted",):
        raise ConfigError("validate fits its own user model on the training split; remove population.model from the scenario (or set it to 'fitted')")
    if scenario.brain.kind == "llm":
        # Every protocol page is the model's own decision: no per-tick call budget (fallbacks are counted).
        scenario = scenario.with_overrides(**{"brain.params": {**scenario.brain.params, "max_calls_per_tick": 10**9}})
    say(f"fitting the user model on {1 - holdout:.0%} of each user's interactions (cached after the first run)")
    model = fitted_model(log, catalog.embeddings, holdout=holdout, seed=seed, config=config, progress=lambda m: say(f"  {m}"))
    split = _split(log, model)
    cat = _train_catalog(catalog, log, split.train)
    brain = build_brain(scenario, model)
    world = _world(scenario, cat, split, model, "random", brain, seed)
    kind = scenario.brain.kind
    sample = None
    if kind == "llm" and llm_users:
        sample = np.random.default_rng(seed).choice(len(log.users), size=min(llm_users, len(log.users)), replace=False)
    say(f"taste alignment (Agent4Rec) with the {kind} brain")
    report: dict[str, Any] = {
        "scenario": scenario.name,
        "brain": kind,
        "holdout": holdout,
        "seed": seed,
        "fit": {
            "coefficients": model.report.get("coefficients"),
            "awareness": model.report.get("awareness"),
            "exposures_per_watch": model.config.exposures_per_watch,
        },
        "taste_alignment": taste_alignment(world, brain, split, seed, sample),
    }
    if kind != "llm":
        say("propensity AUC")
        report["auc"] = propensity_auc(world, brain, split, seed)
        say("ratings")
        report["ratings"] = rating_fidelity(world, model, brain, split, seed)
    if conversations:
        say(f"conversations (iEvaLM) in three intent modes, {conversations} users")
        report["conversations"] = conversation_modes(scenario, cat, split, model, seed, conversations)
    if recommenders:
        report["agreement"] = agreement(scenario, cat, split, model, lambda: build_brain(scenario, model), seed, ticks, recommenders, say)
    report["targets"] = check_targets(report)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    if isinstance(brain, WorldLayer):  # an LLM brain: close its runtime
        brain.close()
    ValidationReport.model_validate(report)  # the readers' contract (the dashboard parses what is stored with it)
    return report


def conversation_modes(
    scenario: Scenario, catalog: Catalog, split: Split, model: FittedModel, seed: int, n_users: int = 200, ks: tuple[int, ...] = (1, 3, 5)
) -> dict[str, Any]:
    """iEvaLM's protocol in three intent modes, for the same users (those with a held-out item rated 4 or 5).

    Each mode starts from the training-split world (training interactions
    seen, the platform's recommender ``popularity`` as the agent's ranking
    expert); every sampled user holds one conversation with the scenario's
    ``crs`` agent (templates; decisions by the fitted user model). Modes:
    ``target`` (the target drawn from the model's taste), ``target_free``
    (success = any accept) and ``held_out`` (the target is a real held-out
    item the user rated 4 or 5: never seen by the fit nor the world).
    """
    from recworld.agents.brains import UtilityBrain
    from recworld.agents.conversation.agents import make_crs
    from recworld.agents.conversation.layer import ConversationConfig, ConversationLayer
    from recworld.agents.conversation.user import held_out_targets, intent_for_target
    from recworld.envs.conversation import recall_by_turn
    from recworld.events import EventType
    from recworld.metrics import mean_ci
    from recworld.payloads import ConversationEndPayload

    log = split.log
    targets = held_out_targets(log.rating_user, log.rating_item, log.rating, ~split.train, len(log.users))
    eligible = np.flatnonzero([t.size > 0 for t in targets])
    users = np.sort(np.random.default_rng(seed).choice(eligible, size=min(n_users, eligible.size), replace=False))
    out: dict[str, Any] = {"users": int(users.size), "agent": scenario.crs.name, "modes": {}}
    for mode in ("target", "target_free", "held_out"):
        world = _world(scenario, catalog, split, model, "popularity", UtilityBrain(model.decision), seed)
        cfg = ConversationConfig(rate=0.0, mode="target" if mode == "held_out" else mode, use_llm=False)  # type: ignore[arg-type]
        layer = ConversationLayer(cfg, make_crs(scenario.crs.name, scenario.crs.params))
        layer.bind(world, np.random.default_rng(seed))
        active = world.begin_tick(only=users)
        intents = None
        if mode == "held_out":
            picks = [int(targets[u][layer.rng.integers(targets[u].size)]) for u in active.tolist()]
            intents = [intent_for_target(t, layer.index.attributes(t), layer.rng) for t in picks]
        layer.converse_all(world, active, intents)
        world.end_tick()
        ev = world.last_events
        ends = [ConversationEndPayload.read(ev.payload[i]) for i in np.flatnonzero(ev.type == EventType.CONVERSATION_END).tolist()]
        episodes = [{"success": e.outcome == "success", "reference": e.reference, "recommended": e.recommended} for e in ends]
        m, lo, hi = mean_ci(np.array([e["success"] for e in episodes], float))
        out["modes"][mode] = {
            "conversations": len(ends),
            "success": m,
            "success_ci": [lo, hi],
            "recall": {f"@{k}": recall_by_turn(episodes, k) for k in ks},
            "agent_turns": float(np.mean([len(e.recommended) for e in ends])) if ends else 0.0,
        }
    return out


def check_targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of :data:`TARGETS`: the measured value and whether it is met."""
    ta = report.get("taste_alignment", {}).get("1:1", {})
    got = {
        "accuracy_most_likely_1:1": ta.get("most_likely", {}).get("accuracy"),
        "f1_most_likely_1:1": ta.get("most_likely", {}).get("f1"),
        "accuracy_sampled_1:1": ta.get("sampled", {}).get("accuracy"),
        "f1_sampled_1:1": ta.get("sampled", {}).get("f1"),
        "auc": report.get("auc", {}).get("model"),
        "rating_rmse": report.get("ratings", {}).get("rmse"),
        "rating_tv": report.get("ratings", {}).get("tv"),
        "spearman": report.get("agreement", {}).get("spearman_recall"),
    }
    out = {}
    for key, target in TARGETS.items():
        v = got[key]
        lower_is_better = key in ("rating_rmse", "rating_tv")
        met = None if v is None else (v <= target if lower_is_better else v >= target)
        out[key] = {"value": v, "target": target, "met": met}
    return out


__all__ = [
    "RATIOS",
    "RECOMMENDERS",
    "TARGETS",
    "agreement",
    "check_targets",
    "conversation_modes",
    "propensity_auc",
    "rating_fidelity",
    "taste_alignment",
    "validate",
]
