"""Typed response models of the dashboard's JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model

from recworld.kpis import KPIS, RUN_KPIS, TICK_KPIS
from recworld.payloads import ConversationMode, ConversationOutcome, LeaveReason, Role, TurnAct
from recworld.usermodel.report import ValidationReport

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of results: ``items[offset : offset + limit]`` out of ``total``."""

    total: int
    limit: int
    offset: int
    items: list[T]


def _kpi_type(name: str, optional: bool) -> Any:
    k = KPIS[name]
    t: Any = int if k.integer else float
    return t | None if optional or k.optional else t


# Headline KPIs of a run, one field per name of recworld.kpis.RUN_KPIS (None where the run has no data for it yet).
KPIs = create_model(
    "KPIs",
    __doc__="Headline KPIs of a run (see recworld.kpis for each definition; None where the run has no data for it yet).",
    **{n: (_kpi_type(n, True), Field(None, description=f"{KPIS[n].definition} ({KPIS[n].unit})")) for n in RUN_KPIS},
)


class RunOut(BaseModel):
    """A run with its KPIs."""

    id: int
    name: str
    scenario: str
    recommender: str
    brain: str
    seed: int
    status: str
    n_users: int
    n_items: int
    ticks_total: int
    tick_done: int
    created_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    kpis: KPIs


# One row of per-tick metrics: tick + recworld.kpis.TICK_KPIS (columns newer than this schema pass through as extra fields).
TickRow = create_model(
    "TickRow",
    __config__=ConfigDict(extra="allow"),
    __doc__="One row of per-tick metrics (see recworld.kpis for each definition).",
    tick=(int, ...),
    **{n: (_kpi_type(n, False), Field(None if KPIS[n].optional else ..., description=f"{KPIS[n].definition} ({KPIS[n].unit})")) for n in TICK_KPIS},
)


_BUCKET = {
    "first_tick": (int | None, Field(None, description="a bucket of ticks (see tick_step): its first tick with a row; absent for a single tick")),
    "n_ticks": (
        int | None,
        Field(None, description="a bucket of ticks: how many rows it merged (counts summed, levels at its last tick, rates over its counts)"),
    ),
}
# A per-tick row, or a bucket of consecutive ticks (recworld.dashboard.series): ``tick`` is then its last tick.
TickBucket = create_model(
    "TickBucket",
    __base__=TickRow,
    __doc__="Per-tick metrics of one tick, or of a bucket of ticks (tick = its last; see recworld.dashboard.series for the rules).",
    **_BUCKET,
)


class RetentionCell(BaseModel):
    """Cohort ``cohort`` (period of first session), ``k`` periods later."""

    cohort: int
    k: int
    cohort_size: int
    active: int
    share: float


class RetentionOut(BaseModel):
    """Retention curve (pooled over cohorts) and the cohort table."""

    source: str = Field(description="'stored' (written at run end) or 'live' (derived from session events so far)")
    period_ticks: int
    curve: dict[int, float]
    cohorts: list[RetentionCell]
    cohorts_truncated: bool = Field(False, description="the cohort table holds only the first 60 cohorts and periods (the curve has every period)")


class LLMPurpose(BaseModel):
    """LLM usage of one purpose."""

    purpose: str
    calls: int
    cached: int
    fallbacks: int
    tokens: int
    mean_latency_ms: float | None = None
    kept: int = 0
    rejected: int = 0
    failed: int = 0
    reasons: dict[str, int] = {}


class LLMEndpoint(BaseModel):
    """LLM calls answered by one server of the run's pool (``llm.base_urls``)."""

    endpoint: str = Field(description="server URL (without credentials); fallbacks count under the last server tried")
    calls: int
    fallbacks: int
    retries: int = Field(description="extra requests: moves to another server, retries after backoff, repair re-asks")
    tokens: int
    mean_latency_ms: float | None = None


class RunOverview(BaseModel):
    """Everything the run overview page shows."""

    run: RunOut
    ticks: list[TickBucket] = Field(description="per-tick metrics, cut into at most `points` buckets of tick_step ticks; every tick: /ticks or /ticks.csv")
    tick_step: int = Field(description="ticks per bucket of `ticks` (1: one row per tick)")
    last_ticks: list[TickRow] = Field(description="the last ticks, one row each (newest last)")
    retention: RetentionOut
    llm_by_purpose: list[LLMPurpose]
    llm_by_endpoint: list[LLMEndpoint] = Field(default_factory=list)
    cascades: CascadeSummary
    leave_reasons: dict[str, int] = Field(description="sessions ended per reason (see recworld.payloads.LEAVE_REASONS)")


class EventOut(BaseModel):
    """One logged event."""

    id: int
    tick: int
    user_id: int
    type: int
    type_name: str
    item_id: int | None = None
    item_title: str | None = None
    value: float | None = None
    text: str | None = None
    payload: Any | None = None


