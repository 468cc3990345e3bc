"""The JSON API over a real run: shapes, filters, pagination, 404/422, never a 500."""

from __future__ import annotations

import json

import pytest


def test_runs_list_has_kpis_and_filters(client, run_db):
    r = client.get("/api/runs")
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 2
    ids = [x["id"] for x in body["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    run = next(x for x in body["items"] if x["id"] == run_db.run_id)
    assert run["status"] == "completed" and run["scenario"] == "quickstart" and run["recommender"] == "linucb"
    assert run["n_users"] == 80 and run["tick_done"] == 29
    assert 0 < run["kpis"]["watch_rate"] < 1
    assert run["kpis"]["sessions"] > 0

    only = client.get("/api/runs", params={"recommender": "random"}).json()
    assert [x["id"] for x in only["items"]] == [run_db.other_run_id]
    assert client.get("/api/runs", params={"status": "running"}).json()["total"] == 0
    by_rate = client.get("/api/runs", params={"sort": "watch_rate", "order": "asc"}).json()["items"]
    rates = [x["kpis"]["watch_rate"] for x in by_rate]
    assert rates == sorted(rates)
    assert client.get("/api/runs", params={"limit": 1, "offset": 1}).json()["items"][0]["id"] == min(ids)
    assert set(client.get("/api/filters").json()["values"]["recommender"]) == {"linucb", "random"}


def _count(engine, run_id: int, etype, **where) -> int:
    from tests_support import log_rows

    cols = {"tick": 0, "user_id": 1, "item_id": 3}
    return sum(1 for r in log_rows(engine, run_id) if r[2] == int(etype) and all(r[cols[k]] == v for k, v in where.items()))


def test_overview_matches_tick_metrics(client, run_db, engine):
    from sqlalchemy import select

    from recworld.storage import LLMCall

    r = client.get(f"/api/runs/{run_db.run_id}/overview")
    assert r.status_code == 200
    body = r.json()
    ticks = body["ticks"]
    assert [t["tick"] for t in ticks] == list(range(30))
    assert sum(t["sessions"] for t in ticks) == body["run"]["kpis"]["sessions"]
    watches = sum(t["watches"] for t in ticks)
    assert body["run"]["kpis"]["watch_rate"] == pytest.approx(watches / sum(t["impressions"] for t in ticks))
    ret = body["retention"]
    assert ret["period_ticks"] == 24 and ret["curve"]["0"] == 1.0
    with engine.connect() as con:
        purposes = set(con.execute(select(LLMCall.purpose).where(LLMCall.run_id == run_db.run_id)).scalars())
    assert {p["purpose"] for p in body["llm_by_purpose"]} == purposes >= {"instruction", "post", "chat"}
    assert client.get(f"/api/runs/{run_db.run_id}/ticks", params={"after": 27}).json()[0]["tick"] == 28


def test_overview_cascades_equal_the_social_layers_statistics(client, run_db):
    """Run-level cascades read back from the log are the social layer's own cascade_stats()."""
    got = client.get(f"/api/runs/{run_db.run_id}/overview").json()["cascades"]
    want = run_db.cascade_stats
    assert want["max_depth"] >= 1  # reshares happened
    for k in ("posts", "cascades", "max_cascade_size", "max_depth"):
        assert got[k] == want[k], k
    assert got["share_spreading"] == pytest.approx(want["share_spreading"])
    assert got["mean_cascade_size"] == pytest.approx(want["mean_cascade_size"])
    assert {int(k): v for k, v in got["size_distribution"].items()} == want["size_distribution"]
    empty = client.get(f"/api/runs/{run_db.other_run_id}/overview").json()["cascades"]
    assert empty["posts"] == 0 and empty["cascades"] == 0


def test_every_session_has_a_leave_reason(client, run_db, engine):
    """The world records why each session ended; the overview counts them by reason."""
    from recworld.events import EventType
    from recworld.payloads import LEAVE_REASONS

    body = client.get(f"/api/runs/{run_db.run_id}/overview").json()
    reasons = body["leave_reasons"]
    assert set(reasons) <= set(LEAVE_REASONS)
    # Sessions of this run all end within their tick: one LEAVE per session, each with a reason.
    assert sum(reasons.values()) == _count(engine, run_db.run_id, EventType.LEAVE) == body["run"]["kpis"]["sessions"]
    # The page limit ends some sessions (quickstart: 8 pages) and users leave by choice in the others.
    assert reasons.get("page_limit", 0) > 0 and sum(v for k, v in reasons.items() if k != "page_limit") > 0
    assert len(reasons) >= 3


def test_events_filter_and_paginate(client, run_db, engine):
    from recworld.events import EventType

    base = f"/api/runs/{run_db.run_id}/events"
    page = client.get(base, params={"type": ["watch", "rate"], "limit": 7, "offset": 3}).json()
    assert page["limit"] == 7 and page["offset"] == 3 and len(page["items"]) == 7
    assert {e["type_name"] for e in page["items"]} <= {"watch", "rate"}
    total = client.get(base, params={"type": "watch"}).json()["total"]
    kpi_watches = sum(t["watches"] for t in client.get(f"/api/runs/{run_db.run_id}/ticks").json())
    assert total == kpi_watches
    posts = client.get(base, params={"item_id": run_db.item_id, "type": "post", "limit": 500}).json()
    assert posts["total"] == _count(engine, run_db.run_id, EventType.POST, item_id=run_db.item_id) >= 2
    reshare = next(p["payload"] for p in posts["items"] if p["payload"]["parent_post"] is not None)
    assert {"post", "parent_post", "cascade", "depth", "by"} <= set(reshare) and reshare["depth"] >= 1
    assert client.get(base, params={"type": "nope"}).status_code == 422


def test_users_search_and_detail(client, run_db, engine):
    from sqlalchemy import func, select

    from recworld.events import EventType
    from recworld.storage import MemoryRecord

    base = f"/api/runs/{run_db.run_id}/users"
    page = client.get(base, params={"limit": 10}).json()
    assert page["total"] == 80 and len(page["items"]) == 10
    assert page["items"][0]["latest"] is not None
    role = page["items"][0]["role"]
    by_role = client.get(base, params={"role": role, "limit": 500}).json()
    assert by_role["items"] and all(u["role"] == role for u in by_role["items"])
    occ = next(u["occupation"] for u in page["items"] if u["occupation"])
    found = client.get(base, params={"q": occ}).json()
    assert found["total"] >= 1 and all(occ in (u["profile_text"] + (u["occupation"] or "")) for u in found["items"])
    assert client.get(base, params={"q": "no such persona text"}).json()["total"] == 0
    assert set(client.get(f"/api/runs/{run_db.run_id}/user-filters").json()["values"]) == {"role", "occupation"}

    uid = run_db.user_id
    d = client.get(f"{base}/{uid}").json()
    assert d["user"]["profile_text"]
    n_chats = _count(engine, run_db.run_id, EventType.CHAT, user_id=uid)
    assert d["chats"]["total"] == n_chats > 0
    assert any("so good" in c["text"] for c in d["chats"]["items"])
    assert d["posts"]["total"] == _count(engine, run_db.run_id, EventType.POST, user_id=uid) > 0
    by_llm = [i["text"] for i in d["instructions"]["items"] if i["payload"]["by"] == "llm"]
    assert by_llm and set(by_llm) == {"I want fewer romances, more space sci-fi."}
    with engine.connect() as con:
        n_mem = con.execute(select(func.count()).select_from(MemoryRecord).where(MemoryRecord.run_id == run_db.run_id, MemoryRecord.user_id == uid)).scalar()
    mem = d["memory"]["items"]
    assert d["memory"]["total"] == n_mem > 0 and [m["tick"] for m in mem] == sorted((m["tick"] for m in mem), reverse=True)  # newest first
    assert d["snapshots"] and d["snapshots"][0]["tick"] == 0
    assert d["event_counts"]["post"] == d["posts"]["total"] and d["event_counts"]["chat"] == n_chats
    sessions = client.get(f"{base}/{uid}/sessions", params={"limit": 500}).json()
    assert sessions["total"] >= 1
    ended = [s for s in sessions["items"] if s["pages"] is not None]
    assert ended and all(s["leave_reason"] is not None for s in ended)
    assert all(s["impressions"] == s["watches"] + s["skips"] for s in sessions["items"])
    ev = client.get(f"{base}/{uid}/events", params={"limit": 5}).json()
    ticks = [e["tick"] for e in ev["items"]]
    assert ticks == sorted(ticks, reverse=True)


def test_items_popularity_watchers_and_impressions(client, run_db):
    base = f"/api/runs/{run_db.run_id}/items"
    page = client.get(base, params={"sort": "watches", "order": "desc", "limit": 5}).json()
    w = [i["watches"] for i in page["items"]]
    assert w == sorted(w, reverse=True) and w[0] > 0
    by_imp = client.get(base, params={"sort": "impressions", "order": "desc", "limit": 5}).json()["items"]
    assert by_imp[0]["impressions"] == max(run_db.exposure.values())
    top = page["items"][0]["item_id"]
    for item_id in (top, run_db.item_id):
        d = client.get(f"{base}/{item_id}").json()
        it = d["item"]
        # Every item shown on a page is watched or skipped: impressions = watches + skips,
        # and equal to the world's own exposure counter.
        assert it["impressions"] == it["watches"] + it["skips"] == run_db.exposure[item_id] > 0
        assert it["watches"] + it["social_watches"] == run_db.watch_counts[item_id]
        assert sum(t["watches"] for t in d["timeseries"]) == it["watches"]
        assert sum(t["social_watches"] for t in d["timeseries"]) == it["social_watches"]
        assert sum(t["impressions"] for t in d["timeseries"]) == it["impressions"]
        assert d["watchers"]["total"] >= 1
    listed = {i["item_id"]: i for i in client.get(base, params={"sort": "impressions", "order": "desc", "limit": 500}).json()["items"]}
    assert all(i["impressions"] == run_db.exposure.get(i["item_id"], 0) for i in listed.values())
    assert client.get(base, params={"q": "Toy Story"}).json()["items"][0]["title"] == "Toy Story"
    assert client.get(base, params={"tag": "Drama", "limit": 3}).json()["total"] > 0


def test_item_cascades_equal_the_social_layers_cascades(client, run_db):
    """Each item's share trees, rebuilt from POST payloads, are the social layer's cascades (size and depth)."""
    base = f"/api/runs/{run_db.run_id}/items"
    c = client.get(f"{base}/{run_db.item_id}").json()["cascades"]
    biggest = c["cascades"][0]
    assert biggest["depth"] >= 1 and (biggest["size"], biggest["depth"]) == run_db.cascades[biggest["cascade"]]
    root = c["posts"][biggest["root"]]
    assert root["parent_post"] is None and root["post"] == biggest["cascade"]
    child = c["posts"][root["children"][0]]
    assert child["parent"] == biggest["root"] and child["parent_post"] == root["post"] and child["parent_user"] == root["user_id"]
    # Over every item with posts, the trees are exactly the layer's cascades.
    items = client.get(base, params={"sort": "item_id", "limit": 500, "offset": 0}).json()
    seen: dict[int, tuple[int, int]] = {}
    offset = 0
    while True:
        rows = client.get(base, params={"limit": 500, "offset": offset}).json()["items"]
        if not rows:
            break
        for it in rows:
            if it["posts"]:
                for cas in client.get(f"{base}/{it['item_id']}").json()["cascades"]["cascades"]:
                    seen[cas["cascade"]] = (cas["size"], cas["depth"])
        offset += 500
    assert items["total"] > 0 and seen == run_db.cascades


def test_graph_sample_and_layout(client, run_db):
    g = client.get(f"/api/runs/{run_db.run_id}/graph").json()
    assert g["total_edges"] == len(run_db.edges)  # unfollowed edges are not shown
    assert g["total_nodes"] == len({u for e in run_db.edges for u in e}) and len(g["nodes"]) == min(300, g["total_nodes"])
    live = set(run_db.edges)
    assert all(tuple(e) in live for e in g["edges"])
    assert all(0.0 <= n["x"] <= 1.0 and 0.0 <= n["y"] <= 1.0 for n in g["nodes"])
    assert g == client.get(f"/api/runs/{run_db.run_id}/graph").json()  # deterministic
    small = client.get(f"/api/runs/{run_db.run_id}/graph", params={"max_nodes": 2}).json()
    assert len(small["nodes"]) == 2
    empty = client.get(f"/api/runs/{run_db.other_run_id}/graph").json()
    assert empty["nodes"] == [] and empty["total_edges"] == 0


def test_compare_deltas(client, run_db):
    r = client.get("/api/compare", params={"runs": f"{run_db.run_id},{run_db.other_run_id}"}).json()
    assert [x["id"] for x in r["runs"]] == [run_db.run_id, run_db.other_run_id]
    d = next(x for x in r["deltas"] if x["metric"] == "watch_rate")
    assert d["deltas"][0] == 0.0
    assert d["deltas"][1] == pytest.approx(d["values"][1] - d["values"][0])
    assert len(r["ticks"][str(run_db.other_run_id)]) == 12


@pytest.mark.parametrize(
    "url",
    [
        "/api/runs/999",
        "/api/runs/999/overview",
        "/api/runs/1/users/100000",
        "/api/runs/1/items/100000",
        "/api/runs/999/graph",
        "/api/compare?runs=1,999",
        "/api/runs/999/stream",
    ],
)
def test_unknown_ids_are_404(client, url):
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/api/runs/abc", "/api/runs/0", "/api/runs?limit=0", "/api/runs?limit=501", "/api/runs?offset=-1", "/api/runs?sort=bogus",
        "/api/runs/1/users?order=sideways", "/api/runs/1/users/-1", "/api/compare?runs=a,b", "/api/compare?runs=", "/api/compare?runs=1,2,3,4,5,6,7,8,9",
        "/api/runs/99999999999999999999999", "/api/runs/1/events?user_id=1e400", "/api/runs/1/ticks?after=-2",
    ],
)  # fmt: skip
def test_bad_params_are_422(client, url):
    assert client.get(url).status_code == 422


