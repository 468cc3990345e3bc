"""The metrics of RecWorld in one place: the per-tick record and the KPI registry.

- :class:`TickRecord` is what :meth:`recworld.world.World.end_tick` computes
  for a tick (typed; readers use attributes, storage takes :meth:`TickRecord.as_dict`).
- :data:`KPIS` names, labels, units and defines every metric that is stored
  per tick (the ``TickMetrics`` table) or summarised per run (the run summary),
  and says how to format and chart it. The CLI summary, the recorder, the
  dashboard (tiles, charts, compare, API models) and the exports read it, so
  a metric is defined, labelled and formatted here and nowhere else.

``tests/recworld/test_kpis.py`` checks that the registry, the record, the
``TickMetrics`` columns and the run summary name the same metrics.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Format = Literal["int", "pct", "f2", "f3"]


@dataclass(frozen=True, slots=True)
class TickRecord:
    """Metrics of one tick (see :data:`KPIS` for each field's definition)."""

    tick: int
    active_users: int
    sessions: int
    returns: int
    pages: int
    pages_per_session: float
    impressions: int
    watches: int
    watch_rate: float
    ratings: int
    mean_rating: float | None
    churned: int
    churned_total: int
    alive_users: int
    coverage: float
    diversity: float | None
    consumption_diversity: float | None
    gini: float | None
    novelty: float | None
    population_diversity: float | None
    mean_satisfaction: float
    posts: int
    chats: int
    social_watches: int
    instructions: int
    searches: int
    search_clicks: int
    conversations: int
    conversation_turns: int
    conversation_successes: int

    def as_dict(self) -> dict[str, Any]:
        """The record as a plain dict (storage, JSON)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class KPI:
    """One metric.

    Attributes:
        name: the key in tick rows, run summaries, API models and CSV headers.
        label: how it reads in tables, tiles and chart legends.
        unit: what it counts or measures.
        definition: how it is computed (per tick; per run where that differs).
        fmt: display format: ``int``, ``pct`` (a share), ``f2`` or ``f3``.
        integer: an integer count (else a float).
        optional: may be ``None`` (nothing to measure, e.g. no ratings yet).
        scope: ``tick`` (stored per tick), ``run`` (in the run summary) or ``both``.
        hide_zero: left out of the CLI summary when zero (LLM and social counts).
        chart: id of the run-overview chart that plots it, if any.
        style: ``line`` or ``bar`` in that chart.
        axis: ``y`` or ``y2`` (right-hand axis) in that chart.
        over_ticks: how a run of consecutive ticks is summarised (a chart of
            a long run shows buckets of ticks, see
            :func:`recworld.dashboard.series.downsample`): ``sum`` (a count
            per tick), ``last`` (a level or running total: its value at the
            bucket's last tick) or ``mean``; None: ``sum`` for an integer
            count, else ``mean``.
        weight: for ``mean``, the per-tick count that weights it (the
            denominator of a rate: ``watch_rate`` by ``impressions``), so a
            bucket's rate is that of its summed counts; None: unweighted.
    """

    name: str
    label: str
    unit: str
    definition: str
    fmt: Format = "f3"
    integer: bool = False
    optional: bool = False
    scope: Literal["tick", "run", "both"] = "both"
    hide_zero: bool = False
    chart: str | None = None
    style: Literal["line", "bar"] = "line"
    axis: Literal["y", "y2"] = "y"
    over_ticks: Literal["sum", "last", "mean"] | None = None
    weight: str | None = None

    @property
    def bucket(self) -> Literal["sum", "last", "mean"]:
        """How a bucket of ticks summarises it (:attr:`over_ticks`, or its default)."""
        return self.over_ticks or ("sum" if self.integer else "mean")

    def format(self, value: Any) -> str:
        """``value`` for display (``–`` when missing)."""
        return format_value(value, self.fmt)


def format_value(value: Any, fmt: str = "f3") -> str:
    """Format a metric value (``–`` for missing or non-finite)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if fmt == "pct":
        return f"{100 * value:.1f}%"
    if fmt == "int":
        return f"{int(value):,}"
    if fmt == "f2":
        return f"{value:.2f}"
    if fmt == "signed":
        return f"{value:+.3g}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _count(name: str, label: str, unit: str, definition: str, **kw: Any) -> KPI:
    return KPI(name, label, unit, definition, fmt="int", integer=True, **kw)


_ALL: tuple[KPI, ...] = (
    # ---- run only
    _count("ticks", "ticks", "ticks", "ticks simulated", scope="run"),
    _count("users", "users", "users", "users in the world", scope="run"),
    # ---- per tick (in TickRecord / TickMetrics order), most also summarised per run
    _count("active_users", "active users", "users", "users with a session this tick", scope="tick", chart="activity"),
    _count("sessions", "sessions", "sessions", "sessions started (first sessions and returns); per run: their sum"),
    _count("returns", "returning", "sessions", "sessions of users coming back", scope="tick", chart="activity"),
    _count("pages", "pages", "pages", "pages served", scope="tick"),
    KPI("pages_per_session", "pages / session", "pages", "pages / sessions", fmt="f2", chart="pages", weight="sessions"),
    _count("impressions", "impressions", "items", "items shown on pages (each is watched or skipped)", scope="tick"),
    _count("watches", "watches", "items", "items watched from a page", scope="tick"),
    KPI("watch_rate", "watch rate (CTR)", "share", "watches / impressions", fmt="pct", chart="watch_rate", weight="impressions"),
    _count("ratings", "ratings", "ratings", "explicit ratings given", scope="tick"),
    KPI("mean_rating", "mean rating", "rating (1-5)", "mean of the ratings given", fmt="f2", optional=True, chart="rating", weight="ratings"),
    _count("churned", "new churns", "users", "users who left the platform for good this tick", scope="tick", chart="churn", style="bar"),
    _count("churned_total", "churned (total)", "users", "users who left for good so far", scope="tick", chart="churn", over_ticks="last"),
    _count("alive_users", "not churned", "users", "users who have not churned", scope="tick", chart="activity", over_ticks="last"),
    KPI(
        "coverage",
        "catalog coverage",
        "share",
        "share of the catalog shown at least once so far (per run: at the end)",
        fmt="pct",
        chart="exposure",
        over_ticks="last",
    ),
    KPI(
        "diversity",
        "intra-list diversity",
        "cosine distance",
        "mean pairwise cosine distance within a page, 1 = unrelated items (per run: mean over ticks)",
        optional=True,
        chart="exposure",
        weight="pages",
    ),
    KPI(
        "consumption_diversity",
        "consumption diversity",
        "cosine distance",
        "mean pairwise cosine distance between the items watched on a page",
        optional=True,
        scope="tick",
        chart="exposure",
    ),
    KPI(
        "gini",
        "Gini of exposure",
        "0-1",
        "Gini coefficient of cumulative exposure over items (per run: at the end)",
        optional=True,
        chart="exposure",
        over_ticks="last",
    ),
    KPI(
        "novelty",
        "novelty (bits)",
        "bits",
        "mean -log2 popularity of watched items (per run: mean over ticks)",
        optional=True,
        chart="novelty",
        weight="watches",
    ),
    KPI(
        "population_diversity",
        "population diversity",
        "cosine distance",
        "1 - mean cosine between users' recent consumption (falls as users homogenise)",
        optional=True,
        scope="tick",
        chart="exposure",
    ),
    KPI("mean_satisfaction", "mean satisfaction", "0-1", "mean satisfaction of users not churned (per run: at the end)", fmt="f2", chart="rating", axis="y2"),
    _count("posts", "posts", "posts", "posts and reshares", hide_zero=True, chart="social", style="bar"),
    _count("chats", "chat messages", "messages", "chat messages between users", hide_zero=True, chart="social", style="bar"),
    _count("social_watches", "watches from the social feed", "items", "items watched from a followee's post", scope="tick", chart="social"),
    _count("instructions", "reflective instructions", "instructions", "instructions users gave the recommender", hide_zero=True, chart="social"),
    _count("searches", "searches", "queries", "search queries users typed", hide_zero=True, chart="conversation", style="bar"),
    _count(
        "search_clicks", "searches with a click", "queries", "searches after which the user watched at least one result", hide_zero=True, chart="conversation"
    ),
    _count(
        "conversations",
        "conversations",
        "conversations",
        "conversations with the platform's agent that ended",
        hide_zero=True,
        chart="conversation",
        style="bar",
    ),
    _count(
        "conversation_turns", "conversation turns", "turns", "turns (user and agent) of conversations with the platform's agent", hide_zero=True, scope="tick"
    ),
    _count(
        "conversation_successes",
        "successful conversations",
        "conversations",
        "conversations that ended with the user accepting what they looked for",
        hide_zero=True,
        chart="conversation",
    ),
    _count("llm_calls", "LLM calls", "calls", "LLM calls answered by the server (not from the cache)", hide_zero=True, chart="llm"),
    _count("llm_tokens", "LLM tokens", "tokens", "prompt + completion tokens of all LLM calls", hide_zero=True, chart="llm_tokens", style="bar"),
    _count("llm_cached", "LLM cache hits", "calls", "LLM calls answered from the response cache", hide_zero=True, chart="llm"),
    _count("llm_fallbacks", "LLM fallbacks", "calls", "LLM calls that fell back (fault, timeout, unusable answer)", hide_zero=True, chart="llm"),
    # ---- run only
    KPI("churn", "churned share", "share", "users churned by the end / users", fmt="pct", scope="run"),
    KPI(
        "retention_d1",
        "retention day 1",
        "share",
        "share of users active 1 period after the period of their first session (pooled)",
        fmt="pct",
        optional=True,
        scope="run",
    ),
    KPI("retention_d3", "retention day 3", "share", "the same, 3 periods after", fmt="pct", optional=True, scope="run"),
    KPI("retention_d7", "retention day 7", "share", "the same, 7 periods after", fmt="pct", optional=True, scope="run"),
    KPI("search_ctr", "search click-through", "share", "searches with a click / searches", fmt="pct", optional=True, scope="run"),
    KPI("conversation_success", "conversation success rate", "share", "successful conversations / conversations", fmt="pct", optional=True, scope="run"),
    KPI("turns_per_conversation", "turns / conversation", "turns", "conversation turns / conversations", fmt="f2", optional=True, scope="run"),
)

#: Every metric by name.
KPIS: dict[str, KPI] = {k.name: k for k in _ALL}

#: Metrics stored per tick, in column order: the TickRecord's fields, then what the recorder adds (LLM accounting).
TICK_KPIS: tuple[str, ...] = tuple(k.name for k in _ALL if k.scope != "run")
#: Metrics the world computes per tick (the fields of :class:`TickRecord` after ``tick``).
RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(TickRecord) if f.name != "tick")
#: Metrics added to each tick's row by the recorder (from the LLM call log).
LLM_TICK_KPIS: tuple[str, ...] = ("llm_calls", "llm_tokens", "llm_cached", "llm_fallbacks")

#: The run summary (CLI summary table, dashboard KPIs), in display order.
RUN_KPIS: tuple[str, ...] = (
    "users", "ticks", "sessions", "pages_per_session", "watch_rate", "mean_rating", "retention_d1", "retention_d3", "retention_d7",
    "churn", "coverage", "diversity", "gini", "novelty", "mean_satisfaction", "posts", "chats", "instructions",
    "searches", "search_ctr", "conversations", "conversation_success", "turns_per_conversation",
    "llm_calls", "llm_cached", "llm_fallbacks", "llm_tokens",
)  # fmt: skip
#: Columns of ``recworld compare`` (and of the README's comparison tables).
CLI_COMPARE: tuple[str, ...] = (
    "watch_rate", "mean_rating", "pages_per_session", "retention_d1", "retention_d7", "churn", "coverage", "diversity", "gini", "novelty",
)  # fmt: skip
#: KPIs compared across a sweep's recommenders (``recworld sweep``, the dashboard's sweep page), in order.
SWEEP: tuple[str, ...] = (
    "watch_rate", "retention_d1", "retention_d7", "churn", "mean_rating", "pages_per_session", "coverage", "diversity", "gini", "novelty",
)  # fmt: skip
#: KPIs compared across runs on the dashboard's compare page, in order.
COMPARE: tuple[str, ...] = (
    "watch_rate", "retention_d1", "retention_d3", "churn", "sessions", "pages_per_session", "mean_rating",
    "mean_satisfaction", "coverage", "diversity", "gini", "novelty", "posts", "chats", "llm_calls", "llm_tokens",
)  # fmt: skip
#: KPI tiles of the dashboard's run overview, in order.
TILES: tuple[str, ...] = (
    "watch_rate", "retention_d1", "churn", "sessions", "pages_per_session", "mean_rating", "mean_satisfaction",
    "coverage", "diversity", "gini", "posts", "chats", "llm_calls", "llm_tokens",
)  # fmt: skip
#: KPIs the runs list can be sorted by (besides the run's own columns).
SORTABLE: tuple[str, ...] = ("watch_rate", "retention_d1", "churn", "sessions", "mean_rating", "coverage", "gini")


def chart_series(chart: str) -> list[KPI]:
    """The per-tick metrics plotted in chart ``chart``, in registry order."""
    return [k for k in _ALL if k.chart == chart and k.scope != "run"]


def _check() -> None:
    names = set(KPIS)
    for group in (RUN_KPIS, CLI_COMPARE, SWEEP, COMPARE, TILES, SORTABLE):
        missing = set(group) - names
        if missing:
            raise AssertionError(f"unknown KPI names {sorted(missing)}; add them to recworld.kpis._ALL")
    for k in _ALL:
        if k.weight is not None and (k.bucket != "mean" or k.weight not in TICK_KPIS or not KPIS[k.weight].integer or KPIS[k.weight].bucket != "sum"):
            raise AssertionError(f"KPI {k.name}: its weight must be a per-tick count that buckets sum, and only a mean has one")
    if TICK_KPIS != RECORD_FIELDS + LLM_TICK_KPIS:
        raise AssertionError("per-tick KPIs must be the TickRecord fields followed by the LLM columns, in order")


_check()

__all__ = [
    "CLI_COMPARE",
    "COMPARE",
    "KPI",
    "KPIS",
    "LLM_TICK_KPIS",
    "RECORD_FIELDS",
    "RUN_KPIS",
    "SORTABLE",
    "SWEEP",
    "TICK_KPIS",
    "TILES",
    "TickRecord",
    "chart_series",
    "format_value",
]
