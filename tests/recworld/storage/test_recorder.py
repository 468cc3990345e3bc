from sqlalchemy import func, select

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
        n_events = con.execute(select(func.count()).select_from(Event).where(Event.run_id == run_id)).scalar()
        n_ticks = con.execute(select(func.count()).select_from(TickMetrics).where(TickMetrics.run_id == run_id)).scalar()
        watches = con.execute(select(func.count()).select_from(Event).where(Event.run_id == run_id, Event.type == int(EventType.WATCH))).scalar()
        tm_watches = con.execute(select(func.sum(TickMetrics.watches)).where(TickMetrics.run_id == run_id)).scalar()
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
    rec._events.append(EventBatch.build(0, [1], EventType.POST, [3], texts=["loved it"], payloads=[{"parent": 2}]))
    rec.flush()
    with eng.connect() as con:
        row = con.execute(select(Event.text, Event.payload, Event.item_id)).one()
    assert row == ("loved it", '{"parent": 2}', 3)
    dispose_all()
