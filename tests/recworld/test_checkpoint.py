"""Checkpoints: a world restored from bytes continues exactly as the original."""

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
