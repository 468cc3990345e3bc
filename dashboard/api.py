"""JSON API under ``/api``: typed, paginated, read-only."""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from recworld.dashboard import queries as Q
from recworld.dashboard import schemas as S
from recworld.dashboard import service
from recworld.dashboard.series import MAX_POINTS
from recworld.events import EventType
from recworld.export import TICK_COLUMNS, csv_text
from recworld.kpis import SORTABLE

MAX_ID = 2**62
MAX_OFFSET = 10**9
router = APIRouter(prefix="/api", tags=["api"])

EventName = enum.Enum("EventName", {t.name.lower(): t.name.lower() for t in EventType}, type=str)  # type: ignore[misc]


def engine_of(request: Request) -> Engine:
    """The app's database engine."""
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(engine_of)]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="run id")]
UserId = Annotated[int, Path(ge=0, le=MAX_ID, description="user id (index within the run)")]
ItemId = Annotated[int, Path(ge=0, le=MAX_ID, description="item id (index within the run)")]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]
Text = Annotated[str | None, Query(max_length=200)]
Order = Annotated[Literal["asc", "desc"], Query()]
Points = Annotated[
    int,
    Query(ge=10, le=10_000, description="at most this many rows in a per-tick series: longer ones are cut into buckets of ticks (recworld.dashboard.series)"),
]
RunSort = Literal[service.RUN_COLUMNS_SORTABLE + SORTABLE]  # type: ignore[valid-type]  # a run column or a KPI of recworld.kpis.SORTABLE


