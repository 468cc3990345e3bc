"""App wiring: access token, offline static assets, server-sent events."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient


def test_plotly_served_locally(client):
    r = client.get("/static/vendor/plotly.min.js")
    assert r.status_code == 200 and len(r.content) > 1_000_000
    assert r.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/dashboard.js").status_code == 200
    assert client.get("/static/dashboard.css").status_code == 200


def test_pages_reference_no_cdn(client, run_db):
    for url in ("/runs", f"/runs/{run_db.run_id}", f"/runs/{run_db.run_id}/graph", f"/compare?runs={run_db.run_id}"):
        html = client.get(url).text
        assert "cdn" not in html.lower() and "https://" not in html


@pytest.fixture(scope="module")
def token_client(run_db):
    from recworld.dashboard.app import create_app

    with TestClient(create_app(run_db.url, token="s3cret")) as c:
        yield c


def test_token_required(token_client):
    c = token_client
    c.cookies.clear()
    r = c.get("/api/runs")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert c.get("/runs").status_code == 401
    assert c.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/runs", params={"token": "wrong"}).status_code == 401
    assert c.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_token_query_sets_cookie(token_client):
    c = token_client
    c.cookies.clear()
    r = c.get("/runs", params={"token": "s3cret"})
    assert r.status_code == 200
    assert "recworld_token" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    assert "s3cret" not in r.headers["set-cookie"]  # the cookie holds a hash, not the token
    assert c.get("/api/runs").status_code == 200  # the cookie now authenticates
    c.cookies.clear()
    assert c.get("/api/runs").status_code == 401


def test_no_token_means_open(client):
    assert client.get("/api/runs").status_code == 200


def _parse_sse(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln and not ln.startswith(":")]
        ev = next((ln[7:] for ln in lines if ln.startswith("event: ")), None)
        data = next((ln[6:] for ln in lines if ln.startswith("data: ")), None)
        if ev and data:
            out.append((ev, json.loads(data)))
    return out


def test_stream_of_finished_run_sends_all_ticks_then_ends(client, run_db):
    r = client.get(f"/api/runs/{run_db.run_id}/stream")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _parse_sse(r.text)
    assert [e for e, _ in events] == ["ticks", "end"]
    assert [t["tick"] for t in events[0][1]["ticks"]] == list(range(30))
    assert events[-1][1]["status"] == "completed"
    # resuming after tick 25 (query or Last-Event-ID) sends only the rest
    later = _parse_sse(client.get(f"/api/runs/{run_db.run_id}/stream", headers={"Last-Event-ID": "25"}).text)
    assert [t["tick"] for t in later[0][1]["ticks"]] == [26, 27, 28, 29]


def test_stream_follows_a_running_run(tmp_path):
    """Ticks a real run writes while the stream is open arrive as `ticks` events; the terminal status ends it."""
    from recworld.dashboard.app import create_app
    from recworld.dashboard.queries import status_and_tick
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario
    from recworld.storage import connect

    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = connect(url)
    client = TestClient(create_app(url, poll_interval=0.02))
    scenario = load_scenario("quickstart").with_overrides(**{"population.n_users": 30, "ticks": 6, "social.enabled": False})
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_scenario(scenario, db_url=url, progress=False, on_tick=lambda world: time.sleep(0.15))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    try:
        deadline = time.time() + 60
        while (st := status_and_tick(engine, 1)) is None or st[0] != "running":
            assert time.time() < deadline, "the run did not start"
            time.sleep(0.02)
        r = client.get("/api/runs/1/stream")
    finally:
        t.join()
    assert not errors, errors
    events = _parse_sse(r.text)
    ticks = [row["tick"] for name, data in events if name == "ticks" for row in data["ticks"]]
    assert ticks == list(range(6))
    assert sum(1 for name, _ in events if name == "ticks") >= 2  # arrived in more than one batch
    assert events[-1] == ("end", {"status": "completed", "tick_done": 5})
    last_kpis = [data["run"]["kpis"] for name, data in events if name == "ticks"][-1]
    rows = [row for name, data in events if name == "ticks" for row in data["ticks"]]
    assert last_kpis["sessions"] == sum(row["sessions"] for row in rows) > 0
