"""RecWorld dashboard: a read-only FastAPI app over a run database (pages + JSON API + SSE).

Start it with ``recworld dashboard --db sqlite:///runs/recworld.db`` or build the
ASGI app yourself with :func:`dashboard.app.create_app`.
"""

__all__ = ["create_app"]


def __getattr__(name: str):  # noqa: ANN202 - lazy: importing the package stays cheap
    if name == "create_app":
        from dashboard.app import create_app

        return create_app
    raise AttributeError(name)