def parse_run_ids(runs: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]`` (1 to 8 distinct ids), else a 422."""

    def bad(msg: str) -> RequestValidationError:
        # Same shape as FastAPI's own 422s, so the response matches the OpenAPI schema.
        return RequestValidationError([{"type": "value_error", "loc": ("query", "runs"), "msg": msg, "input": runs}])

    try:
        ids = [int(x) for x in runs.split(",") if x.strip()]
    except ValueError:
        raise bad(f"runs must be comma-separated run ids such as 1,2,3; got {runs!r}") from None
    ids = list(dict.fromkeys(ids))
    if not 1 <= len(ids) <= 8 or any(not 1 <= i <= MAX_ID for i in ids):
        raise bad(f"expected 1 to 8 positive run ids, got {runs!r}")
    return ids


@router.get("/health")
def health(engine: EngineDep) -> dict[str, object]:
    """Liveness and the number of runs in the database."""
    total, _ = Q.find_runs(engine, limit=1)
    return {"ok": True, "runs": total}


@router.get("/filters", response_model=S.Filters)
def run_filters(engine: EngineDep) -> dict:
    """Distinct scenarios, statuses, recommenders and brains of the runs."""
    return {"values": Q.distinct_run_values(engine)}


@router.get("/runs", response_model=S.Page[S.RunOut])
def list_runs(
    engine: EngineDep,
    scenario: Text = None,
    status: Text = None,
    recommender: Text = None,
    q: Text = None,
    sort: RunSort = "id",
    order: Order = "desc",
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict:
    """Runs with their KPIs, filtered and sorted."""
    return service.runs_list(engine, scenario=scenario, status=status, recommender=recommender, q=q, sort=sort, order=order, limit=limit, offset=offset)


@router.get("/compare", response_model=S.CompareOut)
def compare(
    engine: EngineDep,
    runs: Annotated[str, Query(min_length=1, max_length=200, description="comma-separated run ids; the first is the baseline")],
    points: Points = MAX_POINTS,
) -> dict:
    """Runs side by side with KPI deltas against the first."""
    return service.compare(engine, parse_run_ids(runs), points=points)


@router.get("/runs/{run_id}", response_model=S.RunOut)
def get_run(engine: EngineDep, run_id: RunId) -> dict:
    """One run with its KPIs."""
    return service.run_out(engine, service.get_run(engine, run_id))


@router.get("/runs/{run_id}/overview", response_model=S.RunOverview)
def overview(engine: EngineDep, run_id: RunId, points: Points = MAX_POINTS) -> dict:
    """KPIs, per-tick metrics (a long run's cut into buckets of ticks), retention and LLM usage of a run."""
    return service.overview(engine, run_id, points=points)


@router.get("/runs/{run_id}/ticks", response_model=list[S.TickRow])
def ticks(
    engine: EngineDep,
    run_id: RunId,
    after: Annotated[int, Query(ge=-1, le=MAX_ID)] = -1,
    limit: Annotated[int, Query(ge=1, le=100_000, description="at most this many ticks: page with after = the last tick received")] = 100_000,
) -> list:
    """Every tick's metrics with ``tick > after``, in tick order, one row per tick."""
    service.get_run(engine, run_id)
    return service.ticks_out(engine, run_id, after=after, limit=limit)


@router.get(
    "/runs/{run_id}/ticks.csv",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per tick, the TickRow fields as columns"}},
)
def ticks_csv(engine: EngineDep, run_id: RunId) -> PlainTextResponse:
    """Per-tick metrics as CSV (for spreadsheets and pandas)."""
    service.get_run(engine, run_id)
    rows = service.ticks_out(engine, run_id)
    text = csv_text(rows, TICK_COLUMNS)  # the same columns as `recworld export metrics`
    return PlainTextResponse(text, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="run{run_id}_metrics.csv"'})


@router.get("/runs/{run_id}/retention", response_model=S.RetentionOut)
def retention(engine: EngineDep, run_id: RunId) -> dict:
    """Retention curve and cohort table (stored at run end, live before)."""
    return service.retention_out(engine, service.get_run(engine, run_id))


@router.get(
    "/runs/{run_id}/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "server-sent events: `ticks` (new TickMetrics rows and the run's KPIs), `end` (terminal status)",
        }
    },
)
async def stream(request: Request, engine: EngineDep, run_id: RunId, after: Annotated[int, Query(ge=-1, le=MAX_ID)] = -1) -> StreamingResponse:
    """Server-sent events with each new TickMetrics row as it lands; ends when the run is terminal.

    Reconnecting clients resume after ``Last-Event-ID`` (the last tick sent).
    """
    st = await run_in_threadpool(Q.status_and_tick, engine, run_id)
    if st is None:
        raise HTTPException(404, f"no run with id {run_id}")
    last_id = request.headers.get("last-event-id", "")
    if last_id.lstrip("-").isdigit() and len(last_id) < 19:
        after = max(after, int(last_id))
    settings = request.app.state.settings
    return StreamingResponse(
        _events(engine, run_id, after, settings.poll_interval, settings.stream_max_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(event: str, data: object, id_: int | None = None) -> str:
    head = f"event: {event}\n" + (f"id: {id_}\n" if id_ is not None else "")
    return head + "data: " + json.dumps(data, separators=(",", ":"), default=_jsonable) + "\n\n"


def _jsonable(o: object) -> object:
    # The data is plain dicts of numbers and strings; only the run's datetimes need help. Encoding a
    # whole run's ticks through jsonable_encoder took longer than reading them (10M-event benchmark).
    if isinstance(o, datetime | date):
        return o.isoformat()
    return jsonable_encoder(o)


async def _events(engine: Engine, run_id: int, after: int, poll: float, max_seconds: float) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    started = last_ping = loop.time()
    last = after
    yield "retry: 2000\n\n"
    while True:
        try:
            # Status first, then rows: if the status was terminal, every row is already committed.
            st = await run_in_threadpool(Q.status_and_tick, engine, run_id)
            rows = await run_in_threadpool(service.ticks_out, engine, run_id, last)
            run = await run_in_threadpool(lambda: service.run_out(engine, service.get_run(engine, run_id))) if rows else None
        except (SQLAlchemyError, HTTPException) as exc:
            # The response has started: report in-band; the browser reconnects and resumes.
            yield _sse("error", {"detail": f"the run database could not answer ({exc.__class__.__name__})"})
            return
        if rows:
            last = rows[-1]["tick"]
            yield _sse("ticks", {"ticks": rows, "run": run}, id_=last)
        if st is None or st[0] in Q.TERMINAL_STATUSES:
            yield _sse("end", {"status": st[0] if st else "deleted", "tick_done": st[1] if st else last}, id_=last)
            return
        now = loop.time()
        if now - started > max_seconds:
            return  # the browser reconnects with Last-Event-ID
        if now - last_ping > 5:
            last_ping = now
            yield ": ping\n\n"
        await asyncio.sleep(poll)


@router.get("/runs/{run_id}/events", response_model=S.Page[S.EventOut])
def run_events(
    engine: EngineDep,
    run_id: RunId,
    user_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    item_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    type: Annotated[list[EventName] | None, Query(description="event types (repeatable)")] = None,
    tick_min: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    tick_max: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    order: Order = "asc",
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict:
    """The event log of a run, filtered and paginated."""
    service.get_run(engine, run_id)
    types = [int(EventType[t.value.upper()]) for t in type] if type else None
    total, rows = Q.events(
        engine,
        run_id,
        user_id=user_id,
        item_id=item_id,
        types=types,
        tick_min=tick_min,
        tick_max=tick_max,
        limit=limit,
        offset=offset,
        descending=order == "desc",
    )
    return {"total": total or 0, "limit": limit, "offset": offset, "items": rows}


# ------------------------------------------------------------------ conversations
OutcomeFilter = Literal["success", "abandoned", "left", "ended_by_agent", "failed", "open"]


@router.get("/runs/{run_id}/conversations", response_model=S.ConversationPage)
def run_conversations(
    engine: EngineDep,
    run_id: RunId,
    outcome: Annotated[OutcomeFilter | None, Query(description="how it ended; open = not ended yet")] = None,
    user_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> dict:
    """Conversations with the platform's conversational agent: transcripts, intent, outcome."""
    service.get_run(engine, run_id)
    return service.conversations_page(engine, run_id, outcome=outcome, user_id=user_id, limit=limit, offset=offset)


# ------------------------------------------------------------------ users
@router.get("/runs/{run_id}/user-filters", response_model=S.Filters)
def user_filters(engine: EngineDep, run_id: RunId) -> dict:
    """Distinct roles and occupations of a run's users."""
    service.get_run(engine, run_id)
    return {"values": Q.user_filter_values(engine, run_id)}


@router.get("/runs/{run_id}/users", response_model=S.Page[S.UserOut])
def users(
    engine: EngineDep,
    run_id: RunId,
    q: Text = None,
    role: Text = None,
    occupation: Text = None,
    sort: Literal["user_id", "age", "activity", "patience", "conformity", "diversity_seeking", "role", "occupation"] = "user_id",
    order: Order = "asc",
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict:
    """A run's users: search persona text, filter by role/occupation."""
    service.get_run(engine, run_id)
    total, rows = Q.find_users(engine, run_id, q=q, role=role, occupation=occupation, order_by=sort, descending=order == "desc", limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "items": rows}


@router.get("/runs/{run_id}/users/{user_id}", response_model=S.UserDetail)
def user(engine: EngineDep, run_id: RunId, user_id: UserId) -> dict:
    """A user's persona, traits, state over time, first pages of sessions, memory, chats, posts, instructions and stored interviews."""
    return service.user_detail(engine, run_id, user_id)


@router.get("/runs/{run_id}/users/{user_id}/events", response_model=S.Page[S.EventOut])
def user_events(
    engine: EngineDep,
    run_id: RunId,
    user_id: UserId,
    type: Annotated[list[EventName] | None, Query()] = None,
    order: Order = "desc",
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict:
    """A user's events (newest first by default)."""
    service.get_user(engine, run_id, user_id)
    types = [int(EventType[t.value.upper()]) for t in type] if type else None
    return service.user_events_page(engine, run_id, user_id, types, limit, offset, descending=order == "desc")


@router.get("/runs/{run_id}/users/{user_id}/sessions", response_model=S.Page[S.SessionOut])
def user_sessions(engine: EngineDep, run_id: RunId, user_id: UserId, limit: Limit = 50, offset: Offset = 0) -> dict:
    """A user's activity per tick, newest first."""
    service.get_user(engine, run_id, user_id)
    return service.user_sessions_page(engine, run_id, user_id, limit, offset)


@router.get("/runs/{run_id}/users/{user_id}/memory", response_model=S.Page[S.MemoryOut])
def user_memory(engine: EngineDep, run_id: RunId, user_id: UserId, limit: Limit = 50, offset: Offset = 0) -> dict:
    """A user's memory records, newest first."""
    service.get_user(engine, run_id, user_id)
    return service.user_memory_page(engine, run_id, user_id, limit, offset)


@router.get("/runs/{run_id}/users/{user_id}/snapshots", response_model=list[S.Snapshot])
def user_snapshots(engine: EngineDep, run_id: RunId, user_id: UserId) -> list:
    """A user's numeric state over time."""
    service.get_user(engine, run_id, user_id)
    return Q.user_snapshots(engine, run_id, user_id)


# ------------------------------------------------------------------ items
@router.get("/runs/{run_id}/items", response_model=S.Page[S.ItemOut])
def items(
    engine: EngineDep,
    run_id: RunId,
    q: Text = None,
    tag: Text = None,
    sort: Literal["item_id", "title", "year", "created_tick", "watches", "impressions"] = "item_id",
    order: Order = "asc",
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict:
    """A run's catalog with watch counts; sort by popularity with ``sort=watches&order=desc``."""
    service.get_run(engine, run_id)
    total, rows = Q.find_items(engine, run_id, q=q, tag=tag, order_by=sort, descending=order == "desc", limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "items": rows}


@router.get("/runs/{run_id}/items/{item_id}", response_model=S.ItemDetail)
def item(engine: EngineDep, run_id: RunId, item_id: ItemId, limit: Limit = 50, offset: Offset = 0, points: Points = MAX_POINTS) -> dict:
    """An item's popularity over time (cut into buckets of ticks when long), who watched it, and its share cascades."""
    return service.item_detail(engine, run_id, item_id, limit=limit, offset=offset, points=points)


@router.get("/runs/{run_id}/items/{item_id}/timeseries", response_model=list[S.ItemTick])
def item_timeseries(engine: EngineDep, run_id: RunId, item_id: ItemId) -> list:
    """An item's counts in every tick it had activity, one row per tick."""
    service.get_item(engine, run_id, item_id)
    return Q.item_timeseries(engine, run_id, item_id)


@router.get("/runs/{run_id}/items/{item_id}/watchers", response_model=S.Page[S.Watcher])
def item_watchers(engine: EngineDep, run_id: RunId, item_id: ItemId, limit: Limit = 50, offset: Offset = 0) -> dict:
    """Users who watched an item."""
    service.get_item(engine, run_id, item_id)
    total, rows = Q.item_watchers(engine, run_id, item_id, limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "items": rows}


# ------------------------------------------------------------------ graph
@router.get("/runs/{run_id}/graph", response_model=S.GraphOut)
def graph(engine: EngineDep, run_id: RunId, max_nodes: Annotated[int, Query(ge=1, le=1000)] = 300) -> dict:
    """The highest-degree part of the follow graph, laid out server-side."""
    return service.graph(engine, run_id, max_nodes=max_nodes)


# ------------------------------------------------------------------ evaluations
EvalName = Annotated[str, Path(min_length=1, max_length=200, description="evaluation name (recworld eval --name)")]


@router.get("/evals", response_model=list[S.EvalSummary])
def evals(engine: EngineDep) -> list:
    """Policy evaluations stored by ``recworld eval``, newest first."""
    return service.evals(engine)


@router.get("/evals/{name}", response_model=S.EvalOut)
def eval_detail(engine: EngineDep, name: EvalName) -> dict:
    """One evaluation: each policy's mean and 95% confidence interval per metric, with the per-seed values."""
    return service.eval_detail(engine, name)


# ------------------------------------------------------------------ sweeps
SweepName = Annotated[str, Path(min_length=1, max_length=200, description="sweep name (recworld sweep --name)")]


@router.get("/sweeps", response_model=list[S.SweepSummary])
def sweeps(engine: EngineDep) -> list:
    """Sweeps stored by ``recworld sweep`` (seeds x recommenders), newest first."""
    return service.sweeps(engine)


@router.get("/sweeps/{name}", response_model=S.SweepOut)
def sweep_detail(engine: EngineDep, name: SweepName) -> dict:
    """One sweep: each recommender's mean and 95% confidence interval over seeds per KPI, with the per-seed values."""
    return service.sweep_detail(engine, name)


# ------------------------------------------------------------------ validations
ValidationName = Annotated[str, Path(min_length=1, max_length=200, description="report name (recworld validate --name)")]


@router.get("/validations", response_model=list[S.ValidationSummary])
def validations(engine: EngineDep) -> list:
    """Fidelity reports stored by ``recworld validate``, newest first, with their headline figures."""
    return service.validations(engine)


@router.get("/validations/{name}", response_model=S.ValidationOut)
def validation_detail(engine: EngineDep, name: ValidationName) -> dict:
    """One fidelity report: taste alignment, propensity AUC, ratings, shapes, sim-to-real agreement, targets."""
    return service.validation_detail(engine, name)
