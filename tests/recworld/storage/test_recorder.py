import os
import threading

import pytest
from sqlalchemy import func, select
from tests_support import log_rows

from recworld.errors import RecWorldError
from recworld.events import EventBatch, EventType
from recworld.storage import Event, TickMetrics, connect
from recworld.storage.db import dispose_all
from recworld.storage.queries import run_summary
from recworld.storage.recorder import RunRecorder, create_run, set_status


def test_recorder_writes_every_event_and_metric(tmp_path, make_world):
    eng = connect(f"sqlite:///{tmp_path / 'r.db'}")
    world = make_world(n=50)
    run_id = create_run(eng, "t", recommender="popularity", seed=0, ticks_total=20)
    rec = RunRecorder(eng, run_id, flush_every=3)
    rec.write_world(world)
    seen = []

    class Count:
        def on_tick(self, w, ev, m):
            seen.append(len(ev))

    world.subscribe(Count())
    world.subscribe(rec)
    world.run(20)
    rec.flush(world)
    rec.write_retention(world)
    set_status(eng, run_id, "completed")
    with eng.connect() as con:
        n_ticks = con.execute(select(func.count()).select_from(TickMetrics).where(TickMetrics.run_id == run_id)).scalar()
        tm_watches = con.execute(select(func.sum(TickMetrics.watches)).where(TickMetrics.run_id == run_id)).scalar()
    log = log_rows(eng, run_id)
    n_events = len(log)
    watches = sum(r[2] == int(EventType.WATCH) for r in log)
    assert n_events == sum(seen) > 0
    assert n_ticks == 20
    assert watches == tm_watches
    s = run_summary(eng, run_id)
    assert s["users"] == 50 and s["ticks"] == 20 and 0 < s["watch_rate"] < 1
    dispose_all()


def test_text_and_payload_survive(tmp_path):
    eng = connect(f"sqlite:///{tmp_path / 'r.db'}")
    run_id = create_run(eng, "t")
    rec = RunRecorder(eng, run_id)
    rec.add_events(0, EventBatch.build(0, [1], EventType.POST, [3], texts=["loved it"], payloads=[{"parent": 2}]))
    rec.flush()
    with eng.connect() as con:
        row = con.execute(select(Event.text, Event.payload, Event.item_id)).one()
    assert row == ("loved it", '{"parent": 2}', 3)
    dispose_all()


def test_rollback_leaves_what_a_shorter_run_wrote(tmp_path):
    """A 16-tick run rolled back to tick 7 holds exactly what the same scenario run for 8 ticks wrote."""
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario
    from recworld.storage import Checkpoint, Edge, Item, LLMCall, MemoryRecord, Run, TickSummary, UserSnapshot, rollback

    social = {"enabled": True, "degree": 4, "post_rate": 0.5, "item_post_rate": 0.5, "follow_rate": 0.3, "unfollow_rate": 0.3}
    base = load_scenario("quickstart").with_overrides(**{"population.n_users": 60, "social": social, "storage.snapshot_every": 4})

    def tables(url: str, run_id: int) -> dict:
        eng = connect(url, create=False)
        out = {}
        with eng.connect() as con:
            for model in (Event, TickMetrics, TickSummary, UserSnapshot, LLMCall, MemoryRecord, Edge, Item):
                cols = [c for c in model.__table__.columns if c.name not in ("id", "run_id")]
                out[model.__tablename__] = sorted(
                    (tuple(r) for r in con.execute(select(*cols).where(model.run_id == run_id))), key=lambda r: tuple((x is None, x) for x in r)
                )
            out["tick_done"] = con.execute(select(Run.tick_done).where(Run.id == run_id)).scalar()
        return out

    short_url, long_url = f"sqlite:///{tmp_path / 'short.db'}", f"sqlite:///{tmp_path / 'long.db'}"
    short = run_scenario(base.with_overrides(ticks=8), db_url=short_url, progress=False)
    long = run_scenario(base.with_overrides(ticks=16), db_url=long_url, progress=False)
    before = tables(long_url, long.run_id)
    rollback(connect(long_url, create=False), long.run_id, 7)
    after, want = tables(long_url, long.run_id), tables(short_url, short.run_id)
    assert after == want
    # The long run had things to roll back: later events, new and removed edges, user-made items.
    assert len(before["event"]) > len(want["event"]) and before["edge"] != want["edge"] and len(before["item"]) > len(want["item"])
    assert len(before["ticksummary"]) > len(want["ticksummary"]) > 0
    assert any(r[-1] is not None for r in want["edge"])  # unfollows before tick 7 stay removed
    with connect(long_url, create=False).connect() as con:
        assert con.execute(select(func.count()).select_from(Checkpoint).where(Checkpoint.run_id == long.run_id, Checkpoint.tick > 7)).scalar() == 0


