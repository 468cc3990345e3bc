"""The dashboard's ASGI app: read-only pages and JSON API over a run database.

Example:
    >>> from dashboard.app import create_app
    >>> app = create_app("sqlite:///runs/recworld.db")  # doctest: +SKIP
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recworld.errors import ConfigError, MissingExtraError, RecWorldError
from recworld.storage import connect

HERE = Path(__file__).parent
COOKIE = "recworld_token"


@dataclass(frozen=True)
class Settings:
    """Dashboard settings.

    Attributes:
        db_url: the run database.
        poll_interval: seconds between database polls of a live stream.
        stream_max_seconds: a live stream closes after this long; the browser
            reconnects on its own with ``Last-Event-ID`` (keeps server shutdown quick).
    """

    db_url: str
    poll_interval: float = 0.5
    stream_max_seconds: float = 20.0


def plotly_js_path() -> Path:
    """``plotly.min.js`` inside the installed ``plotly`` package (never a CDN).

    Raises:
        ConfigError: plotly is not installed.
    """
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("the dashboard's charts need the 'dashboard' extra (plotly is not installed): pip install 'recworld[dashboard]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"
    if not path.exists():
        raise ConfigError(f"{path} is missing; reinstall plotly (pip install --force-reinstall plotly)")
    return path


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).hexdigest().encode()


class TokenAuth:
    """ASGI middleware: requests need the token (``?token=``, ``Authorization: Bearer`` or the cookie).

    A valid ``?token=`` sets an HttpOnly cookie holding a hash of the token, so
    links and the live stream work without repeating it in every URL.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.want = _digest(token)

    def _ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(_digest(given), self.want)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        req = Request(scope)
        from_query = self._ok(req.query_params.get("token"))
        auth = req.headers.get("authorization", "")
        ok = (
            from_query
            or (auth[:7].lower() == "bearer " and self._ok(auth[7:].strip()))
            or hmac.compare_digest(req.cookies.get(COOKIE, "").encode("utf-8", "replace"), self.want)
        )
        if not ok:
            resp = JSONResponse(
                {"detail": "an access token is required: add ?token=... or an 'Authorization: Bearer' header"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await resp(scope, receive, send)
            return
        if not from_query:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"set-cookie", f"{COOKIE}={self.want.decode()}; HttpOnly; SameSite=Strict; Path=/".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and request.url.path != "/openapi.json"


def create_app(db_url: str, token: str | None = None, *, poll_interval: float = 0.5, stream_max_seconds: float = 20.0) -> FastAPI:
    """Build the dashboard app over an existing run database.

    Args:
        db_url: SQLAlchemy URL or SQLite file path of the run database.
        token: if given, every request needs it (see :class:`TokenAuth`).
        poll_interval: seconds between polls of the database by live streams.
        stream_max_seconds: how long one live stream stays open before the
            browser reconnects.

    Raises:
        ConfigError: the database does not exist or cannot be opened.
    """
    from recworld.dashboard import api, pages

    engine = connect(db_url, create=False)
    app = FastAPI(
        title="RecWorld dashboard",
        version="1",
        description="Read-only views of RecWorld runs: KPIs, per-tick metrics, retention, users, items, social graph, live updates (SSE).",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.settings = Settings(db_url=db_url, poll_interval=poll_interval, stream_max_seconds=stream_max_seconds)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    pages.install_filters(templates)
    app.state.templates = templates
    app.state.token_required = bool(token)
    plotly_js = plotly_js_path()

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_asset() -> FileResponse:
        return FileResponse(plotly_js, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)

    def _error(request: Request, status: int, detail: Any) -> Response:
        if _wants_html(request):
            return templates.TemplateResponse(request, "error.html", {"status": status, "detail": detail}, status_code=status)
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, exc.status_code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def bad_params(request: Request, exc: RequestValidationError) -> Response:
        if _wants_html(request):
            msg = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}" for e in exc.errors())
            return _error(request, 422, msg)
        from fastapi.encoders import jsonable_encoder

        return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    @app.exception_handler(SQLAlchemyError)
    async def db_error(request: Request, exc: SQLAlchemyError) -> Response:
        # A locked, missing or half-migrated database: say so instead of a 500.
        return _error(request, 503, f"the run database could not answer ({exc.__class__.__name__}); retry, or check --db")

    @app.exception_handler(RecWorldError)
    async def rw_error(request: Request, exc: RecWorldError) -> Response:
        return _error(request, 503, str(exc))

    @app.exception_handler(OverflowError)
    async def overflow(request: Request, exc: OverflowError) -> Response:
        return _error(request, 422, "a number is out of range")

    if token:
        app.add_middleware(TokenAuth, token=token)
    return app


__all__ = ["Settings", "TokenAuth", "create_app", "plotly_js_path"]
