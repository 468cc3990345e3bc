import numpy as np
from sqlalchemy import select
from tests_support import event_log_hash

from recworld.scenarios.build import build_world
from recworld.scenarios.runner import resume_run, run_scenario
from recworld.scenarios.schema import load_scenario
from recworld.storage import Edge, connect
from recworld.storage.queries import get_run


def event_hash(url, run_id):
    return event_log_hash(connect(url, create=False), run_id)


def test_same_scenario_and_seed_give_identical_event_logs(small_scenario):
    s = small_scenario(**{"recommender.name": "mf"})
    a = run_scenario(s, progress=False)
    b = run_scenario(s, progress=False)
    ha, na = event_hash(s.storage.url, a.run_id)
    hb, nb = event_hash(s.storage.url, b.run_id)
    assert na == nb > 1000 and ha == hb
    c = run_scenario(s.with_overrides(seed=s.seed + 1), progress=False)
    assert event_hash(s.storage.url, c.run_id)[0] != ha


def test_run_records_status_summary_and_checkpoint(small_scenario):
    s = small_scenario(ticks=60)
    out = run_scenario(s, progress=False)
    run = get_run(connect(s.storage.url), out.run_id)
    assert run.status == "completed" and run.tick_done == s.ticks - 1 and run.n_users == 60
    assert out.summary["sessions"] > 0 and 0 < out.summary["watch_rate"] < 1 and "retention_d1" in out.summary


def test_resume_after_partial_run_equals_uninterrupted(small_scenario):
    # Checkpoints every 4 ticks: the partial run's last two ticks are rolled back on resume.
    s = small_scenario(**{"recommender.name": "linucb", "storage.checkpoint_every": 4, "social.unfollow_rate": 0.6, "social.follow_rate": 0.6})
    full = run_scenario(s, progress=False)
    partial = run_scenario(s.with_overrides(ticks=15), progress=False)
    # Pretend the process died at tick 15: resume the run to its original length.
    eng = connect(s.storage.url)
    from sqlalchemy import update

    from recworld.storage.models import Run

    with eng.begin() as con:
        con.execute(update(Run).where(Run.id == partial.run_id).values(status="interrupted", config_json=s.model_dump_json()))
    resumed = resume_run(partial.run_id, db_url=s.storage.url, progress=False)
    assert resumed.status == "completed"
    assert event_hash(s.storage.url, full.run_id) == event_hash(s.storage.url, partial.run_id)
    # The follow graph's history too: edges made and unfollowed after the checkpoint are redone, not doubled.
    with eng.connect() as con:
        edges = [
            sorted(con.execute(select(Edge.src, Edge.dst, Edge.created_tick, Edge.removed_tick).where(Edge.run_id == r)).all(), key=str)
            for r in (full.run_id, partial.run_id)
        ]
    assert edges[0] == edges[1] and any(e[3] is not None and 11 < e[3] < 15 for e in edges[0])


def test_every_shipped_scenario_runs_a_few_ticks(tmp_path):
    from recworld.scenarios.schema import shipped

    for name in shipped():
        s = load_scenario(name).with_overrides(**{"ticks": 3, "population.n_users": 30, "storage.url": f"sqlite:///{tmp_path / 'x.db'}"})
        if s.brain.kind in ("hybrid", "llm"):
            s = s.with_overrides(**{"brain.kind": "utility"})
        assert run_scenario(s, progress=False).status == "completed"


def test_filter_bubble_mf_homogenises_users_faster_than_random():
    """Chaney et al. (2018): a recommender feedback loop makes users more alike than they would become anyway."""
    from recworld import metrics as M

    drops, consumption = {}, {}
    for rec in ("mf", "random"):
        s = load_scenario("filter_bubble").with_overrides(**{"recommender.name": rec, "population.n_users": 300})
        w = build_world(s)
        unit = lambda t: t / np.linalg.norm(t, axis=1, keepdims=True)  # noqa: E731
        start = M.spread(unit(w.users.taste))
        series = []

        class Obs:
            def on_tick(self, world, ev, m, series=series):
                series.append(m.population_diversity)

        w.subscribe(Obs())
        w.run(s.ticks)
        drops[rec] = (start - M.spread(unit(w.users.taste))) / start
        consumption[rec] = float(np.mean(series[-24:]))
    # Interests converge much more under MF, and what people consume ends up more alike.
    assert drops["mf"] > drops["random"] + 0.2, drops
    assert consumption["mf"] < consumption["random"] - 0.03, consumption
