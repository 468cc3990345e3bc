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
    from sqlalchemy import select

    from recworld.checkpoint import load_world
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario
    from recworld.storage import Checkpoint

    url = f"sqlite:///{tmp_path / 'imp.db'}"
    s = load_scenario("quickstart").with_overrides(
        **{"population.n_users": 40, "ticks": 6, "social.enabled": False, "world.log_skips": log_skips, "world.log_impressions": log_impressions}
    )
    out = run_scenario(s, db_url=url, progress=False)
    engine = connect(url, create=False)
    with engine.connect() as con:
        world = load_world(
            bytes(con.execute(select(Checkpoint.state).where(Checkpoint.run_id == out.run_id).order_by(Checkpoint.tick.desc())).scalars().first())
        )
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
