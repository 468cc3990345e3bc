"""SQLModel tables of the run database.

Every table carries ``run_id`` so many runs share one database. The event log
is append-only; aggregates the dashboard needs are precomputed per tick
(:class:`TickMetrics`) or per run end (:class:`RetentionPoint`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index, LargeBinary, SmallInteger, Text
from sqlmodel import Field, SQLModel

# 2: LLMCall.endpoint (which server of an LLM pool answered).
# 3: TickMetrics search and conversation counts.
# 4: LLMCall.rejected (grounding-check reason) and the Interview table.
# 5: the page log: served pages are one Page row each (slate and decisions
#    packed) instead of one Event row per item shown; Event.seq orders a
#    tick's events and pages; ItemTick holds per-item, per-tick counts.
# 6: TickSummary: per-tick share-cascade and leave-reason counts, written
#    with the tick (the run overview sums them instead of parsing every POST
#    and LEAVE payload); older runs are backfilled from their events. The
#    per-user indexes of Event and Page cover what a user page counts, the
#    per-item index of ItemTick what an item page counts.
# 7: ItemTick.marks carries each rated user's rating (1 + rating; was 2 for
#    any rating), so an item's watchers and their ratings are read without
#    decoding pages; older runs' marks are rewritten from their Page rows.
# 8: UserTick: a user's pages and session events (SESSION_START, RETURN,
#    LEAVE, CHURN) of a tick are one row, instead of a Page row per page and
#    an Event row per session event (the database's cost is per row); older
#    runs' Page rows and session Event rows are packed into UserTick rows and
#    the page table is dropped.
# 9: Checkpoint.base_tick: a checkpoint may hold only what changed since a
#    complete one (the rows of large arrays), which it names; older
#    checkpoints are complete (NULL).
SCHEMA_VERSION = 9


def utcnow() -> datetime:
    return datetime.now(UTC)


class SchemaInfo(SQLModel, table=True):
    """One row: the schema version this database was written with."""

    id: int = Field(default=1, primary_key=True)
    version: int = SCHEMA_VERSION


class Run(SQLModel, table=True):
    """One simulation run: its scenario, config, seed, versions and status."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    scenario: str = ""
    recommender: str = ""
    brain: str = ""
    seed: int = 0
    config_json: str = Field(default="{}", sa_column=Column(Text))
    versions_json: str = Field(default="{}", sa_column=Column(Text))
    status: str = Field(default="created", index=True)  # created|running|completed|failed|interrupted
    n_users: int = 0
    n_items: int = 0
    ticks_total: int = 0
    tick_done: int = -1
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    summary_json: str = Field(default="{}", sa_column=Column(Text))
    error: str | None = None


