"""Build a World from a validated Scenario (catalog, population, brain, recommender)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from recworld.agents.brains import DecisionParams, ScriptedBrain, UtilityBrain
from recworld.agents.population import MovieLensPopulation, SampledPopulation
from recworld.agents.recommenders import make_recommender
from recworld.catalog import Catalog
from recworld.data import load_interactions_csv, load_items_file, load_movielens
from recworld.data.movielens import MovieLens, item_quality
from recworld.errors import ConfigError
from recworld.protocols import WorldLayer
from recworld.scenarios.schema import Scenario
from recworld.threads import one_blas_thread
from recworld.usermodel.fit import FittedModel, fitted_model
from recworld.usermodel.items import replicate_item_table
from recworld.world import World


@lru_cache(maxsize=4)
def _movielens(path: str | None) -> MovieLens:
    return load_movielens(path)


@lru_cache(maxsize=4)
def _catalog(source: str, path: str | None, dim: int | None, interactions: str | None = None) -> tuple[Catalog, MovieLens | None]:
    if source == "items_file":
        items = load_items_file(path)
        log = load_interactions_csv(interactions, items) if interactions else None
        return Catalog.build(items, progress=True, dim=dim), log
    ml = _movielens(path if source == "movielens_dir" else None)
    quality, _ = item_quality(ml)
    return Catalog.build(ml.items, quality=quality, progress=True, dim=dim), ml


def build_catalog(scenario: Scenario) -> tuple[Catalog, MovieLens | None]:
    """The scenario's catalog (cached per process; a fresh copy's arrays are shared read-only)."""
    c = scenario.catalog
    cat, ml = _catalog(c.source, c.path, c.embedding_dim, c.interactions)
    # Worlds may grow their catalog (posts): hand each one its own copy.
    import copy

    return copy.deepcopy(cat), ml


def build_user_model(scenario: Scenario, catalog: Catalog, log: MovieLens | None, progress: Any = None) -> FittedModel | None:
    """The scenario's user model: fitted to the catalog's interaction log (cached), a fitted file, or none (content only)."""
    choice = scenario.population.model
    if choice == "content":
        return None
    if choice == "fitted":
        if log is None:
            return None  # an item file without interactions: nothing to fit, the content model
        return fitted_model(log, catalog.embeddings, holdout=0.0, seed=0, progress=progress)
    model = FittedModel.load(choice)
    if model.n_items != len(catalog):
        raise ConfigError(f"field 'population.model': {choice} was fitted on {model.n_items} items but the catalog has {len(catalog)}; fit it on this catalog")
    return model


def build_brain(scenario: Scenario, model: FittedModel | None = None) -> Any:
    """The scenario's brain (user-model brains start from the fitted decision parameters)."""
    b = scenario.brain
    base = model.decision if model is not None else DecisionParams()
    if b.kind == "utility":
        try:
            return UtilityBrain(DecisionParams(**{**base.model_dump(), **b.params}))
        except ValidationError as exc:
            raise ConfigError(
                f"field 'brain.params': {str(exc).splitlines()[1] if len(str(exc).splitlines()) > 1 else exc}; see recworld.usermodel.params.DecisionParams"
            ) from None
    if b.kind == "scripted":
        allowed = {"rating", "pages", "instruction"}
        bad = set(b.params) - allowed
        if bad:
            raise ConfigError(f"field 'brain.params': unknown key(s) {sorted(bad)} for the scripted brain; allowed: {sorted(allowed)}")
        return ScriptedBrain(**b.params)
    if b.kind == "distilled":
        from recworld.agents.brains.distilled import DistilledBrain

        if set(b.params) != {"path"}:
            raise ConfigError("field 'brain.params': the distilled brain takes exactly {path: file.json} (made by `recworld distill`)")
        return DistilledBrain.load(b.params["path"])
    from recworld.scenarios.llm_setup import build_llm_brain

    return build_llm_brain(scenario, base)


def build_world(scenario: Scenario) -> World:
    """Assemble the World described by ``scenario`` (not yet stepped).

    Built with one BLAS thread, as the world's ticks run (see :mod:`recworld.threads`).
    """
    with one_blas_thread():
        return _build_world(scenario)


def _build_world(scenario: Scenario) -> World:
    catalog, ml = build_catalog(scenario)
    model = build_user_model(scenario, catalog, ml)
    items = model.item_table() if model is not None else None
    if scenario.catalog.replicate_to:
        # A synthetic larger catalog: the user model is fitted on the real items, copies are near their source.
        catalog, sources = catalog.replicate(scenario.catalog.replicate_to, seed=scenario.seed)
        if items is not None:
            items = replicate_item_table(items, sources, seed=scenario.seed)
    p = scenario.population
    if p.source == "movielens":
        if ml is None:
            raise ConfigError("population.source=movielens needs an interaction log: catalog.source movielens or movielens_dir, or catalog.interactions")
        population = MovieLensPopulation(ml, catalog, n_users=p.n_users, seed=scenario.seed, model=model)
    else:
        population = SampledPopulation(
            catalog,
            n_users=p.n_users or 1000,
            seed=scenario.seed,
            activity_mean=p.activity_mean,
            patience=p.patience,
            conformity=p.conformity,
            diversity_seeking=p.diversity_seeking,
            taste_noise=p.taste_noise,
            model=model,
            item_factors=None if items is None else items.factors[: len(catalog)],
        )
    brain = build_brain(scenario, model)
    rec = make_recommender(scenario.recommender.name, scenario.recommender.params)
    if scenario.world.slate_size > len(catalog):
        raise ConfigError(f"field 'world.slate_size': {scenario.world.slate_size} is larger than the catalog ({len(catalog)} items); lower it")
    world = World(catalog, population, brain, rec, config=scenario.world, seed=scenario.seed, items=items, name=scenario.name)
    if scenario.social.get("enabled"):
        from recworld.agents.social import SocialLayer

        world.add_layer(SocialLayer.from_config(world, scenario.social, brain=brain, seed=scenario.seed))
    if scenario.conversation.get("enabled"):
        from recworld.agents.conversation.layer import ConversationLayer

        params = dict(scenario.crs.params)
        if scenario.crs.name == "llm":
            params.setdefault("llm", scenario.llm)  # the LLM agent talks to the scenario's LLM unless told otherwise
        world.add_layer(ConversationLayer.from_config(scenario.conversation, scenario.crs.name, params, brain=brain))
    if scenario.search.get("enabled"):
        from recworld.agents.search import SearchLayer

        world.add_layer(SearchLayer.from_config(scenario.search))
    # LLM brains (memory, instruction encoder, LLM accounting, the language pipeline) go last:
    # the texts the social layer's users ask for in a tick are heard after it.
    if isinstance(brain, WorldLayer):
        world.add_layer(brain)
    return world
