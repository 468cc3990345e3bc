"""One KPI registry: the per-tick record, the TickMetrics columns, the run summary and every reader name the same metrics."""

from __future__ import annotations

import dataclasses

import pytest

from recworld.kpis import CLI_COMPARE, COMPARE, KPIS, LLM_TICK_KPIS, RECORD_FIELDS, RUN_KPIS, TICK_KPIS, TILES, TickRecord, format_value
from recworld.storage.models import TickMetrics


def test_tick_metrics_columns_are_the_registrys_per_tick_kpis():
    cols = [c.name for c in TickMetrics.__table__.columns if c.name not in ("id", "run_id", "tick", "extra_json")]
    assert cols == list(TICK_KPIS) == [*RECORD_FIELDS, *LLM_TICK_KPIS]
    for name in TICK_KPIS:
        col = TickMetrics.__table__.columns[name]
        assert col.nullable or not KPIS[name].optional, name  # a metric that may be None has a nullable column
        assert (col.type.python_type is int) == KPIS[name].integer, name


def test_world_fills_the_record_and_the_recorder_stores_it(small_scenario):
    from sqlalchemy import select

    from recworld.scenarios.runner import run_scenario
    from recworld.storage import connect

    s = small_scenario(**{"ticks": 4, "population.n_users": 30})
    out = run_scenario(s, progress=False)
    eng = connect(s.storage.url, create=False)
    with eng.connect() as con:
        rows = [dict(r._mapping) for r in con.execute(select(TickMetrics).where(TickMetrics.run_id == out.run_id).order_by(TickMetrics.tick))]
    assert len(rows) == 4 and all(r["extra_json"] == "{}" for r in rows)  # nothing routed aside: every metric has a column
    assert sum(r["watches"] for r in rows) / sum(r["impressions"] for r in rows) == pytest.approx(out.summary["watch_rate"])


def test_run_summary_keys_are_registered(small_scenario):
    from recworld.scenarios.runner import run_scenario

    # A checkpoint a day, not every tick (four fifths of the run's time would go to checkpoints).
    s = small_scenario(**{"ticks": 8 * 24, "population.n_users": 20, "social.enabled": False, "storage.checkpoint_every": 24})
    out = run_scenario(s, progress=False)
    assert set(out.summary) == set(RUN_KPIS)  # eight days: retention on days 1, 3 and 7 too
    assert set(CLI_COMPARE) | set(COMPARE) | set(TILES) <= set(KPIS)


def test_record_is_typed_and_frozen(make_world):
    w = make_world(n=20)
    w.run(2)
    m = w.last_metrics
    assert isinstance(m, TickRecord) and m.tick == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.watches = 0
    d = m.as_dict()
    assert list(d) == ["tick", *RECORD_FIELDS] and d["watch_rate"] == m.watch_rate


def test_formats():
    assert KPIS["watch_rate"].format(0.2834) == "28.3%"
    assert KPIS["sessions"].format(12345) == "12,345"
    assert format_value(None) == format_value(float("nan")) == "–"
    assert KPIS["mean_rating"].format(3.456) == "3.46"
