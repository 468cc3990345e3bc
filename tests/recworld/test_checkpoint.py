"""Checkpoints: a world restored from bytes continues exactly as the original."""

import numpy as np
import pytest

from recworld.errors import RecWorldError
from recworld.events import EventBatch


def test_checkpoint_roundtrip_continues_identically(make_world, collect):
    from recworld.checkpoint import dump_world, load_world

    a = make_world(n=40, recommender="linucb", seed=9)
    a.run(10)
    b = load_world(dump_world(a))
    assert _same_future(a, b, 15, collect)


def _same_future(a, b, ticks: int, collect) -> bool:
    """Whether worlds ``a`` and ``b`` log the same events over the next ``ticks`` ticks."""
    ca, cb = collect(), collect()
    a.subscribe(ca)
    b.subscribe(cb)
    a.run(ticks)
    b.run(ticks)
    return EventBatch.concat(ca.events).digest() == EventBatch.concat(cb.events).digest()


def test_corrupt_checkpoint_is_refused():
    from recworld.checkpoint import load_world

    with pytest.raises(RecWorldError, match="not a RecWorld checkpoint"):
        load_world(b"garbage")
    with pytest.raises(RecWorldError, match="corrupt"):
        load_world(b"RWCK1" + b"\x00" * 20)
    with pytest.raises(RecWorldError, match="corrupt"):
        load_world(b"RWCK2" + b"\x00" * 20)


def test_checkpoints_of_the_zlib_format_still_load(make_world, collect):
    """Databases written before LZ4 hold zlib checkpoints (header RWCK1, the pickle at zlib level 1): they resume the same."""
    import pickle
    import zlib

    from recworld.checkpoint import MAGIC, MAGIC_ZLIB, dump_world, load_world

    a = make_world(n=30, seed=4)
    a.run(5)
    assert dump_world(a).startswith(MAGIC)
    old = MAGIC_ZLIB + zlib.compress(pickle.dumps(a, protocol=pickle.HIGHEST_PROTOCOL), 1)
    assert _same_future(load_world(old), load_world(dump_world(a)), 5, collect)


def test_checkpoints_with_arrays_by_persistent_id_still_load(make_world, collect, small_arrays):
    """Checkpoints written before RWCK4 (header RWCK3) referred to their arrays by persistent id: they resume the same,
    complete or incremental."""
    import io
    import pickle

    import recworld.checkpoint as C

    class OldPickler(pickle.Pickler):  # the RWCK3 writer: every large array as the persistent id (_PID, key)
        def __init__(self, file, place):
            super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
            self._place, self._keys = place, {}

        def persistent_id(self, obj):
            if not C._large(obj):
                return None
            if id(obj) not in self._keys:
                self._keys[id(obj)] = self._place(obj)
            return (C._PID, self._keys[id(obj)])

    def old_dumps(world, place):
        buf = io.BytesIO()
        OldPickler(buf, place).dump(world)
        return buf.getvalue()

    def old_format(blob):
        return C.MAGIC_PERSISTENT_ID + blob[len(C.MAGIC) :]

    a = make_world(n=60, seed=8)
    a.run(3)
    new_full = C.dump_world(a)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(C, "_dumps", old_dumps)
        ck = C.Checkpointer(delta_share=1.0)
        full = old_format(ck(a))
        a.run(1)
        inc, _ = ck(a)
        inc = old_format(inc)
    assert C._unpack(full).world != C._unpack(new_full).world  # really the other pickle
    assert _same_future(C.load_world(inc, full), C.load_world(C.dump_world(a)), 5, collect)


def test_an_array_met_twice_loads_as_one_array(small_arrays):
    from recworld.checkpoint import dump_world, load_world

    shared = np.arange(1000.0)
    b = load_world(dump_world({"x": shared, "y": [shared], "z": shared[:10].copy()}))  # type: ignore[arg-type]
    assert b["x"] is b["y"][0] and np.array_equal(b["x"], shared) and np.array_equal(b["z"], shared[:10])
    b["x"][0] = -1.0
    assert b["y"][0][0] == -1.0


