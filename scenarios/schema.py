"""The scenario file schema (YAML, validated by pydantic before anything runs)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recworld.config import WorldConfig
from recworld.errors import ConfigError
from recworld.plugins import unknown_plugin


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogSpec(_Strict):
    """Where items (and the interaction log the user model is fitted on) come from.

    ``movielens``: the bundled ML-100K; ``movielens_dir``: a GroupLens or
    RecBole-atomic folder at ``path``; ``items_file``: a CSV/JSONL item file at
    ``path``, with an optional ``interactions`` CSV (user_id, item_id, rating, timestamp).
    """

    source: Literal["movielens", "movielens_dir", "items_file"] = "movielens"
    path: str | None = None
    interactions: str | None = None
    embedding_dim: int | None = Field(64, ge=2, le=384)
    replicate_to: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="grow the catalog to this many items with seeded near-copies of its items (a synthetic catalog for scale runs; see Catalog.replicate)",
    )

    @model_validator(mode="after")
    def _path_needed(self) -> CatalogSpec:
        if self.source != "movielens" and not self.path:
            raise ValueError(f"catalog.source={self.source} needs catalog.path")
        if self.interactions and self.source != "items_file":
            raise ValueError(f"catalog.interactions is for items_file catalogs; {self.source} catalogs carry their own ratings")
        return self


class PopulationSpec(_Strict):
    """Who the users are: real MovieLens users or users sampled from trait means."""

    source: Literal["movielens", "sampled"] = "movielens"
    n_users: int | None = Field(None, ge=1, le=1_000_000)
    activity_mean: float = Field(1.0, gt=0, le=24)
    patience: float = Field(0.55, gt=0, lt=1)
    conformity: float = Field(0.5, gt=0, lt=1)
    diversity_seeking: float = Field(0.5, gt=0, lt=1)
    taste_noise: float = Field(0.6, ge=0, le=10)
    model: str = Field(
        "fitted",
        description="the user model: 'fitted' (fitted to the catalog's interaction log, cached), 'content' (content embeddings only), or a .npz made by `recworld fit --out`",
    )


class BrainSpec(_Strict):
    """Which brain decides for users: utility, scripted, hybrid, llm or distilled (params: {path: fitted.json})."""

    kind: Literal["utility", "scripted", "hybrid", "llm", "distilled"] = "utility"
    params: dict[str, Any] = Field(default_factory=dict)


def _known_plugin(kind: str, builtin: Mapping[str, str], name: str) -> str:
    error = unknown_plugin(kind, builtin, name)
    if error is not None:
        raise ValueError(error)
    return name


class RecommenderSpec(_Strict):
    """Which recommender serves pages: a built-in name or 'package.module:Class'."""

    name: str = "popularity"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        from recworld.agents.recommenders import BUILTIN

        return _known_plugin("recommender", BUILTIN, v)


class CRSSpec(_Strict):
    """Which conversational agent talks with users: a built-in name or 'package.module:Class'."""

    name: str = "policy"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        from recworld.agents.conversation.agents import BUILTIN_CRS

        return _known_plugin("conversational agent", BUILTIN_CRS, v)


class StorageSpec(_Strict):
    """Where the run is logged."""

    url: str = "sqlite:///runs/recworld.db"
    flush_every: int = Field(1, ge=1, le=10_000)
    checkpoint_every: int = Field(1, ge=0, le=10_000)
    #: A checkpoint holds only the rows of the world's large arrays changed since the last complete one while they are at
    #: most this share of those arrays (sized to the active users; a copy of the arrays is kept in memory); 0: every one complete.
    checkpoint_delta_share: float = Field(0.25, ge=0.0, le=1.0)
    snapshot_every: int = Field(24, ge=0)
    #: Who writes the log while the world runs: the world's own thread between ticks (``inline``), a thread of the world's
    #: process, a writer process of its own (finishes and commits the rows on another core), or ``auto``: a process for
    #: worlds of 2,000+ users when the run may use 2+ cores, inline with one core (a sweep's Ray task), else a thread.
    writer: Literal["auto", "inline", "thread", "process"] = "auto"


class Scenario(_Strict):
    """A complete, validated scenario."""

    name: str = Field(..., min_length=1)
    description: str = ""
    seed: int = Field(0, ge=0, lt=2**32)
    ticks: int = Field(168, ge=1, le=1_000_000)
    catalog: CatalogSpec = CatalogSpec()
    population: PopulationSpec = PopulationSpec()
    brain: BrainSpec = BrainSpec()
    recommender: RecommenderSpec = RecommenderSpec()
    world: WorldConfig = WorldConfig()
    storage: StorageSpec = StorageSpec()
    llm: dict[str, Any] = Field(default_factory=dict)
    social: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, Any] = Field(default_factory=dict, description="users' searches (recworld.agents.search.SearchConfig); on when enabled")
    conversation: dict[str, Any] = Field(
        default_factory=dict, description="conversations with the platform's agent (recworld.agents.conversation.layer.ConversationConfig)"
    )
    crs: CRSSpec = CRSSpec()

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.population.source == "movielens" and self.catalog.source == "items_file" and not self.catalog.interactions:
            raise ValueError(
                "population.source=movielens (the real users of a log) needs a MovieLens catalog or catalog.interactions; or use population.source: sampled"
            )
        return self

    def with_overrides(self, **changes: Any) -> Scenario:
        """A copy with dotted-path overrides, validated again (e.g. ``{"population.n_users": 100}``)."""
        data = self.model_dump()
        new_rec = changes.get("recommender.name")
        if new_rec is not None and new_rec != self.recommender.name and "recommender.params" not in changes:
            # Parameters belong to the recommender they were written for.
            data["recommender"]["params"] = {}
        new_brain = changes.get("brain.kind")
        if new_brain is not None and new_brain != self.brain.kind and "brain.params" not in changes:
            data["brain"]["params"] = {}  # likewise for a brain (`recworld run demo --brain utility`)
        for path, value in changes.items():
            if value is None:
                continue
            node = data
            keys = path.split(".")
            for k in keys[:-1]:
                node = node[k]
            node[keys[-1]] = value
        return validate(data, source="command line")


_FIXES = {
    "extra_forbidden": "remove it or check its spelling",
    "missing": "add it",
    "literal_error": "use one of the listed values",
}


def _describe(err: dict[str, Any], data: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    typ = err["type"]
    if typ == "extra_forbidden":
        parent = data
        for p in err["loc"][:-1]:
            parent = parent.get(p, {}) if isinstance(parent, dict) else {}
        return f"unknown key '{loc}'; remove it or check its spelling"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    got = err.get("input")
    got_s = "" if typ in ("missing",) or isinstance(got, (dict, list)) else f" (got {got!r})"
    fix = _FIXES.get(typ, "")
    return f"field '{loc}': {msg}{got_s}" + (f"; {fix}" if fix else "")


def validate(data: Any, source: str = "scenario") -> Scenario:
    """Validate a parsed scenario mapping.

    Raises:
        ConfigError: one line naming the source, the field and the fix.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys (name, seed, ticks, ...), got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        errs = exc.errors()
        first = _describe(errs[0], data)
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        raise ConfigError(f"{source}: {first}{more}") from None


