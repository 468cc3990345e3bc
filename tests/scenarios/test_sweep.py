"""`recworld sweep`: seeds x recommenders into one database, the same runs as one by one, on Ray or in this process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests_support import event_log_hash

from recworld.errors import ConfigError
from recworld.metrics import mean_ci
from recworld.scenarios.cli import main
from recworld.scenarios.runner import run_scenario
from recworld.scenarios.schema import load_scenario
from recworld.scenarios.sweep import absolute_url, parse_recommenders, parse_seeds, run_sweep
from recworld.storage import connect
from recworld.storage.queries import list_sweeps, sweep_comparison, sweep_runs

SEEDS = [3, 7]
RECS = ["random", "popularity"]
SMALL = {"ticks": 48, "population.n_users": 40}  # two days: day-1 retention exists
DAILY_CHECKPOINTS = {"storage.checkpoint_every": 24}  # a checkpoint a day is enough here (checkpoints take most of a tick's time)


def _base():
    return load_scenario("quickstart").with_overrides(**SMALL, **DAILY_CHECKPOINTS)


def _one_by_one(tmp_path):
    """The reference: each (seed, recommender) run alone with run_scenario, hash and summary by (rec, seed)."""
    url = f"sqlite:///{tmp_path / 'alone.db'}"
    engine = connect(url)
    out = {}
    for seed in SEEDS:
        for rec in RECS:
            o = run_scenario(_base().with_overrides(**{"seed": seed, "recommender.name": rec}), db_url=url, progress=False)
            out[(rec, seed)] = (event_log_hash(engine, o.run_id), o.summary)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return _one_by_one(tmp_path_factory.mktemp("alone"))


def _assert_same_as_one_by_one(url: str, name: str, reference) -> None:
    engine = connect(url)
    runs = sweep_runs(engine, name)
    assert len(runs) == len(SEEDS) * len(RECS) and {r["status"] for r in runs} == {"completed"}
    # Planned seed-major: every recommender of the first seed, then of the next.
    assert [(r["seed"], r["recommender"]) for r in runs] == [(s, r) for s in SEEDS for r in RECS]
    for r in runs:
        h, summary = reference[(r["recommender"], r["seed"])]
        assert event_log_hash(engine, r["id"]) == h
        assert r["summary"] == summary


def test_a_job_with_one_cpu_writes_its_log_inline_and_the_same(tmp_path, reference, monkeypatch):
    """A Ray task has one CPU: under ``storage.writer: auto`` its world writes its own log, and the run is the one made alone."""
    from recworld.scenarios import runner
    from recworld.scenarios.sweep import plan, run_planned

    chosen: list[str] = []
    real = runner.choose_writer
    monkeypatch.setattr(runner, "choose_writer", lambda setting, n, cores=None: chosen.append(real(setting, n, cores)) or chosen[-1])
    url = f"sqlite:///{tmp_path / 'one-cpu.db'}"
    (job,) = plan(_base(), SEEDS[:1], RECS[:1], url, "one-cpu")
    res = run_planned(job, url, cores=1)
    assert res.status == "completed" and chosen == ["inline"]
    h, summary = reference[(RECS[0], SEEDS[0])]
    assert event_log_hash(connect(url), job.run_id) == h and res.summary == summary


def test_parse_seeds_and_recommenders():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("0,1, 2") == [0, 1, 2]
    assert parse_seeds("5,0-2,1") == [5, 0, 1, 2]
    assert parse_recommenders("mf, random,mf") == ["mf", "random"]
    for bad, needle in [("", "empty"), ("3-1", "backwards"), ("a", "cannot read"), ("-2", "cannot read"), ("0-99999", "more than")]:
        with pytest.raises(ConfigError, match=needle):
            parse_seeds(bad)
    with pytest.raises(ConfigError, match="empty"):
        parse_recommenders(" , ")


def test_relative_sqlite_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_url("runs/x.db") == f"sqlite:///{tmp_path / 'runs' / 'x.db'}"
    assert absolute_url("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert absolute_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


@pytest.mark.slow
def test_in_process_sweep_equals_runs_one_by_one_and_compares_with_intervals(tmp_path, reference):
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    seen = []
    out = run_sweep(_base(), SEEDS, RECS, db_url=url, name="inproc", use_ray=False, on_result=seen.append)
    assert not out.failed and len(seen) == 4 and out.mode == "in-process"
    _assert_same_as_one_by_one(url, "inproc", reference)
    cmp = sweep_comparison(connect(url), "inproc")
    assert cmp["recommenders"] == RECS and cmp["seeds"] == SEEDS
    assert {"watch_rate", "retention_d1", "churn", "mean_rating", "coverage", "gini"} <= set(cmp["metrics"])
    row = next(r for r in cmp["rows"] if r["recommender"] == "popularity" and r["metric"] == "watch_rate")
    want = [reference[("popularity", s)][1]["watch_rate"] for s in SEEDS]
    assert row["values"] == want and row["seeds"] == SEEDS and row["n_seeds"] == 2
    assert (row["mean"], row["ci_low"], row["ci_high"]) == mean_ci(want)
    assert row["ci_low"] < row["mean"] < row["ci_high"]
    [listed] = list_sweeps(connect(url))
    assert listed["name"] == "inproc" and listed["n_runs"] == 4 and listed["n_completed"] == 4 and listed["n_seeds"] == 2
    # A second sweep under the same name is refused before anything runs.
    with pytest.raises(ConfigError, match="already has 4 runs"):
        run_sweep(_base(), SEEDS, RECS, db_url=url, name="inproc", use_ray=False)


def test_cli_sweep_workers_1_runs_in_process_and_prints_intervals(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    rc = main(["sweep", "quickstart", "--seeds", "0-1", "--recommenders", "random,popularity", "--ticks", "6", "--users", "30"]
              + ["--workers", "1", "--db", db, "--name", "cli", "--markdown"])  # fmt: skip
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "in this process" in cap.err and "4 runs in" in cap.err and "/compare?sweep=cli" in cap.err
    assert "random (n=2)" in cap.out and "popularity (n=2)" in cap.out and " ± " in cap.out
    assert "| metric | random | popularity |" in cap.out


def test_failed_runs_are_reported_and_stored(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'f.db'}"
    rc = main(["sweep", "quickstart", "--seeds", "0", "--recommenders", "random,no_such_pkg.mod:Rec", "--ticks", "4", "--users", "20"]
              + ["--no-ray", "--db", db, "--name", "f", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and "1 of 2 runs did not complete" in err and "no_such_pkg" in err
    status = {r["recommender"]: r["status"] for r in sweep_runs(connect(db), "f")}
    assert status == {"random": "completed", "no_such_pkg.mod:Rec": "failed"}


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--seeds", "9-1"], "runs backwards"),
        (["--recommenders", "random,magic"], "unknown recommender 'magic'"),
        (["--name", "bad name!"], "sweep name 'bad name!'"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--no-ray", "--ray", "auto"], "contradict"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, args, needle):
    db = tmp_path / "b.db"
    assert main(["sweep", "quickstart", "--quiet", "--db", str(db), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not db.exists() or not sweep_runs(connect(str(db)), "x")  # nothing planned


def test_without_ray_installed_the_error_names_the_extra(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"  # as if the extra were not installed
        "from recworld.scenarios.cli import main\n"
        f"sys.exit(main(['sweep', 'quickstart', '--seeds', '0-1', '--db', {str(tmp_path / 'n.db')!r}]))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "pip install 'recworld[ray]'" in p.stderr and "--no-ray" in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "n.db").exists()  # nothing planned


@pytest.mark.slow
def test_sweep_on_a_local_ray_equals_runs_one_by_one(tmp_path, reference):
    pytest.importorskip("ray")
    import yaml

    db = str(tmp_path / "ray.db")
    scenario = tmp_path / "quickstart-daily-checkpoints.yaml"  # the quickstart with DAILY_CHECKPOINTS; --ticks and --users set the rest
    scenario.write_text(yaml.safe_dump(load_scenario("quickstart").with_overrides(**DAILY_CHECKPOINTS).model_dump(mode="json")))
    p = subprocess.run(
        [sys.executable, "-m", "recworld.scenarios.cli", "sweep", str(scenario), "--seeds", ",".join(map(str, SEEDS)), "--recommenders", ",".join(RECS),
         "--ticks", str(SMALL["ticks"]), "--users", str(SMALL["population.n_users"]), "--workers", "2", "--db", db, "--name", "on-ray"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert "on a local Ray" in p.stderr and "local Ray, 2 workers" in p.stderr
    _assert_same_as_one_by_one(f"sqlite:///{db}", "on-ray", reference)
    cmp = sweep_comparison(connect(f"sqlite:///{db}"), "on-ray")
    for rec in RECS:
        assert f"{rec} (n=2)" in p.stdout
        wr = next(r for r in cmp["rows"] if r["recommender"] == rec and r["metric"] == "watch_rate")
        half = (wr["ci_high"] - wr["ci_low"]) / 2
        assert f"{wr['mean']:.3f} ± {half:.3f}" in p.stdout
    assert json.loads(json.dumps(cmp))  # plain data, as the dashboard serves it
