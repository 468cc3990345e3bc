"""Long per-tick series cut into buckets (run overview, compare, item page), on the fixture run the simulator wrote: every bucket is what its ticks say."""

from __future__ import annotations

import math

import pytest

from recworld.kpis import KPIS, TICK_KPIS


def _buckets(rows: list[dict], step: int) -> list[list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in rows:
        out.setdefault((r["tick"] - rows[0]["tick"]) // step, []).append(r)
    return [out[b] for b in sorted(out)]


def _expected(ticks: list[dict], name: str):
    """A bucket's value of a per-tick metric, computed the long way from its ticks."""
    k = KPIS[name]
    vals = [t[name] for t in ticks if t[name] is not None and math.isfinite(t[name])]
    if k.bucket == "last":
        return ticks[-1][name]
    if not vals:
        return None
    if k.bucket == "sum":
        return sum(vals)
    if k.weight is not None:
        pairs = [(t[name], t[k.weight]) for t in ticks if t[name] is not None]
        w = sum(x for _v, x in pairs)
        if w:
            return sum(v * x for v, x in pairs) / w
    return sum(vals) / len(vals)


@pytest.mark.parametrize("points", [10, 15, 29])
def test_overview_buckets_are_what_their_ticks_say(client, run_db, points):
    every = client.get(f"/api/runs/{run_db.run_id}/ticks").json()
    assert len(every) == 30
    body = client.get(f"/api/runs/{run_db.run_id}/overview", params={"points": points}).json()
    step = math.ceil(30 / points)
    assert body["tick_step"] == step and len(body["ticks"]) <= points
    groups = _buckets(every, step)
    assert len(body["ticks"]) == len(groups) > 1
    for row, ticks in zip(body["ticks"], groups):
        assert (row["tick"], row["first_tick"], row["n_ticks"]) == (ticks[-1]["tick"], ticks[0]["tick"], len(ticks))
        for name in TICK_KPIS:
            want = _expected(ticks, name)
            assert row[name] == (want if isinstance(want, int) or want is None else pytest.approx(want)), name
    # Totals over the run survive; a rate is the rate of the bucket's counts.
    for name in ("sessions", "watches", "impressions", "ratings", "churned", "posts", "llm_calls"):
        assert sum(r[name] for r in body["ticks"]) == sum(t[name] for t in every)
    first = groups[0]
    assert body["ticks"][0]["watch_rate"] == pytest.approx(sum(t["watches"] for t in first) / sum(t["impressions"] for t in first))
    assert body["last_ticks"] == every[-10:]


def test_short_run_overview_sends_every_tick_and_ticks_page(client, run_db):
    every = client.get(f"/api/runs/{run_db.run_id}/ticks").json()
    body = client.get(f"/api/runs/{run_db.run_id}/overview").json()
    assert body["tick_step"] == 1
    assert [{k: v for k, v in r.items() if k not in ("first_tick", "n_ticks")} for r in body["ticks"]] == every
    assert all(r["n_ticks"] is None for r in body["ticks"])
    # The full series in pages: after = the last tick received.
    got, after = [], -1
    while page := client.get(f"/api/runs/{run_db.run_id}/ticks", params={"after": after, "limit": 8}).json():
        assert len(page) <= 8
        got.extend(page)
        after = page[-1]["tick"]
    assert got == every


def test_compare_buckets_each_run(client, run_db):
    body = client.get("/api/compare", params={"runs": f"{run_db.run_id},{run_db.other_run_id}", "points": 10}).json()
    for rid in (run_db.run_id, run_db.other_run_id):
        every = client.get(f"/api/runs/{rid}/ticks").json()
        rows = body["ticks"][str(rid)]
        assert len(rows) <= 10 and sum(r["n_ticks"] for r in rows) == len(every)
        assert sum(r["watches"] for r in rows) == sum(t["watches"] for t in every)


def test_item_timeseries_buckets_sum_its_ticks(client, run_db):
    top = max(run_db.watch_counts, key=lambda i: (run_db.watch_counts[i], -i))
    every = client.get(f"/api/runs/{run_db.run_id}/items/{top}/timeseries").json()
    assert len(every) > 10
    full = client.get(f"/api/runs/{run_db.run_id}/items/{top}", params={"points": 1000}).json()
    assert full["timeseries_step"] == 1 and [{k: v for k, v in r.items() if k not in ("first_tick", "n_ticks")} for r in full["timeseries"]] == every
    body = client.get(f"/api/runs/{run_db.run_id}/items/{top}", params={"points": 10}).json()
    step = body["timeseries_step"]
    assert step == math.ceil((every[-1]["tick"] - every[0]["tick"] + 1) / 10) > 1 and len(body["timeseries"]) <= 10
    for row, ticks in zip(body["timeseries"], _buckets(every, step), strict=True):
        assert (row["tick"], row["first_tick"], row["n_ticks"]) == (ticks[-1]["tick"], ticks[0]["tick"], len(ticks))
        for f in ("impressions", "watches", "skips", "social_watches", "ratings", "posts"):
            assert row[f] == sum(t[f] for t in ticks), f


def test_points_out_of_range_is_a_422(client, run_db):
    for url in (f"/api/runs/{run_db.run_id}/overview", f"/runs/{run_db.run_id}", f"/api/runs/{run_db.run_id}/items/1"):
        r = client.get(url, params={"points": 2})
        assert r.status_code == 422, url


@pytest.mark.parametrize("points", [10, 15, 29])
def test_database_buckets_equal_those_made_in_memory(run_db, points):
    """The run's metrics bucketed in SQL (the overview's path) equal the same rows bucketed from columns (the item page's path)."""
    from recworld.dashboard import service
    from recworld.dashboard.series import TICK_RULES, downsample
    from recworld.storage import connect
    from recworld.storage.queries import tick_rows

    engine = connect(run_db.url, create=False)
    rows = tick_rows(engine, run_db.run_id)
    want, step = downsample([r["tick"] for r in rows], {f: [r[f] for r in rows] for f in TICK_KPIS}, TICK_RULES, points)
    got, got_step = service.tick_series(engine, run_db.run_id, points)
    assert got_step == step > 1 and len(got) == len(want)
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for k in g:
            assert g[k] == (w[k] if w[k] is None or isinstance(w[k], int) else pytest.approx(w[k])), k