def test_writer_process_writes_what_a_thread_writes_and_stops(tmp_path, make_world):
    """The writer process (the default of `recworld run`) logs the same rows as the world's own thread, counts them, and exits on close."""
    logs, counts = [], []
    for mode in (False, "process"):
        eng = connect(f"sqlite:///{tmp_path / f'{mode}.db'}")
        world = make_world(n=60)
        run_id = create_run(eng, "t")
        rec = RunRecorder(eng, run_id, flush_every=2, background=mode)
        world.subscribe(rec)
        world.run(7)
        rec.flush(world)
        if mode == "process":
            proc = rec._proc._p
            assert proc.pid != os.getpid() and proc.is_alive()
        rec.close()
        if mode == "process":
            assert not proc.is_alive()
        logs.append(log_rows(eng, run_id))
        counts.append((rec.events_written, rec.pages_written))
    assert logs[0] == logs[1] and len(logs[0]) > 100
    assert counts[0] == counts[1] and counts[0][1] > 0
    dispose_all()


def test_writer_process_error_is_reported_and_in_memory_falls_back_to_a_thread(tmp_path):
    eng = connect(f"sqlite:///{tmp_path / 'r.db'}")
    run_id = create_run(eng, "t")
    rec = RunRecorder(eng, run_id, background="process")
    rec.add_events(0, EventBatch.build(0, [1], EventType.POST, [3], texts=["x"]))
    rec.flush()  # the writer is up and has written
    with eng.begin() as con:  # the database loses its event table under the writer
        con.exec_driver_sql("DROP TABLE event")
    rec.add_events(0, EventBatch.build(0, [1], EventType.POST, [3], texts=["x"]))
    with pytest.raises(RecWorldError, match="the event log writer failed: OperationalError: .*no such table: event"):
        rec.flush()
    rec.close()  # never raises; the process is gone
    assert not rec._proc
    mem = RunRecorder(connect("sqlite://"), 1, background="process")
    assert mem._proc is None and mem._queue is not None
    mem.close()
    dispose_all()


def test_writer_process_from_a_script_without_a_main_guard(tmp_path):
    """A user's script that logs with a writer process at top level runs once (the writer never re-runs the script)."""
    import subprocess
    import sys

    script = tmp_path / "log_it.py"
    script.write_text(
        "from recworld.events import EventBatch, EventType\n"
        "from recworld.storage import connect\n"
        "from recworld.storage.recorder import RunRecorder, create_run\n"
        f"eng = connect('sqlite:///{tmp_path / 's.db'}')\n"
        "rec = RunRecorder(eng, create_run(eng, 't'), background='process')\n"
        "rec.add_events(0, EventBatch.build(0, [1], EventType.POST, [3], texts=['hi']))\n"
        "rec.flush()\n"
        "rec.close()\n"
        "print('ran')\n"
    )
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["ran"]
    eng = connect(f"sqlite:///{tmp_path / 's.db'}")
    with eng.connect() as con:
        assert con.execute(select(Event.text)).scalars().all() == ["hi"]
    dispose_all()


def test_auto_writer_is_a_process_for_large_worlds_on_two_cores(monkeypatch):
    """``storage.writer: auto`` takes a writer process only where it pays: 2,000+ users and 2+ cores; with one core the
    world writes its own log (inline); an explicit choice stands."""
    import os

    from recworld.storage.recorder import PROCESS_WRITER_USERS, choose_writer

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert choose_writer("auto", PROCESS_WRITER_USERS) == "process"
    assert choose_writer("auto", PROCESS_WRITER_USERS - 1) == "thread"
    assert choose_writer("thread", 10**6) == "thread" and choose_writer("process", 10) == "process"
    assert choose_writer("inline", 10**6) == "inline"
    assert choose_writer("auto", 10**6, cores=1) == "inline" and choose_writer("auto", 10, cores=4) == "thread"  # a Ray task's one CPU
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert choose_writer("auto", 10**6) == "inline" and choose_writer("auto", 10) == "inline"


