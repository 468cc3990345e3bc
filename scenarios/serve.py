"""Serving the dashboard from the CLI (a uvicorn server in this process)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass

from rich.console import Console

from recworld.errors import ConfigError, require_extra
from recworld.storage.db import redact


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class DashboardServer:
    """A dashboard served by uvicorn in a background thread."""

    server: object
    thread: threading.Thread
    port: int

    def stop(self) -> None:
        self.server.should_exit = True  # type: ignore[attr-defined]
        self.thread.join(timeout=10)

    def wait(self) -> None:
        while self.thread.is_alive():
            self.thread.join(timeout=0.5)


def _app(db: str, token: str | None):
    from recworld.dashboard.app import create_app  # names the 'dashboard' extra when it is missing

    return create_app(db, token=token)


def start_dashboard(db: str, host: str = "127.0.0.1", port: int = 8000, token: str | None = None) -> DashboardServer:
    """Start the dashboard in a background thread and wait until it accepts connections."""
    uvicorn = require_extra("uvicorn", "dashboard", "serving the dashboard")

    if port == 0:
        port = free_port(host)
    config = uvicorn.Config(_app(db, token), host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="recworld-dashboard")
    thread.start()
    deadline = time.time() + 15
    while time.time() < deadline:
        if getattr(server, "started", False):
            return DashboardServer(server, thread, port)
        if not thread.is_alive():
            raise ConfigError(f"the dashboard could not bind {host}:{port}; is the port in use? pass --port 0 for a free port")
        time.sleep(0.05)
    server.should_exit = True
    raise ConfigError(f"the dashboard did not start on {host}:{port} within 15 s")


def serve_dashboard(db: str, host: str, port: int, allow_remote: bool, token: str | None, console: Console) -> int:
    """Serve until Ctrl-C. Binding beyond loopback needs --allow-remote and a token."""
    if not _is_loopback(host):
        if not allow_remote:
            raise ConfigError(f"refusing to bind {host}: the dashboard binds 127.0.0.1 unless you pass --allow-remote and --token")
        if not token:
            raise ConfigError("--allow-remote needs an access token: pass --token or set RECWORLD_DASHBOARD_TOKEN")
    from recworld.storage import connect

    connect(db, create=False)
    srv = start_dashboard(db, host=host, port=port, token=token)
    console.print(f"RecWorld dashboard on http://{host}:{srv.port}/ (database {redact(db)}); Ctrl-C to stop")
    try:
        srv.wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0