def test_an_array_that_grew_is_stored_as_its_new_and_changed_rows(small_arrays):
    """The catalog's arrays are replaced by longer ones when items are added: the incremental checkpoint holds the
    new rows and the changed old ones, and loads exactly; an array whose rows changed shape, or all of whose rows
    changed, is stored whole."""
    from types import SimpleNamespace

    from recworld.checkpoint import Checkpointer, _Grown, _unpack, load_world

    rng = np.random.default_rng(1)
    state = SimpleNamespace(tick=5, items=rng.normal(size=(400, 8)).astype(np.float32), other=np.arange(300), wide=np.zeros((50, 4)))
    ck = Checkpointer(delta_share=0.5)
    full = ck(state)
    grown = np.concatenate([state.items, rng.normal(size=(7, 8)).astype(np.float32)])
    grown[[3, 99]] += 1
    state.items, state.wide, state.tick = grown, np.ones((50, 5)), 6
    state.other += 1  # every row changed, in place: whole is fewer bytes than rows and their indices
    inc, base_tick = ck(state)
    assert base_tick == 4
    stored = list(_unpack(inc).arrays.values())
    kinds = {type(c).__name__: c for c in stored}
    assert set(kinds) == {"_Grown", "ndarray"} and isinstance(kinds["_Grown"], _Grown)
    assert sorted(c.shape for c in stored if isinstance(c, np.ndarray)) == [(50, 5), (300,)]
    assert kinds["_Grown"].index.tolist() == [3, 99] and kinds["_Grown"].tail.shape == (7, 8)
    back = load_world(inc, full)
    assert np.array_equal(back.items, state.items) and np.array_equal(back.other, state.other) and np.array_equal(back.wide, state.wide)


def test_a_world_without_large_arrays_gets_complete_checkpoints(make_world, monkeypatch):
    """Without large arrays an incremental checkpoint would hold the same bytes as a complete one: none is made and no copy kept."""
    import recworld.checkpoint as C

    monkeypatch.setattr(C, "LARGE_ARRAY_BYTES", 1 << 40)
    a = make_world(n=30, seed=3)
    a.run(2)
    ck = C.Checkpointer(delta_share=1.0)
    for _ in range(3):
        assert isinstance(ck(a), bytes)
        a.run(1)
    assert ck._base == {} and ck._base_tick is None


def test_user_agents_are_packed_and_made_again_on_load(make_world):
    """The checkpoint keeps the user agents' shared persona table, not a million agent objects; on load they are
    mesa agents of the restored world again, with the same ids; an agent with an attribute set from outside is kept as it is."""
    from recworld.checkpoint import dump_world, load_world
    from recworld.world import PackedAgents

    a = make_world(n=25, seed=3)
    a.run(3)
    assert isinstance(a.__getstate__()["user_agents"], PackedAgents)
    b = load_world(dump_world(a))
    assert len(b.agents) == 25 and [u.unique_id for u in b.user_agents] == list(range(1, 26))
    assert all(u.model is b and u.index == i for i, u in enumerate(b.user_agents))
    assert [u.persona for u in b.user_agents] == [u.persona for u in a.user_agents]

    a.user_agents[7].note = "set from outside"
    assert not isinstance(a.__getstate__()["user_agents"], PackedAgents)
    c = load_world(dump_world(a))
    assert c.user_agents[7].note == "set from outside" and len(c.agents) == 25


@pytest.fixture
def small_arrays(monkeypatch):
    """Keep arrays of 256+ bytes apart, so that a small test world has the large arrays a big one has (the seen bits, the users' state)."""
    import recworld.checkpoint as C

    monkeypatch.setattr(C, "LARGE_ARRAY_BYTES", 256)