def test_an_inline_writer_has_the_rows_in_the_database_when_the_tick_returns(tmp_path, make_world):
    """``inline``: no thread or process; a flushed tick is committed before the world goes on."""
    engine = connect(f"sqlite:///{tmp_path / 'inline.db'}")
    world = make_world(n=30, seed=1)
    run_id = create_run(engine, "inline", scenario="t", recommender="random", brain="utility", seed=1, config={}, ticks_total=3)
    threads = threading.active_count()
    rec = RunRecorder(engine, run_id, background="inline")
    assert threading.active_count() == threads
    world.subscribe(rec)
    for tick in range(3):
        world.step()
        with engine.connect() as con:
            assert con.execute(select(func.count()).select_from(TickMetrics).where(TickMetrics.run_id == run_id)).scalar() == tick + 1
    rec.close()


@pytest.mark.parametrize("background", [False, "process"])
def test_incremental_checkpoints_keep_their_complete_one(tmp_path, make_world, collect, monkeypatch, background):
    """Incremental checkpoints are stored with the tick of their complete one, which stays while they need it (older ones
    go); the newest loads with it into the world as it was, and one that names a tick with no complete checkpoint is refused."""
    import recworld.checkpoint as C
    from recworld.checkpoint import Checkpointer, load_world
    from recworld.storage import Checkpoint
    from recworld.storage.queries import last_checkpoint

    monkeypatch.setattr(C, "LARGE_ARRAY_BYTES", 256)  # a small world's arrays kept apart, as a big one's are
    eng = connect(f"sqlite:///{tmp_path / 'ck.db'}")
    world = make_world(n=120, seed=3)
    ck = Checkpointer(delta_share=0.95)
    rec = RunRecorder(eng, create_run(eng, "t"), checkpointer=ck, background=background)
    world.subscribe(rec)
    world.run(6)
    rec.flush(world)
    with eng.connect() as con:
        rows = con.execute(select(Checkpoint.tick, Checkpoint.base_tick).where(Checkpoint.run_id == rec.run_id).order_by(Checkpoint.tick)).all()
    assert rows == [(0, None), (4, 0), (5, 0)]
    stored = last_checkpoint(eng, rec.run_id)
    assert stored.tick == 5 and stored.base is not None
    again = load_world(stored.state, stored.base)
    ca, cb = collect(), collect()
    world.observers.remove(rec)
    world.subscribe(ca)
    again.subscribe(cb)
    world.run(3)
    again.run(3)
    assert EventBatch.concat(ca.events).digest() == EventBatch.concat(cb.events).digest()
    rec.close()

    ck._base_tick = 99  # a checkpointer out of step with its recorder
    rec2 = RunRecorder(eng, create_run(eng, "t2"), checkpointer=ck)
    world.subscribe(rec2)
    with pytest.raises(RecWorldError, match="names tick 99, where run"):
        world.run(1)
    dispose_all()


def test_profile_rows_are_the_agents_personas_built_in_batches(tmp_path, make_world):
    """write_world builds a sampled population's personas 512 at a time: each row is the user's own persona and traits."""
    from recworld.storage import UserProfile
    from recworld.storage.recorder import PERSONA_BATCH

    world = make_world(n=PERSONA_BATCH + 190, sampled=True, seed=8)
    eng = connect(f"sqlite:///{tmp_path / 'p.db'}")
    rec = RunRecorder(eng, create_run(eng, "p"))
    rec.write_world(world)
    with eng.connect() as con:
        rows = con.execute(select(UserProfile).where(UserProfile.run_id == rec.run_id).order_by(UserProfile.user_id)).all()
    assert len(rows) == world.n_users
    for r in rows:
        p = world.user_agents[r.user_id].persona
        assert (r.external_id, r.age, r.gender, r.occupation, r.role, r.profile_text) == (
            p.external_id,
            p.age,
            p.gender,
            p.occupation,
            p.role,
            p.profile_text(),
        )
        assert r.patience == float(world.users.patience[r.user_id]) and r.activity == float(world.users.activity[r.user_id])
    rec.close()
    dispose_all()
