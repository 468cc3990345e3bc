"""The packed log: a user's pages and session events of a tick in one row, read back as exactly the events the world emitted."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from recworld.events import EventBatch, EventType, PageBlock
from recworld.storage import Event, ItemTick, UserTick, connect
from recworld.storage.db import dispose_all
from recworld.storage.pagelog import LoggedTick, expand, item_tick_rows, log_tuples, read_marks, split_batch
from recworld.storage.recorder import RunRecorder, create_run


def _world(n_users: int, **world):
    from recworld.scenarios.build import build_world
    from recworld.scenarios.schema import load_scenario

    over = {"population.source": "sampled", "population.n_users": n_users, "population.activity_mean": 6.0, "social.enabled": True, "ticks": 6}
    over.update({f"world.{k}": v for k, v in world.items()})
    return build_world(load_scenario("quickstart").with_overrides(**over))


@pytest.mark.parametrize(("impressions", "skips", "background"), [(False, True, "process"), (True, False, False), (False, False, True)])
def test_logged_events_read_back_exactly(tmp_path, impressions, skips, background):
    """Every event the world emitted, in its order, comes back from Event + UserTick rows; one UserTick row per user and tick replaces the page and session rows."""
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
    packed_types = [1, 2, 3, 4, *(int(t) for t in (EventType.SESSION_START, EventType.RETURN, EventType.LEAVE, EventType.CHURN))]
    with eng.connect() as con:
        logged = list(log_tuples(con, run_id))
        n_rows = con.execute(select(func.count()).select_from(Event).where(Event.run_id == run_id)).scalar()
        n_ut, n_pages, n_leaves = con.execute(select(func.count(), func.sum(UserTick.pages), func.sum(UserTick.leaves)).where(UserTick.run_id == run_id)).one()
        user_ticks = con.execute(select(func.count()).select_from(select(UserTick.tick, UserTick.user_id).distinct().subquery())).scalar()
        shown = con.execute(select(func.sum(ItemTick.impressions)).where(ItemTick.run_id == run_id)).scalar()
        packed_rows = con.execute(select(func.count()).select_from(Event).where(Event.type.in_(packed_types))).scalar()
    assert logged == emitted and len(emitted) > 1000
    assert {r[2] for r in emitted} >= {int(EventType.WATCH), int(EventType.RATE), int(EventType.LEAVE), int(EventType.POST)}
    assert packed_rows == 0 and 0 < n_ut == user_ticks < n_pages and n_rows > 0  # social events stay Event rows
    assert n_leaves == sum(1 for r in emitted if r[2] == int(EventType.LEAVE))
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
    n_rated = int((watched & ~np.isnan(ratings)).sum())
    n_block = 2 * b * k + n_rated  # impressions, watch/skip, ratings
    block = PageBlock(100, n_block, np.arange(b) * 7, slates, watched, frac, ratings, True, True)
    # 100 session events before the block (users 0..99; one LEAVE with a reason), then the block's events.
    ev = EventBatch.concat([EventBatch.build(9, np.arange(100), EventType.RETURN), EventBatch.build(9, np.zeros(n_block, np.int64), EventType.WATCH)])
    ev.pages.append(block)
    ev.type[3] = int(EventType.LEAVE)
    ev.payload[3] = {"reason": "bored"}
    keep, rows, _items = split_batch(1, 9, LoggedTick.of(1, 9, ev))
    assert keep.size == 0 and [r[2] for r in rows] == sorted({*range(100), *(np.arange(b) * 7).tolist()})
    got = [e for i, r in enumerate(rows) for e in expand(i, r[1], r[2], r[3], r[-1])]
    assert [e[7] for e in got if e[3] == int(EventType.LEAVE)] == ['{"reason": "bored"}']
    assert sorted(e[0] for e in got if e[3] in (int(EventType.RETURN), int(EventType.LEAVE))) == list(range(100))
    assert len({e[8] for e in got}) == len(got)  # every event its own id
    got = [e for e in got if e[0] >= 100]
    ws = sorted((e for e in got if e[3] == int(EventType.WATCH)), key=lambda e: e[0])
    assert [e[5] for e in ws] == frac[watched].tolist()
    rs = sorted((e for e in got if e[3] == int(EventType.RATE)), key=lambda e: e[0])
    assert [e[5] for e in rs] == ratings[watched & ~np.isnan(ratings)].tolist()
    assert sorted(e[0] for e in got) == list(range(100, 100 + len(got)))  # one seq per event, none shared
    items = item_tick_rows(1, 9, [block])
    assert sum(r[3] for r in items) == b * k and sum(r[4] for r in items) == int(watched.sum())
    # ItemTick marks: non-integer ratings are kept as float64 after the marks, in log order, and read back exactly.
    state, value = read_marks((r[3], r[8]) for r in items)
    users = np.frombuffer(b"".join(r[7] for r in items), "<i4")
    by_item = np.repeat([r[2] for r in items], [r[3] for r in items])
    want = {(int(slates[i, j]), int(block.users[i])): ratings[i, j] for i in range(b) for j in range(k)}
    assert [want[(int(it), int(u))] for it, u, s in zip(by_item, users, state) if s == 2] == value[state == 2].tolist()
    assert np.isnan(value[state < 2]).all() and (state > 0).sum() == watched.sum()
    assert sum(r[5] for r in items) == (state == 2).sum() == (watched & ~np.isnan(ratings)).sum()


def test_item_tick_marks_carry_integer_ratings_inline():
    """Integer ratings (what the user model gives) sit in the marks themselves (1 + rating): one byte per user shown."""
    block = PageBlock(0, 0, np.array([4, 9]), np.array([[7, 8, 9], [9, 7, 3]]), np.array([[True, True, False], [True, False, True]]),
                      np.ones((2, 3)), np.array([[5.0, np.nan, np.nan], [1.0, np.nan, 126.0]]), False, True)  # fmt: skip
    rows = {r[2]: r for r in item_tick_rows(1, 0, [block])}
    assert {i: list(r[8]) for i, r in rows.items()} == {3: [127], 7: [6, 0], 8: [1], 9: [0, 2]}
    assert {i: r[3:7] for i, r in rows.items()} == {3: (1, 1, 1, 126.0), 7: (2, 1, 1, 5.0), 8: (1, 1, 0, 0.0), 9: (2, 1, 1, 1.0)}
    state, value = read_marks((rows[i][3], rows[i][8]) for i in (7, 9))
    assert state.tolist() == [2, 0, 0, 2] and value[[0, 3]].tolist() == [5.0, 1.0]
    # 127 does not fit (1 + 127 > int8): that item's row keeps its ratings as float64, the other rows stay inline.
    block = PageBlock(0, 0, np.array([4, 9]), np.array([[7, 8], [7, 8]]), np.ones((2, 2), bool), np.ones((2, 2)),
                      np.array([[127.0, 3.0], [2.0, np.nan]]), False, True)  # fmt: skip
    rows = {r[2]: r for r in item_tick_rows(1, 0, [block])}
    assert list(rows[8][8]) == [4, 1] and rows[7][8] == bytes([2, 2]) + np.array([127.0, 2.0], "<f8").tobytes()
    assert {i: r[3:7] for i, r in rows.items()} == {7: (2, 2, 2, 129.0), 8: (2, 2, 1, 3.0)}
    state, value = read_marks((rows[i][3], rows[i][8]) for i in (7, 8))
    assert state.tolist() == [2, 2, 2, 1] and value[:3].tolist() == [127.0, 2.0, 3.0] and np.isnan(value[3])


def test_event_batch_concat_shifts_page_blocks():
    a = EventBatch.build(0, [1, 2], EventType.RETURN)
    blk = PageBlock(0, 1, np.array([1]), np.array([[5]]), np.array([[True]]), np.ones((1, 1)), np.full((1, 1), np.nan), False, True)
    b = EventBatch.build(0, [1], EventType.WATCH, [5], [1.0])
    b.pages.append(blk)
    c = EventBatch.concat([a, b])
    assert [p.start for p in c.pages] == [2] and len(c) == 3
