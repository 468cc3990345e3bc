"""The dashboard's read queries on runs the simulator wrote (recworld/dashboard/queries.py)."""

from __future__ import annotations

import pytest

from recworld.dashboard import queries as Q
from recworld.storage import connect


def test_live_retention_equals_stored(run_db, tmp_path):
    """While a run goes on (no RetentionPoint rows yet) retention comes from session events; it must agree."""
    from recworld.dashboard import queries as Q
    from recworld.storage import connect

    engine = connect(run_db.url, create=False)
    run = Q.run_row(engine, run_db.run_id)
    stored = Q.retention(engine, run)
    assert stored["source"] == "stored" and stored["rows"]
    assert Q.live_retention_rows(engine, run_db.run_id, 24, run["tick_done"]) == stored["rows"]
    # with 12-tick periods, 30 ticks hold two complete periods: cohorts 0 and 1
    assert {c for c, *_ in Q.live_retention_rows(engine, run_db.run_id, 12, run["tick_done"])} <= {0, 1}
    # 12 ticks: no complete day yet, nothing stored, nothing live
    short = Q.run_row(engine, run_db.other_run_id)
    assert Q.retention(engine, short) == {"source": "live", "period_ticks": 24, "rows": [], "curve": {}}


@pytest.mark.parametrize(
    ("log_skips", "log_impressions", "source"),
    [(True, False, "skips"), (False, True, "impressions"), (False, False, None), (True, True, "skips")],
)
def test_impressions_follow_what_the_run_logged(tmp_path, log_skips, log_impressions, source):
    """Impressions = watches + skips when skips are logged, IMPRESSION events when only those are, unknown when neither."""
    import numpy as np

    from recworld.checkpoint import load_world
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario
    from recworld.storage.queries import last_checkpoint

    url = f"sqlite:///{tmp_path / 'imp.db'}"
    s = load_scenario("quickstart").with_overrides(
        **{"population.n_users": 40, "ticks": 6, "social.enabled": False, "world.log_skips": log_skips, "world.log_impressions": log_impressions}
    )
    out = run_scenario(s, db_url=url, progress=False)
    engine = connect(url, create=False)
    ck = last_checkpoint(engine, out.run_id)
    world = load_world(ck.state, ck.base)
    stats = Q.item_stats(engine, out.run_id)
    shown = np.flatnonzero(world.exposure[: len(world.catalog)])
    assert shown.size > 50
    for i in shown.tolist():
        c = stats.get(i) or Q.item_counts_of({}, Q.run_logging(engine, out.run_id))  # items with no logged event (neither logged)
        assert c["watches"] == world.watch_counts[i]
        if source is None:
            assert c["impressions"] is None and c["skips"] is None
        else:
            assert c["impressions"] == world.exposure[i] and c["skips"] == c["impressions"] - c["watches"]
    some = [i for i in shown.tolist() if i in stats][:5]
    assert some and Q.item_counts(engine, out.run_id, some) == {i: stats[i] for i in some}


def test_overview_summaries_equal_a_full_scan_of_the_log(run_db):
    """The run overview's cascades and leave reasons, summed from per-tick summaries, are what a scan of every POST and LEAVE row gives."""
    from tests_support import scan_cascades_and_leaves

    engine = connect(run_db.url, create=False)
    for run_id in (run_db.run_id, run_db.other_run_id):
        cascades, leave = scan_cascades_and_leaves(engine, run_id)
        assert Q.cascade_summary(engine, run_id) == cascades
        assert Q.leave_reasons(engine, run_id) == leave
    cascades, leave = scan_cascades_and_leaves(engine, run_db.run_id)
    # Not vacuous: the social run has reshare cascades and sessions that ended for several reasons.
    assert cascades["max_depth"] >= 1 and cascades["share_spreading"] > 0 and len(leave) >= 2 and sum(leave.values()) > 0


def _user_log(engine, run_id, user_id, types=None):
    from recworld.storage import pagelog

    with engine.connect() as con:
        return pagelog.user_log(con, run_id, user_id, types=types)


