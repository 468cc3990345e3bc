"""The page log: pages packed one row each read back as exactly the events the world emitted."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from recworld.events import EventBatch, EventType, PageBlock
from recworld.storage import Event, ItemTick, Page, connect
from recworld.storage.db import dispose_all
from recworld.storage.pagelog import expand, item_tick_rows, log_tuples, page_rows
from recworld.storage.recorder import RunRecorder, create_run


def _world(n_users: int, **world):
    from recworld.scenarios.build import build_world
    from recworld.scenarios.schema import load_scenario

    over = {"population.source": "sampled", "population.n_users": n_users, "population.activity_mean": 6.0, "social.enabled": True, "ticks": 6}
    over.update({f"world.{k}": v for k, v in world.items()})
    return build_world(load_scenario("quickstart").with_overrides(**over))


@pytest.mark.parametrize(("impressions", "skips", "background"), [(False, True, "process"), (True, False, False), (False, False, True)])
def test_logged_events_read_back_exactly(tmp_path, impressions, skips, background):
    """Every event the world emitted, in its order, comes back from Event + Page rows; Page rows replace the per-item rows."""
    world = _world(150, log_impressions=impressions, log_skips=skips)
    eng = connect(f"sqlite:///{tmp_path / 'r.db'}")
    run_id = create_run(eng, "t")
    emitted: list[tuple] = []

    class Collect:
        def on_tick(self, w, ev, m):
            emitted.extend(ev.rows())

    world.subscribe(Collect())
    rec = RunRecorder(eng, run_id, flush_every=2, background=background)
    world.subscribe(rec)
    world.run(6)
    rec.flush(world)
    rec.close()
    with eng.connect() as con:
        logged = list(log_tuples(con, run_id))
        n_rows = con.execute(select(func.count()).select_from(Event).where(Event.run_id == run_id)).scalar()
        n_pages = con.execute(select(func.count()).select_from(Page).where(Page.run_id == run_id)).scalar()
        shown = con.execute(select(func.sum(ItemTick.impressions)).where(ItemTick.run_id == run_id)).scalar()
        page_types = con.execute(select(func.count()).select_from(Event).where(Event.type.in_([1, 2, 3, 4]))).scalar()
    assert logged == emitted and len(emitted) > 1000
    assert {r[2] for r in emitted} >= {int(EventType.WATCH), int(EventType.RATE), int(EventType.LEAVE)}
    assert page_types == 0 and n_pages > 0 and n_rows < len(emitted)
    assert shown == n_pages * world.config.slate_size
    assert rec.pages_written == n_pages
    dispose_all()


def test_codec_keeps_fractional_shares_and_ratings():
    """A synthetic block (the codec alone): shares other than 1.0 and non-integer ratings survive bit for bit."""
    rng = np.random.default_rng(3)
    b, k = 5, 12
    slates = rng.choice(3000, size=(b, k), replace=False).reshape(b, k).astype(np.int64)
    watched = rng.random((b, k)) < 0.5
    frac = np.where(watched, rng.random((b, k)), 0.0)
    ratings = np.where(watched & (rng.random((b, k)) < 0.6), rng.random((b, k)) * 4 + 1, np.nan)
    block = PageBlock(0, 0, np.arange(b) * 7, slates, watched, frac, ratings, True, True)
    rows = page_rows(1, 9, block, 100)
    got = [e for i, r in enumerate(rows) for e in expand(i, *r[1:])]
    ws = sorted((e for e in got if e[3] == int(EventType.WATCH)), key=lambda e: e[0])
    assert [e[5] for e in ws] == frac[watched].tolist()
    rs = sorted((e for e in got if e[3] == int(EventType.RATE)), key=lambda e: e[0])
    assert [e[5] for e in rs] == ratings[watched & ~np.isnan(ratings)].tolist()
    assert sorted(e[0] for e in got) == list(range(100, 100 + len(got)))  # one seq per event, none shared
    items = item_tick_rows(1, 9, [block])
    assert sum(r[3] for r in items) == b * k and sum(r[4] for r in items) == int(watched.sum())


def test_event_batch_concat_shifts_page_blocks():
    a = EventBatch.build(0, [1, 2], EventType.RETURN)
    blk = PageBlock(0, 1, np.array([1]), np.array([[5]]), np.array([[True]]), np.ones((1, 1)), np.full((1, 1), np.nan), False, True)
    b = EventBatch.build(0, [1], EventType.WATCH, [5], [1.0])
    b.pages.append(blk)
    c = EventBatch.concat([a, b])
    assert [p.start for p in c.pages] == [2] and len(c) == 3