def test_incremental_checkpoint_holds_the_changed_rows_and_continues_identically(make_world, collect, small_arrays):
    """After a complete checkpoint the next ones carry only the rows changed since (a few users were active), name their
    complete one, and loaded with it continue as the original world does."""
    from recworld.checkpoint import Checkpointer, _Rows, _unpack, load_world

    a = make_world(n=200, recommender="linucb", seed=5)
    a.run(3)
    ck = Checkpointer(delta_share=0.9)
    full = ck(a)
    assert isinstance(full, bytes)  # the first one is complete, stored under the tick that just ended
    a.run(1)
    inc, base_tick = ck(a)
    assert base_tick == 2 and len(inc) < len(full) / 2
    stored = _unpack(inc)
    seen_rows = [c for c in stored.arrays.values() if isinstance(c, _Rows) and c.values.dtype == np.uint8]
    assert seen_rows and 0 < seen_rows[0].index.size < a.n_users  # only the rows of users shown something since
    assert _same_future(a, load_world(inc, full), 8, collect)


def test_incremental_checkpoint_needs_its_own_complete_one(make_world, small_arrays):
    from recworld.checkpoint import Checkpointer, load_world

    a = make_world(n=50, seed=2)
    a.run(2)
    ck = Checkpointer(delta_share=0.9)
    ck(a)
    a.run(1)
    inc, _ = ck(a)
    with pytest.raises(RecWorldError, match="incremental: loading it needs the run's complete checkpoint of tick 1"):
        load_world(inc)
    other = Checkpointer(delta_share=0.9)(a)  # complete, of the same world, but not the one `inc` applies to
    with pytest.raises(RecWorldError, match="not the complete checkpoint of tick 1"):
        load_world(inc, other)
    with pytest.raises(RecWorldError, match="not the complete checkpoint"):
        load_world(inc, inc)


def test_checkpoint_is_complete_again_when_the_changes_outgrow_its_share(make_world, small_arrays):
    """Past ``delta_share`` of the complete checkpoint the next one is complete (and the base of those after it); 0 keeps none."""
    from recworld.checkpoint import Checkpointer

    a = make_world(n=80, seed=1)
    a.run(2)
    tight = Checkpointer(delta_share=0.001)
    assert isinstance(tight(a), bytes)
    a.run(1)
    assert isinstance(tight(a), bytes)  # even the world's pickle without its arrays is over 0.1% of a complete one
    off = Checkpointer(delta_share=0.0)
    assert isinstance(off(a), bytes) and isinstance(off(a), bytes) and off._base == {}
    with pytest.raises(ValueError, match="delta_share"):
        Checkpointer(delta_share=1.5)


def test_an_array_replaced_since_the_complete_checkpoint_is_stored_whole(make_world, collect, small_arrays):
    """The seen matrix widened (a new array, not written in place) after the complete checkpoint: the incremental one carries it whole."""
    from recworld.checkpoint import Checkpointer, load_world

    a = make_world(n=60, seed=6)
    a.run(2)
    ck = Checkpointer(delta_share=1.0)
    full = ck(a)
    a.seen.grow(a.seen.capacity + 64)
    a.run(1)
    inc, _ = ck(a)
    b = load_world(inc, full)
    assert b.seen.shape == a.seen.shape and np.array_equal(b.seen.bits, a.seen.bits)
    assert _same_future(a, b, 4, collect)


def test_changed_rows_compares_bytes_row_by_row():
    from recworld.checkpoint import changed_rows

    rng = np.random.default_rng(0)
    for shape, dtype in (((1000, 3), np.float32), ((70000, 2, 4), np.float64), ((5000,), np.int64), ((300, 13), np.uint8), ((3_000_000, 12), np.uint8)):
        before = rng.normal(size=shape).astype(dtype)
        now = before.copy()
        rows = np.sort(rng.choice(shape[0], 17, replace=False))
        now[rows] += 1
        assert changed_rows(now, before).tolist() == rows.tolist()
    nan = np.full((10, 4), np.nan)
    assert changed_rows(nan.copy(), nan).size == 0  # NaN rows are unchanged (bytes, not ==)
    assert changed_rows(np.zeros((0, 3)), np.zeros((0, 3))).size == 0