class Snapshot(BaseModel):
    """A user's numeric state at a tick."""

    tick: int
    satisfaction: float
    fatigue: float
    churned: bool
    sessions: int
    watches: int


class UserOut(BaseModel):
    """A user's persona and traits (with the newest state snapshot)."""

    user_id: int
    external_id: str
    age: int | None = None
    gender: str | None = None
    occupation: str | None = None
    activity: float
    patience: float
    conformity: float
    diversity_seeking: float
    role: str
    profile_text: str
    latest: Snapshot | None = None


class MemoryOut(BaseModel):
    """A long-term memory entry."""

    tick: int
    kind: str
    importance: float
    text: str


class SessionOut(BaseModel):
    """A user's activity in one tick."""

    tick: int
    session: bool
    events: int
    impressions: int | None = Field(None, description="items shown on pages (watches + skips); None when the run logged neither skips nor impressions")
    watches: int
    skips: int | None = None
    social_watches: int
    ratings: int
    mean_rating: float | None = None
    pages: float | None = None
    leave_reason: LeaveReason | None = Field(None, description="why the session ended (see recworld.payloads.LEAVE_REASONS)")
    posts: int
    chats: int
    churn: int


class InterviewOut(BaseModel):
    """A question put to the user after the run (``recworld interview``) and the answer."""

    id: int
    question: str
    answer: str
    by: str
    rejected: str | None = None
    model: str
    created_at: datetime


class Mention(BaseModel):
    """An item a conversation mentions: its id and title in the run's catalog."""

    item_id: int
    title: str | None = None


class TurnOut(BaseModel):
    """One turn of a conversation with the platform's agent."""

    role: Role
    text: str | None = None
    act: TurnAct
    items: list[Mention] = []
    attribute: str | None = None
    value: str | None = None
    by: str


class Intent(BaseModel):
    """What the user was after: a hidden target item, or a taste (target-free) measured against reference items."""

    mode: ConversationMode
    target: Mention | None = None
    reference: list[int] = []


class ConversationOut(BaseModel):
    """A conversation with the platform's conversational agent (the ``crs`` record of ``recworld export conversations``)."""

    conversation: int
    user_id: int
    tick: int
    agent: str | None = None
    intent: Intent | None = None
    outcome: ConversationOutcome | None = Field(None, description="null while the conversation is still open (a live run)")
    accepted: list[Mention] = []
    success_turn: int | None = None
    errors: int = 0
    messages: list[TurnOut]


class ConversationPage(Page[ConversationOut]):
    """A page of conversations, with how many ended each way (over the whole filter, before paging)."""

    outcomes: dict[str, int]


class UserDetail(BaseModel):
    """Everything the user page shows on first load (long lists are paginated endpoints)."""

    run_id: int
    user: UserOut
    event_counts: dict[str, int]
    snapshots: list[Snapshot]
    sessions: Page[SessionOut]
    memory: Page[MemoryOut]
    chats: Page[EventOut]
    posts: Page[EventOut]
    instructions: Page[EventOut]
    interviews: list[InterviewOut] = []
    conversations: ConversationPage | None = None


class ItemOut(BaseModel):
    """A catalog item with its counts."""

    item_id: int
    external_id: str
    title: str
    tags: str
    year: int | None = None
    creator: int | None = None
    created_tick: int
    impressions: int | None = Field(0, description="times shown on a page = watches + skips (None when the run logged neither skips nor impressions)")
    watches: int = Field(0, description="watches from a page the recommender served")
    skips: int | None = 0
    social_watches: int = Field(0, description="watches from the social feed")
    posts: int = 0


class ItemTick(BaseModel):
    """An item's activity in one tick."""

    tick: int
    impressions: int | None = None
    watches: int
    skips: int | None = None
    social_watches: int
    ratings: int
    posts: int


class ItemTickBucket(ItemTick):
    """An item's activity in one tick, or in a bucket of ticks (``tick`` its last tick with activity; counts summed)."""

    first_tick: int | None = Field(None, description="a bucket of ticks (see timeseries_step): its first tick with activity; absent for a single tick")
    n_ticks: int | None = Field(None, description="a bucket of ticks: how many ticks with activity it merged")


class Watcher(BaseModel):
    """A user who watched an item."""

    user_id: int
    watches: int
    social_watches: int
    first_tick: int | None = None
    rating: float | None = None


class CascadePost(BaseModel):
    """A POST event in a share cascade; ``parent``/``children`` index ``posts``."""

    index: int
    event_id: int
    tick: int
    user_id: int
    text: str | None = None
    post: int | None = Field(None, description="the post's id in the run (None when its payload does not parse)")
    parent_post: int | None = Field(None, description="id of the post it reshares")
    cascade: int | None = Field(None, description="id of its cascade's root post")
    parent_user: int | None = None
    parent: int | None = None
    children: list[int]


