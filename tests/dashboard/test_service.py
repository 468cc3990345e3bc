"""The dashboard's service layer on runs the simulator wrote (recworld/dashboard/service.py)."""

from __future__ import annotations

from recworld.dashboard import queries as Q
from recworld.dashboard import service as S
from recworld.storage import connect


def test_cohort_table_is_cut_to_the_first_periods_and_the_curve_is_not(run_db):
    """A long run's cohort table (periods squared) is sent for its first cohorts and periods only, flagged; the curve keeps every period."""
    engine = connect(run_db.url, create=False)
    run = Q.run_row(engine, run_db.other_run_id)  # still live: retention from its session events
    run = {**run, "config": {**run.get("config", {}), "world": {"period_ticks": 2}}}  # 12 ticks: six periods
    full = S.retention_out(engine, run)
    cut = S.retention_out(engine, run, max_periods=3)
    assert not full["cohorts_truncated"] and len({c["cohort"] for c in full["cohorts"]}) > 3
    assert cut["cohorts_truncated"] and cut["curve"] == full["curve"] and max(full["curve"]) >= 3
    first = min(c["cohort"] for c in full["cohorts"])
    assert cut["cohorts"] == [c for c in full["cohorts"] if c["cohort"] - first < 3 and c["k"] < 3]