@pytest.mark.parametrize("types", [None, {4}, {5, 11}, {2, 3}, {11}])
def test_user_events_pages_are_slices_of_the_users_whole_log(run_db, types):
    """A page of a user's events (read tick by tick) is the same slice of the user's whole expanded log, at any offset, in both orders."""
    engine = connect(run_db.url, create=False)
    uid = run_db.user_id
    whole = _user_log(engine, run_db.run_id, uid, types)
    assert whole
    for descending in (False, True):
        rows = whole[::-1] if descending else whole
        for offset, limit in ((0, 5), (3, 7), (len(rows) // 2, 50), (len(rows) - 2, 10), (len(rows), 5), (len(rows) + 9, 5)):
            total, got = Q.events(engine, run_db.run_id, user_id=uid, types=types, limit=limit, offset=offset, descending=descending)
            assert total == len(rows)
            assert [(e["id"], e["tick"], e["type"], e["item_id"], e["value"]) for e in got] == [
                (r[8], r[1], r[3], r[4], r[5]) for r in rows[offset : offset + limit]
            ]
    total, got = Q.events(engine, run_db.run_id, user_id=uid, types=types, tick_min=10, tick_max=20, limit=500)
    assert [e["id"] for e in got] == [r[8] for r in whole if 10 <= r[1] <= 20] and total == len(got)


def test_item_watchers_equal_the_items_watches_in_the_log(run_db):
    """Watchers of an item (page watches from ItemTick, social watches, first tick, mean rating) are what the expanded log says."""
    from tests_support import log_rows

    from recworld.events import EventType

    engine = connect(run_db.url, create=False)
    log = log_rows(engine, run_db.run_id)
    top = max(run_db.watch_counts, key=lambda i: (run_db.watch_counts[i], -i))
    for item in (top, run_db.item_id):
        want: dict[int, list] = {}  # user -> [watches, social watches, first tick, ratings]
        for tick, user, typ, it, value, _text, _payload in log:
            if it != item:
                continue
            if typ in (int(EventType.WATCH), int(EventType.SOCIAL_WATCH)):
                w = want.setdefault(user, [0, 0, tick, []])
                w[0] += 1
                w[1] += typ == int(EventType.SOCIAL_WATCH)
                w[2] = min(w[2], tick)
            elif typ == int(EventType.RATE):
                want[user][3].append(value)
        order = sorted(want, key=lambda u: (want[u][2], u))
        total, rows = Q.item_watchers(engine, run_db.run_id, item, limit=len(order) + 5)
        assert total == len(want) >= 1
        assert [r["user_id"] for r in rows] == order
        for r in rows:
            w, sw, first, rs = want[r["user_id"]]
            assert (r["watches"], r["social_watches"], r["first_tick"]) == (w, sw, first)
            assert r["rating"] == (pytest.approx(sum(rs) / len(rs)) if rs else None)
        _, page = Q.item_watchers(engine, run_db.run_id, item, limit=3, offset=1)
        assert page == rows[1:4]
    assert any(r["rating"] is not None for r in Q.item_watchers(engine, run_db.run_id, top, limit=500)[1])


def test_item_timeseries_equals_the_items_events_per_tick(run_db):
    """An item's per-tick counts are those of its events in the expanded log (skips logged: impressions = watches + skips)."""
    from collections import Counter

    from tests_support import log_rows

    from recworld.events import EventType

    engine = connect(run_db.url, create=False)
    log = log_rows(engine, run_db.run_id)
    top = max(run_db.watch_counts, key=lambda i: (run_db.watch_counts[i], -i))
    for item in (top, run_db.item_id):
        per = Counter((tick, typ) for tick, _u, typ, it, *_ in log if it == item)
        ticks = sorted({t for t, _ in per})
        want = []
        for t in ticks:
            w, sk = per[(t, int(EventType.WATCH))], per[(t, int(EventType.SKIP))]
            want.append(
                {
                    "tick": t,
                    "ratings": per[(t, int(EventType.RATE))],
                    "impressions": w + sk,
                    "watches": w,
                    "skips": sk,
                    "social_watches": per[(t, int(EventType.SOCIAL_WATCH))],
                    "posts": per[(t, int(EventType.POST))],
                }
            )
        got = Q.item_timeseries(engine, run_db.run_id, item)
        assert got == want and len(got) > 1