def load_scenario(path_or_name: str | Path) -> Scenario:
    """Load a scenario from a YAML file or a shipped scenario name (see ``recworld list``).

    Raises:
        ConfigError: missing file, invalid YAML or an invalid field.
    """
    path = resolve(path_or_name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the scenario file ({exc.__class__.__name__})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    scenario = validate(data, source=str(path))
    for key in ("path", "interactions"):
        value = getattr(scenario.catalog, key)
        if not value:
            continue
        p = Path(value)
        if not p.is_absolute():
            p = (path.parent / p) if (path.parent / p).exists() else p
        if not p.exists():
            raise ConfigError(f"{path}: field 'catalog.{key}': {value} does not exist; fix the path (relative paths are resolved from the scenario file)")
        scenario = scenario.model_copy(update={"catalog": scenario.catalog.model_copy(update={key: str(p)})})
    return scenario


def shipped_dir() -> Path:
    """Folder of the scenarios shipped with RecWorld."""
    return Path(__file__).parent / "data"


def shipped() -> dict[str, Path]:
    """Shipped scenario names -> files."""
    return {p.stem: p for p in sorted(shipped_dir().glob("*.yaml"))}


def resolve(path_or_name: str | Path) -> Path:
    """A scenario file path from a path or a shipped name."""
    p = Path(path_or_name)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise ConfigError(f"scenario file {p} does not exist; check the path or run `recworld list` for shipped scenarios")
        return p
    ships = shipped()
    if str(path_or_name) in ships:
        return ships[str(path_or_name)]
    if p.exists() and p.is_file():
        return p
    raise ConfigError(f"unknown scenario {str(path_or_name)!r}; pass a .yaml file or one of: {', '.join(ships)}")