def test_read_only(client):
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/api/runs").status_code == 405


def test_database_errors_are_503_not_500(run_db, tmp_path):
    import sqlite3

    from fastapi.testclient import TestClient

    from recworld.dashboard.app import create_app

    url = f"sqlite:///{tmp_path / 'broken.db'}"
    sqlite3.connect(tmp_path / "broken.db").execute("CREATE TABLE unrelated (x)").connection.commit()
    with TestClient(create_app(url), raise_server_exceptions=False) as c:
        r = c.get("/api/runs")
        assert r.status_code == 503 and "database" in r.json()["detail"]
        assert c.get("/runs").status_code == 503


def test_missing_database_is_a_config_error(tmp_path):
    from recworld.dashboard.app import create_app
    from recworld.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        create_app(f"sqlite:///{tmp_path / 'nope.db'}")


def test_openapi_lists_typed_routes(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for p in (
        "/api/runs",
        "/api/runs/{run_id}/overview",
        "/api/runs/{run_id}/users/{user_id}",
        "/api/runs/{run_id}/items/{item_id}",
        "/api/runs/{run_id}/graph",
        "/api/compare",
        "/api/runs/{run_id}/stream",
    ):
        assert p in paths and "get" in paths[p]
    assert all(set(ops) <= {"get"} for ops in paths.values())
    assert "RunOverview" in spec["components"]["schemas"]
    assert json.dumps(spec)  # serialisable


def test_evaluations_are_listed_and_served_with_intervals(client, eval_name):
    listed = client.get("/api/evals").json()
    summary = next(e for e in listed if e["name"] == eval_name)
    assert summary["n_policies"] == 2 and summary["n_metrics"] == 5 and summary["n_seeds"] == 3
    d = client.get(f"/api/evals/{eval_name}").json()
    assert d["policies"] == ["random", "popularity"] and "retention" in d["metrics"]
    assert len(d["rows"]) == 2 * len(d["metrics"])
    for r in d["rows"]:
        assert len(r["values"]) == 3
        assert abs(r["mean"] - sum(r["values"]) / 3) < 1e-9
        assert r["ci_low"] <= r["mean"] <= r["ci_high"]
    assert client.get("/api/evals/no-such-eval").status_code == 404


def test_a_rerun_evaluation_shows_its_latest_results(client, run_db, eval_name):
    from recworld.envs.evaluate import store_results

    store_results(
        run_db.url, "twice", [{"policy": "p", "metric": "retention", "mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n_seeds": 2, "values": [0.45, 0.55]}]
    )
    store_results(
        run_db.url, "twice", [{"policy": "p", "metric": "retention", "mean": 0.7, "ci_low": 0.6, "ci_high": 0.8, "n_seeds": 2, "values": [0.65, 0.75]}]
    )
    rows = client.get("/api/evals/twice").json()["rows"]
    assert [(r["policy"], r["mean"]) for r in rows] == [("p", 0.7)]


def test_tick_metrics_as_csv(client, run_db):
    import csv
    import io

    r = client.get(f"/api/runs/{run_db.run_id}/ticks.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    ticks = client.get(f"/api/runs/{run_db.run_id}/ticks").json()
    assert len(rows) == len(ticks) and rows[0]["tick"] == str(ticks[0]["tick"])
    assert float(rows[-1]["watch_rate"]) == pytest.approx(ticks[-1]["watch_rate"])
    assert client.get("/api/runs/9999/ticks.csv").status_code == 404


@pytest.mark.slow
def test_llm_calls_by_server_of_a_pool_run(tmp_path):
    """A real ``llm`` run over two scripted servers: the overview splits its calls by server."""
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from recworld.dashboard.app import create_app
    from recworld.llm.testing import ScriptedLLMServer
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario
    from recworld.storage import LLMCall, connect

    decision = '{"watch": [2], "ratings": [4], "feeling": "", "leave": true, "instruction": ""}'
    url = f"sqlite:///{tmp_path / 'pool.db'}"
    with ScriptedLLMServer(lambda req: decision, latency_s=0.02) as a, ScriptedLLMServer(lambda req: decision, latency_s=0.02) as b:
        llm = {"backend": "openai", "base_urls": [a.base_url, b.base_url], "model": "scripted", "cache_path": None, "concurrency": 4}
        s = load_scenario("quickstart").with_overrides(
            **{"population.n_users": 40, "ticks": 6, "brain.kind": "llm", "social.enabled": False, "llm": llm, "storage.url": url}
        )
        out = run_scenario(s, progress=False)
        answered = {a.base_url: a.answered, b.base_url: b.answered}
    with connect(url).connect() as con:
        total = con.execute(select(func.count()).where(LLMCall.run_id == out.run_id)).scalar()
    with TestClient(create_app(url)) as c:
        rows = c.get(f"/api/runs/{out.run_id}/overview").json()["llm_by_endpoint"]
        page = c.get(f"/runs/{out.run_id}").text
    assert {r["endpoint"]: r["calls"] for r in rows} == answered
    assert sum(r["calls"] for r in rows) == total and all(r["fallbacks"] == 0 for r in rows)
    assert "LLM calls by server" in page and a.base_url in page and b.base_url in page


def test_sweeps_are_listed_and_compared_with_intervals(sweep_client, sweep_db):
    from urllib.parse import quote

    from recworld.metrics import mean_ci
    from recworld.storage import connect
    from recworld.storage.queries import sweep_runs

    [listed] = sweep_client.get("/api/sweeps").json()
    assert listed["name"] == sweep_db.name and listed["n_runs"] == listed["n_completed"] == 4
    assert listed["n_recommenders"] == 2 and listed["n_seeds"] == 2 and listed["scenario"] == "quickstart"
    d = sweep_client.get(f"/api/sweeps/{quote(sweep_db.name)}").json()
    assert d["recommenders"] == ["random", "popularity"] and d["seeds"] == [0, 1] and d["status"] == {"completed": 4}
    assert {"watch_rate", "retention_d1", "churn", "gini"} <= set(d["metrics"])
    # Every cell is the mean and Student-t interval of the runs' own stored summaries.
    runs = sweep_runs(connect(sweep_db.url), sweep_db.name)
    for row in d["rows"]:
        vals = [r["summary"][row["metric"]] for r in runs if r["recommender"] == row["recommender"]]
        assert row["values"] == pytest.approx(vals) and row["n_seeds"] == 2
        assert (row["mean"], row["ci_low"], row["ci_high"]) == pytest.approx(mean_ci(vals))
    assert sweep_client.get("/api/sweeps/no-such-sweep").status_code == 404


def test_validations_api_serves_the_report_as_written(client, validation):
    listed = client.get("/api/validations").json()
    row = next(r for r in listed if r["name"] == validation.name)
    rep = validation.report
    assert row["auc"] == pytest.approx(rep["auc"]["model"]) and row["rating_rmse"] == pytest.approx(rep["ratings"]["rmse"])
    assert row["targets_measured"] == sum(t["met"] is not None for t in rep["targets"].values())
    d = client.get(f"/api/validations/{validation.name}").json()
    # The API states every field of the model (None where the report has none, e.g. the llm brain's pages).
    served = {ratio: {k: v for k, v in row.items() if v is not None} for ratio, row in d["report"]["taste_alignment"].items()}
    assert served == rep["taste_alignment"] and d["report"]["agreement"]["rows"] == rep["agreement"]["rows"]
    assert client.get("/api/validations/no-such-report").status_code == 404


def test_conversations_match_what_the_world_counted(conversation_client, conversation_run):
    from sqlalchemy import func, select

    from recworld.storage import connect
    from recworld.storage.models import Item, TickMetrics

    engine = connect(conversation_run.url, create=False)
    rid = conversation_run.run_id
    with engine.connect() as con:
        ended, successes = con.execute(
            select(func.sum(TickMetrics.conversations), func.sum(TickMetrics.conversation_successes)).where(TickMetrics.run_id == rid)
        ).one()
        titles = dict(con.execute(select(Item.item_id, Item.title).where(Item.run_id == rid)).all())
    body = conversation_client.get(f"/api/runs/{rid}/conversations", params={"limit": 500}).json()
    assert ended > 10 and successes > 0
    assert body["total"] == sum(body["outcomes"].values()) == len(body["items"])
    assert sum(n for k, n in body["outcomes"].items() if k != "open") == ended
    assert body["outcomes"]["success"] == successes
    for c in body["items"]:
        acts = [(m["role"], m["act"]) for m in c["messages"]]
        # The user opens; every agent turn is answered by the user (who may then also leave).
        assert acts[0] == ("user", "request") and all(not (a[0] == b[0] == "agent") for a, b in zip(acts, acts[1:])), str(acts)
        assert all(b[1] in ("accept", "reject", "ask_about", "leave") for a, b in zip(acts, acts[1:]) if a[1] == "recommend"), str(acts)
        for m in c["messages"]:
            for i in m["items"]:
                assert i["title"] == titles[i["item_id"]]
        if c["outcome"] == "success":
            assert c["accepted"] and c["success_turn"] is not None
        if c["intent"]["mode"] == "target":
            assert c["intent"]["target"]["title"] == titles[c["intent"]["target"]["item_id"]]

    won = conversation_client.get(f"/api/runs/{rid}/conversations", params={"outcome": "success", "limit": 3, "offset": 1}).json()
    assert won["total"] == successes and len(won["items"]) == min(3, successes - 1)
    assert {c["outcome"] for c in won["items"]} <= {"success"}
    user = body["items"][0]["user_id"]
    mine = conversation_client.get(f"/api/runs/{rid}/conversations", params={"user_id": user, "limit": 500}).json()
    assert mine["total"] == sum(c["user_id"] == user for c in body["items"]) and {c["user_id"] for c in mine["items"]} == {user}
    assert conversation_client.get(f"/api/runs/{rid}/conversations", params={"outcome": "bogus"}).status_code == 422
    assert conversation_client.get(f"/api/runs/{rid + 99}/conversations").status_code == 404


def test_conversations_of_a_run_without_the_layer_are_empty(client, run_db):
    body = client.get(f"/api/runs/{run_db.run_id}/conversations").json()
    assert body == {"total": 0, "limit": 20, "offset": 0, "items": [], "outcomes": {}}
