"""Malformed input: hand-written rows (labelled as such) on top of a small real run.

A database written by another tool, an older RecWorld or a bug may hold
payloads that do not parse. The dashboard shows what it can and never fails.
Everything else in tests/dashboard runs on what the simulator wrote.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from recworld.events import EventType


@pytest.fixture(scope="module")
def malformed(tmp_path_factory):
    from recworld.dashboard.app import create_app
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario
    from recworld.storage import Event, connect
    from recworld.storage.db import dispose_all

    url = f"sqlite:///{tmp_path_factory.mktemp('malformed') / 'runs.db'}"
    out = run_scenario(
        load_scenario("quickstart").with_overrides(**{"population.n_users": 20, "ticks": 3, "social.enabled": False}), db_url=url, progress=False
    )
    item, user = 10, 0

    def row(tick, uid, etype, payload, item_id=None, value=None):
        return {"run_id": out.run_id, "tick": tick, "user_id": uid, "type": int(etype), "item_id": item_id, "value": value, "text": None, "payload": payload}

    # HAND-WRITTEN, MALFORMED ON PURPOSE: payloads no RecWorld writer produces.
    rows = [
        row(1, user, EventType.POST, json.dumps({"post": 0, "parent_post": None, "cascade": 0, "depth": 0, "by": "template"}), item),  # valid root
        row(1, 1, EventType.POST, json.dumps({"post": 1, "parent_post": 0, "cascade": 0, "depth": 1, "by": "template"}), item),  # valid reshare
        row(2, 2, EventType.POST, json.dumps({"post": 2, "parent_post": 99, "cascade": 99, "depth": 1}), item),  # parent unknown
        row(2, 3, EventType.POST, "not json", item),
        row(2, 4, EventType.POST, json.dumps([1, 2, 3]), item),
        row(2, 5, EventType.POST, json.dumps({"post": "x"}), item),
        row(2, user, EventType.LEAVE, json.dumps({"reason": "bored of it all"}), value=3.0),
        row(2, user, EventType.LEAVE, "{", value=1.0),
    ]
    engine = connect(url, create=False)
    with engine.begin() as con:
        con.execute(insert(Event.__table__), rows)
        # As an older RecWorld would leave it (schema 5: no per-tick summaries of these rows);
        # opening it again migrates it, counting the cascades and leave reasons from the Event rows.
        con.exec_driver_sql("UPDATE schemainfo SET version = 5")
    dispose_all()
    connect(url, create=True)
    with TestClient(create_app(url)) as c:
        yield c, out.run_id, item, user


def test_posts_that_do_not_parse_start_their_own_cascades(malformed):
    client, run_id, item, _ = malformed
    r = client.get(f"/api/runs/{run_id}/items/{item}")
    assert r.status_code == 200
    c = r.json()["cascades"]
    assert len(c["posts"]) == 6
    sizes = sorted(((x["size"], x["depth"]) for x in c["cascades"]), reverse=True)
    assert sizes == [(2, 1), (1, 0), (1, 0), (1, 0), (1, 0)]
    assert client.get(f"/runs/{run_id}/items/{item}").status_code == 200


def test_run_summary_skips_what_does_not_parse(malformed):
    client, run_id, _, _ = malformed
    ov = client.get(f"/api/runs/{run_id}/overview").json()
    assert ov["cascades"]["posts"] == 6 and ov["cascades"]["cascades"] == 2  # cascades 0 and 99
    assert ov["leave_reasons"]["unknown"] == 2
    assert client.get(f"/runs/{run_id}").status_code == 200


def test_unknown_leave_reasons_show_as_none(malformed):
    client, run_id, _, user = malformed
    rows = client.get(f"/api/runs/{run_id}/users/{user}/sessions", params={"limit": 10}).json()["items"]
    tick2 = next(r for r in rows if r["tick"] == 2)
    assert tick2["leave_reason"] is None or tick2["leave_reason"] in ("page_limit", "nothing_to_watch", "tired", "satisfied", "session_closed")
    assert client.get(f"/runs/{run_id}/users/{user}").status_code == 200