class Cascade(BaseModel):
    """A share tree rooted at ``posts[root]``."""

    root: int
    cascade: int | None = None
    depth: int
    size: int


class CascadeSummary(BaseModel):
    """Share cascades of a whole run (the social layer's ``cascade_stats()``, read back from the log)."""

    posts: int
    cascades: int
    max_cascade_size: int
    mean_cascade_size: float
    share_spreading: float = Field(description="share of cascades with at least one reshare")
    max_depth: int
    size_distribution: dict[int, int]


class Cascades(BaseModel):
    """Share cascades of an item."""

    posts: list[CascadePost]
    cascades: list[Cascade]
    truncated: bool


class ItemDetail(BaseModel):
    """Everything the item page shows on first load."""

    run_id: int
    item: ItemOut
    timeseries: list[ItemTickBucket] = Field(
        description="per-tick counts, cut into at most `points` buckets of timeseries_step ticks (summed); every tick: /timeseries"
    )
    timeseries_step: int = Field(description="ticks per bucket of `timeseries` (1: one row per tick)")
    watchers: Page[Watcher]
    cascades: Cascades


class GraphNode(BaseModel):
    """A user in the graph sample with its layout position."""

    user_id: int
    x: float
    y: float
    degree: int
    role: str | None = None
    activity: float | None = None


class GraphOut(BaseModel):
    """A sample of the follow graph with a deterministic 2-D layout."""

    run_id: int
    total_nodes: int
    total_edges: int
    nodes: list[GraphNode]
    edges: list[tuple[int, int]] = Field(description="(src, dst) user ids, both in nodes")


class Delta(BaseModel):
    """A KPI of each compared run, and its change against the first run."""

    metric: str
    values: list[float | None]
    deltas: list[float | None]
    relative: list[float | None]


class CompareOut(BaseModel):
    """Runs side by side: per-tick series, retention curves and KPI deltas vs the first run."""

    runs: list[RunOut]
    ticks: dict[int, list[TickBucket]] = Field(description="each run's per-tick metrics, cut into at most `points` buckets")
    retention: dict[int, dict[int, float]]
    deltas: list[Delta]


class Filters(BaseModel):
    """Distinct values usable as filters."""

    values: dict[str, list[str]]


class EvalSummary(BaseModel):
    """An evaluation stored by ``recworld eval``."""

    name: str
    created_at: datetime | None = None
    n_policies: int
    n_metrics: int
    n_seeds: int


class EvalRow(BaseModel):
    """One policy's result on one metric: mean over seeds and its 95% confidence interval."""

    policy: str
    metric: str
    mean: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_seeds: int
    values: list[float] = Field(description="the per-seed values the interval is computed from")


class EvalOut(BaseModel):
    """An evaluation: policies x metrics."""

    name: str
    created_at: datetime | None = None
    policies: list[str]
    metrics: list[str]
    rows: list[EvalRow]


class SweepSummary(BaseModel):
    """A sweep stored by ``recworld sweep``: its runs are named ``sweep:<name>``."""

    name: str
    scenario: str
    created_at: datetime | None = None
    n_runs: int
    n_completed: int
    n_recommenders: int
    n_seeds: int


class SweepRow(BaseModel):
    """One recommender's result on one KPI: mean over seeds and its 95% confidence interval."""

    recommender: str
    metric: str
    mean: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_seeds: int
    values: list[float] = Field(description="the per-seed values the interval is computed from (completed runs, in seed order)")
    seeds: list[int] = Field(description="the seed of each value")


class SweepRun(BaseModel):
    """A run of a sweep: which cell of the grid it is."""

    id: int
    recommender: str
    seed: int
    status: str


class SweepOut(BaseModel):
    """A sweep: recommenders x KPIs with intervals over seeds, and its runs."""

    name: str
    scenario: str
    recommenders: list[str]
    seeds: list[int]
    metrics: list[str]
    status: dict[str, int] = Field(description="number of runs per status")
    runs: list[SweepRun]
    rows: list[SweepRow]


class ValidationSummary(BaseModel):
    """A fidelity report stored by ``recworld validate``, with its headline figures."""

    name: str
    scenario: str
    brain: str
    seed: int
    holdout: float
    created_at: datetime | None = None
    accuracy_1_1: float | None = Field(None, description="taste alignment 1:1, most likely decision (sampled for the llm brain)")
    f1_1_1: float | None = Field(None, description="taste alignment 1:1, most likely decision (sampled for the llm brain)")
    auc: float | None = Field(None, description="mean per-user AUC of the watch propensity")
    rating_rmse: float | None = None
    spearman: float | None = Field(None, description="sim-to-real agreement of the recommenders' rankings")
    targets_met: int = Field(description="targets met")
    targets_measured: int = Field(description="targets measured in this report")


class ValidationOut(BaseModel):
    """One stored fidelity report, in full."""

    name: str
    created_at: datetime | None = None
    report: ValidationReport