class Event(SQLModel, table=True):
    """An append-only event: tick, user, type (see ``recworld.events.EventType``), item, value, text.

    Served pages' per-item events and session events are not Event rows: they are packed in :class:`UserTick` rows.
    """

    __table_args__ = (
        Index("ix_event_run_tick", "run_id", "tick"),
        # type (schema 6): a user's counts per type or per tick are read from the index alone.
        Index("ix_event_run_user", "run_id", "user_id", "tick", "type"),
        Index("ix_event_run_item", "run_id", "item_id"),
        Index("ix_event_run_type_tick", "run_id", "type", "tick"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    tick: int
    user_id: int
    type: int = Field(sa_column=Column(SmallInteger, nullable=False))
    item_id: int | None = None
    value: float | None = None
    text: str | None = Field(default=None, sa_column=Column(Text))
    payload: str | None = Field(default=None, sa_column=Column(Text))
    # Position in the tick's event stream (pages' per-item events included); NULL in logs written before schema 3.
    seq: int | None = None


class UserTick(SQLModel, table=True):
    """A user's served pages and session events of one tick, packed (see :mod:`recworld.storage.pagelog`).

    Stands for the pages' IMPRESSION, WATCH/SKIP and RATE events and the
    user's SESSION_START, RETURN, LEAVE and CHURN events of the tick, which
    are expanded back on read in their exact log order (each packed event
    keeps its ``seq``). The count columns let readers count events without
    the blob.
    """

    __table_args__ = (
        # The session counts (and user): retention and a run's session counts are read from the index alone.
        Index("ix_usertick_run_tick", "run_id", "tick", "user_id", "starts", "returns", "leaves", "churns"),
        # A user's rows, by span of ticks first (see pagelog.SPAN_TICKS): a tick's inserts land in the current span's
        # part of the index only, so its upkeep stays flat as the log grows; a user is read with one seek per span.
        # The counts too: a user's event counts (per kind, per tick) are read from the index alone, without the blobs.
        Index(
            "ix_usertick_run_user",
            *("run_id", "span", "user_id", "tick", "pages", "shown", "watched", "rated", "flags", "starts", "returns", "leaves", "churns"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    tick: int
    user_id: int
    pages: int = Field(sa_column=Column(SmallInteger, nullable=False))
    shown: int  # items shown on those pages
    watched: int
    rated: int
    flags: int = Field(sa_column=Column(SmallInteger, nullable=False))  # pagelog.IMPRESSIONS / SKIPS of the pages
    starts: int = Field(sa_column=Column(SmallInteger, nullable=False))  # SESSION_START events
    returns: int = Field(sa_column=Column(SmallInteger, nullable=False))  # RETURN events
    leaves: int = Field(sa_column=Column(SmallInteger, nullable=False))  # LEAVE events
    churns: int = Field(sa_column=Column(SmallInteger, nullable=False))  # CHURN events
    span: int  # tick // pagelog.SPAN_TICKS
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ItemTick(SQLModel, table=True):
    """Per item and tick: how often it was shown, watched and rated on pages, and to whom (packed)."""

    # The counts (schema 6): an item's timeseries and the per-item sums are read from the index alone, without the blobs.
    __table_args__ = (Index("ix_itemtick_run_item", "run_id", "item_id", "tick", "impressions", "watches", "ratings"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    tick: int
    item_id: int
    impressions: int
    watches: int
    ratings: int
    rating_sum: float
    users: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # int32 users shown, in log order
    # int8 per user shown: 0 skipped, 1 watched, 1 + r watched and rated r (layout: recworld.storage.pagelog.item_tick_rows).
    marks: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TickSummary(SQLModel, table=True):
    """Per tick: how many events of a kind carried a key (see :mod:`recworld.storage.summary`).

    ``kind`` ``"cascade"``: POST events of the share cascade whose root post
    is ``key``, ``depth`` their deepest reshare; ``"post"``: all POST events
    (``key`` empty; unreadable payloads included); ``"leave"``: LEAVE events
    whose reason is ``key`` (``"unknown"``: payload missing or unreadable).
    """

    # Covering: the readers' GROUP BY key sums n and depth from the index alone.
    __table_args__ = (Index("ix_ticksummary_run_kind", "run_id", "kind", "key", "n", "depth"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    tick: int
    kind: str
    key: str
    n: int
    depth: int = 0


class TickMetrics(SQLModel, table=True):
    """Engagement, retention and exposure metrics of one tick."""

    __table_args__ = (Index("ix_tickmetrics_run_tick", "run_id", "tick", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    tick: int
    active_users: int = 0  # users with a session this tick
    sessions: int = 0
    returns: int = 0
    pages: int = 0
    pages_per_session: float = 0.0
    impressions: int = 0
    watches: int = 0
    watch_rate: float = 0.0  # watches / impressions (CTR)
    ratings: int = 0
    mean_rating: float | None = None
    churned: int = 0  # new churns this tick
    churned_total: int = 0
    alive_users: int = 0  # not churned
    coverage: float = 0.0  # share of catalog ever exposed so far
    diversity: float | None = None  # mean intra-list diversity of pages served this tick
    consumption_diversity: float | None = None  # mean pairwise distance of items watched this tick
    gini: float | None = None  # Gini of cumulative exposure over items
    novelty: float | None = None  # mean -log2 popularity of watched items
    population_diversity: float | None = None  # 1 - mean cosine between users' recent consumption (homogenisation)
    mean_satisfaction: float = 0.0
    posts: int = 0
    chats: int = 0
    social_watches: int = 0
    instructions: int = 0
    searches: int = 0
    search_clicks: int = 0
    conversations: int = 0
    conversation_turns: int = 0
    conversation_successes: int = 0
    llm_calls: int = 0
    llm_tokens: int = 0
    llm_cached: int = 0
    llm_fallbacks: int = 0
    extra_json: str = Field(default="{}", sa_column=Column(Text))


class RetentionPoint(SQLModel, table=True):
    """Share of a cohort (users whose first session fell in ``cohort``) active ``k`` periods later."""

    __table_args__ = (Index("ix_retention_run", "run_id", "cohort", "k"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    cohort: int  # period index of first session
    k: int  # periods after first session
    cohort_size: int
    active: int
    share: float


class UserProfile(SQLModel, table=True):
    """A user's persona and traits, written once per run."""

    __table_args__ = (Index("ix_userprofile_run_user", "run_id", "user_id", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    user_id: int
    external_id: str = ""
    age: int | None = None
    gender: str | None = None
    occupation: str | None = None
    activity: float = 0.0
    patience: float = 0.0
    conformity: float = 0.0
    diversity_seeking: float = 0.0
    role: str = ""
    profile_text: str = Field(default="", sa_column=Column(Text))


class UserSnapshot(SQLModel, table=True):
    """A user's numeric state at a tick (written at intervals for the dashboard)."""

    __table_args__ = (Index("ix_usersnapshot_run_user", "run_id", "user_id", "tick"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    tick: int
    user_id: int
    satisfaction: float
    fatigue: float
    churned: bool = False
    sessions: int = 0
    watches: int = 0


class Item(SQLModel, table=True):
    """A catalog item of a run (posts by users become items too)."""

    __table_args__ = (Index("ix_item_run_item", "run_id", "item_id", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    item_id: int
    external_id: str = ""
    title: str = ""
    tags: str = ""
    year: int | None = None
    creator: int | None = None
    created_tick: int = 0


class Edge(SQLModel, table=True):
    """A follow edge of the social graph: ``src`` follows ``dst``."""

    __table_args__ = (Index("ix_edge_run_src", "run_id", "src"), Index("ix_edge_run_dst", "run_id", "dst"))

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    src: int
    dst: int
    created_tick: int = 0
    removed_tick: int | None = None


class LLMCall(SQLModel, table=True):
    """One LLM request made (or served from cache) for a run."""

    __table_args__ = (Index("ix_llmcall_run_tick", "run_id", "tick"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    tick: int = 0
    user_id: int | None = None
    purpose: str = ""  # decide|post|chat|instruction|reflection|...
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    cached: bool = False
    retries: int = 0
    fell_back: bool = False
    error: str | None = None
    endpoint: str | None = None  # server URL that answered (llm.base_urls); None: cached or no request made
    rejected: str | None = None  # the answer's text failed the grounding check: why (recworld.llm.grounding.REASONS)


class Interview(SQLModel, table=True):
    """A question put to a simulated user after a run (``recworld interview``) and the answer."""

    __table_args__ = (Index("ix_interview_run_user", "run_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    user_id: int
    question: str = Field(sa_column=Column(Text, nullable=False))
    answer: str = Field(sa_column=Column(Text, nullable=False))
    by: str = "llm"  # llm | template (the model's answer was rejected or failed)
    rejected: str | None = None  # why the model's answer was not used
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    cached: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class MemoryRecord(SQLModel, table=True):
    """A user's long-term memory entry (observation or reflection)."""

    __table_args__ = (Index("ix_memory_run_user", "run_id", "user_id", "tick"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    user_id: int
    tick: int
    kind: str = "observation"
    importance: float = 0.0
    text: str = Field(default="", sa_column=Column(Text))


class Checkpoint(SQLModel, table=True):
    """The state of a run after ``tick`` (``recworld.checkpoint``), written with that tick's events.

    ``base_tick`` None: the complete state; else the state holds only what changed since the
    run's complete checkpoint of that tick, which is kept as long as this one is.
    """

    __table_args__ = (Index("ix_checkpoint_run_tick", "run_id", "tick"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    tick: int
    base_tick: int | None = None
    state: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class EvalResult(SQLModel, table=True):
    """A policy evaluation (``recworld eval``): metric mean and confidence interval over seeds."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    policy: str
    metric: str
    mean: float
    ci_low: float
    ci_high: float
    n_seeds: int
    created_at: datetime = Field(default_factory=utcnow)
    detail_json: str = Field(default="{}", sa_column=Column(Text))


class Validation(SQLModel, table=True):
    """A fidelity report (``recworld validate``): held-out real behaviour against the simulated users."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    scenario: str
    brain: str
    seed: int
    holdout: float
    created_at: datetime = Field(default_factory=utcnow)
    report_json: str = Field(default="{}", sa_column=Column(Text))
