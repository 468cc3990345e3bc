"""Server-rendered pages (Jinja2). Tables and KPIs render without JavaScript; charts use plotly.js."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from recworld.dashboard import queries as Q
from recworld.dashboard import service
from recworld.dashboard.api import (
    MAX_OFFSET,
    EngineDep,
    EvalName,
    ItemId,
    Order,
    OutcomeFilter,
    Points,
    RunId,
    RunSort,
    Text,
    UserId,
    ValidationName,
    parse_run_ids,
)
from recworld.dashboard.series import MAX_POINTS
from recworld.events import EventType
from recworld.kpis import KPIS, chart_series, format_value
from recworld.kpis import TILES as TILE_KPIS
from recworld.payloads import LEAVE_REASON_LABELS, OUTCOME_LABELS

router = APIRouter(include_in_schema=False)
PAGE = 25

# Charts of the run overview (and, first series only, of the compare page): id, title, and a note when
# there is nothing to show; the series are the per-tick KPIs the registry assigns to each chart.
_CHARTS: list[tuple[str, str, str | None]] = [
    ("activity", "Active users and sessions", None),
    ("pages", "Pages per session", None),
    ("watch_rate", "Watch rate (watches / impressions)", None),
    ("rating", "Mean rating and satisfaction", None),
    ("churn", "Churn", None),
    ("exposure", "Coverage, diversity and Gini of exposure", None),
    ("novelty", "Novelty of watched items (bits)", None),
    ("social", "Social activity", "no social activity (social layer off?)"),
    ("conversation", "Conversations and searches", "no conversations or searches (conversation/search layers off?)"),
    ("llm", "LLM calls", "no LLM calls (a brain without language?)"),
    ("llm_tokens", "LLM tokens", "no LLM calls (a brain without language?)"),
]


def _chart(cid: str, title: str, empty: str | None) -> dict[str, Any]:
    series = [[k.name, k.label, k.style, *(["y2"] if k.axis == "y2" else [])] for k in chart_series(cid)]
    # Series a bucket of ticks sums (recworld.dashboard.series): the chart divides them by the bucket's ticks, to stay per tick.
    sums = [k.name for k in chart_series(cid) if k.bucket == "sum"]
    out: dict[str, Any] = {"id": cid, "title": title, "series": series, "sums": sums}
    if series and KPIS[series[0][0]].fmt == "pct":
        out["pct"] = True
    if empty:
        out["empty"] = empty
    return out


CHARTS: list[dict[str, Any]] = [_chart(*c) for c in _CHARTS]

# KPI tiles: (key, label, format), from the registry.
TILES = [(n, KPIS[n].label, KPIS[n].fmt) for n in TILE_KPIS]


def fmt(v: Any, kind: str = "f3") -> str:
    """Format a KPI for a tile or table (``–`` for missing)."""
    return format_value(v, kind)


def _json_default(o: Any) -> Any:
    if hasattr(o, "isoformat"):
        return o.isoformat()
    raise TypeError(f"cannot serialise {type(o).__name__}")


def install_filters(templates: Jinja2Templates) -> None:
    """Jinja filters and globals of the pages."""
    templates.env.filters["fmt"] = fmt
    # Page data embeds datetimes (run created/finished): serialise them as ISO strings.
    templates.env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _json_default}
    templates.env.globals["TILES"] = TILES
    templates.env.globals["CHARTS"] = CHARTS
    templates.env.globals["TERMINAL"] = sorted(Q.TERMINAL_STATUSES)
    templates.env.globals["LEAVE_REASON_LABELS"] = LEAVE_REASON_LABELS
    templates.env.globals["OUTCOME_LABELS"] = {**OUTCOME_LABELS, "open": "not ended yet (a live run)"}


def _render(request: Request, name: str, **ctx: Any) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, name, ctx)


def _pager(request: Request, total: int, limit: int, offset: int, param: str = "offset") -> dict[str, Any]:
    """Prev/next links keeping the other query parameters."""
    params = {k: v for k, v in request.query_params.multi_items() if k not in (param, "token")}

    def link(off: int) -> str:
        return "?" + urlencode([*params.items(), (param, off)])

    return {
        "total": total,
        "first": offset + 1 if total else 0,
        "last": min(offset + limit, total),
        "prev": link(max(0, offset - limit)) if offset > 0 else None,
        "next": link(offset + limit) if offset + limit < total else None,
    }


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/runs", status_code=307)


@router.get("/runs")
def runs_page(
    request: Request,
    engine: EngineDep,
    scenario: Text = None,
    status: Text = None,
    recommender: Text = None,
    q: Text = None,
    sort: RunSort = "id",
    order: Order = "desc",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    data = service.runs_list(engine, scenario=scenario, status=status, recommender=recommender, q=q, sort=sort, order=order, limit=PAGE, offset=offset)
    filters = Q.distinct_run_values(engine)
    base = {k: v for k, v in request.query_params.items() if k not in ("sort", "order", "offset", "token")}

    def sort_link(col: str) -> str:
        new_order = "asc" if (sort == col and order == "desc") else "desc"
        return "?" + urlencode({**base, "sort": col, "order": new_order})

    return _render(
        request, "runs.html", data=data, filters=filters, sel={"scenario": scenario, "status": status, "recommender": recommender, "q": q or ""},
        sort=sort, order=order, sort_link=sort_link, pager=_pager(request, data["total"], PAGE, offset),
    )  # fmt: skip


@router.get("/runs/{run_id}")
def run_page(request: Request, engine: EngineDep, run_id: RunId, points: Points = MAX_POINTS) -> HTMLResponse:
    data = service.overview(engine, run_id, points=points)
    return _render(request, "run.html", run=data["run"], data=data)


@router.get("/compare")
def compare_page(
    request: Request,
    engine: EngineDep,
    runs: Annotated[str | None, Query(max_length=200)] = None,
    sweep: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    points: Points = MAX_POINTS,
) -> HTMLResponse:
    if sweep:
        data = service.sweep_detail(engine, sweep)
        cells = {(r["recommender"], r["metric"]): r for r in data["rows"]}
        return _render(request, "sweep.html", data=data, cells=cells)
    if not runs:
        total, rows = Q.find_runs(engine, limit=100)
        return _render(request, "compare.html", data=None, choices=rows, sweeps=service.sweeps(engine))
    data = service.compare(engine, parse_run_ids(runs), points=points)
    return _render(request, "compare.html", data=data, choices=None)


@router.get("/runs/{run_id}/users")
def users_page(
    request: Request,
    engine: EngineDep,
    run_id: RunId,
    q: Text = None,
    role: Text = None,
    occupation: Text = None,
    sort: Literal["user_id", "age", "activity", "patience", "conformity", "diversity_seeking", "role", "occupation"] = "user_id",
    order: Order = "asc",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    run = service.run_out(engine, service.get_run(engine, run_id))
    total, rows = Q.find_users(engine, run_id, q=q, role=role, occupation=occupation, order_by=sort, descending=order == "desc", limit=PAGE, offset=offset)
    base = {k: v for k, v in request.query_params.items() if k not in ("sort", "order", "offset", "token")}

    def sort_link(col: str) -> str:
        return "?" + urlencode({**base, "sort": col, "order": "desc" if (sort == col and order == "asc") else "asc"})

    return _render(
        request, "users.html", run=run, rows=rows, filters=Q.user_filter_values(engine, run_id),
        sel={"q": q or "", "role": role, "occupation": occupation}, sort_link=sort_link, pager=_pager(request, total, PAGE, offset),
    )  # fmt: skip


EVENT_FILTERS = ["all", *[t.name.lower() for t in EventType]]


@router.get("/runs/{run_id}/users/{user_id}")
def user_page(
    request: Request,
    engine: EngineDep,
    run_id: RunId,
    user_id: UserId,
    type: Annotated[Literal[tuple(EVENT_FILTERS)], Query()] = "all",  # type: ignore[valid-type]
    eoffset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    soffset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    run = service.run_out(engine, service.get_run(engine, run_id))
    data = service.user_detail(engine, run_id, user_id, limit=PAGE)
    types = None if type == "all" else [int(EventType[type.upper()])]
    ev = service.user_events_page(engine, run_id, user_id, types, PAGE, eoffset)
    # The first page of sessions is part of the user's detail already.
    sessions = data["sessions"] if soffset == 0 else service.user_sessions_page(engine, run_id, user_id, PAGE, soffset)
    return _render(
        request, "user.html", run=run, data=data, events=ev, sessions=sessions, etype=type, event_filters=EVENT_FILTERS,
        epager=_pager(request, ev["total"], PAGE, eoffset, "eoffset"), spager=_pager(request, sessions["total"], PAGE, soffset, "soffset"),
    )  # fmt: skip


@router.get("/runs/{run_id}/conversations")
def conversations_page(
    request: Request,
    engine: EngineDep,
    run_id: RunId,
    outcome: Annotated[OutcomeFilter | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    run = service.run_out(engine, service.get_run(engine, run_id))
    data = service.conversations_page(engine, run_id, outcome=outcome, limit=PAGE, offset=offset)
    return _render(request, "conversations.html", run=run, data=data, outcome=outcome, pager=_pager(request, data["total"], PAGE, offset))


@router.get("/runs/{run_id}/items")
def items_page(
    request: Request,
    engine: EngineDep,
    run_id: RunId,
    q: Text = None,
    tag: Text = None,
    sort: Literal["item_id", "title", "year", "created_tick", "watches", "impressions"] = "watches",
    order: Order = "desc",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    run = service.run_out(engine, service.get_run(engine, run_id))
    total, rows = Q.find_items(engine, run_id, q=q, tag=tag, order_by=sort, descending=order == "desc", limit=PAGE, offset=offset)
    base = {k: v for k, v in request.query_params.items() if k not in ("sort", "order", "offset", "token")}

    def sort_link(col: str) -> str:
        return "?" + urlencode({**base, "sort": col, "order": "asc" if (sort == col and order == "desc") else "desc"})

    return _render(
        request, "items.html", run=run, rows=rows, sel={"q": q or "", "tag": tag or ""}, sort_link=sort_link, pager=_pager(request, total, PAGE, offset)
    )


@router.get("/runs/{run_id}/items/{item_id}")
def item_page(
    request: Request, engine: EngineDep, run_id: RunId, item_id: ItemId, offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0, points: Points = MAX_POINTS
) -> HTMLResponse:
    run = service.run_out(engine, service.get_run(engine, run_id))
    data = service.item_detail(engine, run_id, item_id, limit=PAGE, offset=offset, points=points)
    return _render(request, "item.html", run=run, data=data, pager=_pager(request, data["watchers"]["total"], PAGE, offset))


@router.get("/runs/{run_id}/graph")
def graph_page(
    request: Request,
    engine: EngineDep,
    run_id: RunId,
    n: Annotated[int, Query(ge=10, le=1000)] = 300,
    color: Literal["role", "activity", "degree"] = "role",
) -> HTMLResponse:
    run = service.run_out(engine, service.get_run(engine, run_id))
    data = service.graph(engine, run_id, max_nodes=n)
    return _render(request, "graph.html", run=run, data=data, color=color, n=n)


@router.get("/evals")
def evals_page(request: Request, engine: EngineDep) -> HTMLResponse:
    return _render(request, "evals.html", rows=service.evals(engine))


@router.get("/evals/{name}")
def eval_page(request: Request, engine: EngineDep, name: EvalName) -> HTMLResponse:
    data = service.eval_detail(engine, name)
    cells = {(r["policy"], r["metric"]): r for r in data["rows"]}
    return _render(request, "eval.html", data=data, cells=cells)


@router.get("/validations")
def validations_page(request: Request, engine: EngineDep) -> HTMLResponse:
    return _render(request, "validations.html", rows=service.validations(engine))


@router.get("/validations/{name}")
def validation_page(request: Request, engine: EngineDep, name: ValidationName) -> HTMLResponse:
    data = service.validation_detail(engine, name)
    return _render(request, "validation.html", data=data, rep=data["report"])
