"""RecWorld dashboard: a read-only FastAPI app over a run database (pages + JSON API + SSE).

Start it with ``recworld dashboard --db sqlite:///runs/recworld.db`` or build the
ASGI app yourself with :func:`recworld.dashboard.app.create_app`.
"""

from recworld.errors import require_extra

for _module in ("fastapi", "jinja2"):
    require_extra(_module, "dashboard", "the dashboard")

__all__ = ["create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from recworld.dashboard.app import create_app

        return create_app
    raise AttributeError(name)
