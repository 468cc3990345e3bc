import subprocess
import sys

import pytest

from recworld.scenarios.cli import main


def test_run_prints_summary_table(tmp_path, capsys, monkeypatch):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    rc = main(["run", "quickstart", "--ticks", "6", "--users", "40", "--db", db, "--quiet"])
    out = capsys.readouterr()
    assert rc == 0
    assert "watch rate (CTR)" in out.out and "run 1" in out.out
    assert main(["runs", "--db", db]) == 0
    assert "completed" in capsys.readouterr().out
    # export what the run logged: per-tick metrics and the event log as CSV (default file names)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "metrics", "1", "--db", db]) == 0 and main(["export", "events", "1", "--db", db]) == 0
    assert "wrote 6 ticks to run1_metrics.csv" in capsys.readouterr().err
    assert (tmp_path / "run1_metrics.csv").read_text().count("\n") == 7 and (tmp_path / "run1_events.csv").stat().st_size > 1000


@pytest.mark.slow
def test_train_conversation_policy_then_use_it_as_the_crs_of_a_scenario(tmp_path, capsys):
    from recworld.events import EventType
    from recworld.payloads import ConversationEndPayload
    from recworld.storage import Event, connect

    policy = tmp_path / "conv.npz"
    args = ["train", "--env", "conversation", "--timesteps", "96", "--eval-seeds", "2", "--eval-episodes", "8", "--out", str(policy), "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr()
    assert policy.exists() and "always_recommend" in out.out and "ask_then_recommend" in out.out and "turns_to_success" in out.out
    scen = tmp_path / "s.yaml"
    scen.write_text(
        f"name: talk\nticks: 4\npopulation: {{n_users: 40}}\nconversation: {{enabled: true, rate: 1.0}}\ncrs: {{name: policy, params: {{path: {policy}}}}}\n"
    )
    db = f"sqlite:///{tmp_path / 't.db'}"
    assert main(["run", str(scen), "--db", db, "--quiet"]) == 0
    assert "conversations" in capsys.readouterr().out
    from sqlalchemy import select

    with connect(db).connect() as con:
        ends = [ConversationEndPayload.read(p) for (p,) in con.execute(select(Event.payload).where(Event.type == int(EventType.CONVERSATION_END)))]
    assert ends and all(e.agent == "policy" for e in ends)
    # A policy file that is not one: one clear line.
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"nope")
    scen.write_text(f"name: talk\nticks: 1\nconversation: {{enabled: true}}\ncrs: {{name: policy, params: {{path: {bad}}}}}\n")
    assert main(["run", str(scen), "--db", db, "--quiet"]) != 0
    assert "is not a conversation policy" in capsys.readouterr().err


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "quickstart" in out and "filter_bubble" in out and "cold_start" in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "nope"], "unknown scenario 'nope'"),
        (["run", "quickstart", "--recommender", "magic"], "unknown recommender 'magic'"),
        (["run", "quickstart", "--ticks", "0"], "field 'ticks'"),
        (["run", "quickstart", "--ticks", "x"], "invalid int value"),
        (["resume", "99", "--db", "/nonexistent/dir/x.db"], "does not exist"),
        (["dashboard", "--host", "0.0.0.0"], "refusing to bind 0.0.0.0"),
        (["frobnicate"], "invalid choice"),
        (["train", "--env", "conversation", "--timesteps", "0"], "--timesteps must be >= 1"),
        (["train", "--env", "conversation", "--algo", "ppo"], "--algo ppo does not apply to --env conversation; use one of: es, fqi"),
        (["train", "--algo", "es"], "--algo es does not apply to --env feed; use one of: slate_pg, ppo"),
        (["export", "metrics", "7", "--db", "sqlite:///runs/no-such.db"], "does not exist"),
    ],
)
def test_bad_input_one_line_no_traceback(args, needle):
    p = subprocess.run([sys.executable, "-m", "recworld.scenarios.cli", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert needle in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_compare_prints_side_by_side(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["compare", "quickstart", "--recommenders", "random,mf", "--ticks", "6", "--users", "30", "--db", db, "--quiet", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| random |" in out and "| mf |" in out


@pytest.mark.slow
def test_train_then_eval_writes_results_for_the_dashboard(tmp_path, capsys):
    from sqlmodel import Session, select

    from recworld.storage import EvalResult, connect

    policy = tmp_path / "p.pt"
    assert main(["train", "--algo", "slate_pg", "--timesteps", "2000", "--out", str(policy), "--quiet"]) == 0
    assert policy.exists()
    db = f"sqlite:///{tmp_path / 'e.db'}"
    assert main(["eval", "--policies", f"random,pg={policy}", "--seeds", "2", "--episodes", "1", "--db", db, "--name", "smoke"]) == 0
    assert "95% CI" in capsys.readouterr().out
    with Session(connect(db)) as s:
        rows = s.exec(select(EvalResult).where(EvalResult.name == "smoke")).all()
    assert {r.policy for r in rows} == {"random", "pg"} and all(r.ci_low <= r.mean <= r.ci_high for r in rows)


def test_distill_then_run_with_the_distilled_brain(tmp_path, capsys):
    out = tmp_path / "d.json"
    assert main(["distill", "quickstart", "--brain", "utility", "--users", "60", "--warmup", "6", "--pages", "300", "--out", str(out)]) == 0
    assert out.exists() and "no_click" in capsys.readouterr().out
    scen = tmp_path / "s.yaml"
    scen.write_text(
        f"name: d\nticks: 6\npopulation: {{n_users: 40}}\nbrain: {{kind: distilled, params: {{path: {out}}}}}\nstorage: {{url: sqlite:///{tmp_path / 'r.db'}}}\n"
    )
    assert main(["run", str(scen), "--quiet"]) == 0


@pytest.mark.parametrize(
    ("hidden", "argv", "extra"),
    [
        ("uvicorn", ["dashboard"], "dashboard"),
        ("openai", ["run", "quickstart", "--brain", "hybrid", "--users", "10", "--ticks", "1"], "llm"),
        ("stable_baselines3", ["train", "--algo", "ppo", "--timesteps", "10"], "rl"),
    ],
)
def test_missing_extras_are_one_line_errors(monkeypatch, capsys, tmp_path, hidden, argv, extra):
    import sys

    from recworld.scenarios.cli import main
    from recworld.storage import connect

    db = f"sqlite:///{tmp_path / 'x.db'}"
    connect(db)  # the dashboard opens an existing database only
    monkeypatch.setitem(sys.modules, hidden, None)  # as if the extra were not installed
    assert main([*argv, "--db", db] if argv[0] != "train" else [*argv, "--out", str(tmp_path / "p.zip")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(f"pip install 'recworld[{extra}]'") and f"({hidden} is not installed)" in err[0], err


def test_demo_scenario_ends_with_what_users_wrote_an_interview_and_the_dashboard_command(tmp_path, capsys):
    """`make demo` runs `recworld run demo --interview ...`; here on a scripted model (the shipped file with its llm section pointed at it)."""
    import yaml
    from tests_support import LanguageScript

    from recworld.llm.testing import ScriptedLLMServer
    from recworld.scenarios.schema import shipped

    demo = yaml.safe_load(open(shipped()["demo"], encoding="utf-8"))
    assert demo["brain"]["kind"] == "hybrid" and demo["llm"]["backend"] == "embedded"
    with ScriptedLLMServer(LanguageScript()) as srv:
        demo.update(ticks=6, population={"source": "movielens", "n_users": 60})
        demo["llm"] = {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None}
        f = tmp_path / "demo.yaml"
        f.write_text(yaml.safe_dump(demo))
        db = f"sqlite:///{tmp_path / 'demo.db'}"
        assert main(["run", str(f), "--db", db, "--quiet", "--interview", "What do you want more of?"]) == 0
    out = capsys.readouterr().out
    assert "instructions to the recommender" in out and "tick " in out
    assert "model text:" in out and "rejected by the grounding check" in out
    assert "an interview" in out and "Q to user" in out and "What do you want more of?" in out and "A: " in out
    assert f"recworld dashboard --db {db}" in out and "http://127.0.0.1:8000/runs/1" in out


def test_train_algos_of_the_cli_are_the_trainers():
    """The CLI lists each env's learners without importing the trainers (a fast start); the lists must agree."""
    from recworld.envs.conversation_train import ALGOS
    from recworld.scenarios.cli import TRAIN_ALGOS

    assert TRAIN_ALGOS["conversation"] == ALGOS
