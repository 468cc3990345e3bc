"""`recworld interview`: users of a finished run answer questions, through the run's own LLM configuration."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from tests_support import LanguageScript

from recworld.llm.testing import ScriptedLLMServer
from recworld.scenarios.cli import main
from recworld.scenarios.runner import run_scenario
from recworld.storage import Interview, connect


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory):
    """A small hybrid run whose `llm:` section points at a scripted server (kept up for the interviews)."""
    from recworld.scenarios.schema import load_scenario

    script = LanguageScript()
    with ScriptedLLMServer(script) as srv:
        llm = {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None, "timeout_s": 5.0}
        s = load_scenario("quickstart").with_overrides(
            **{
                "population.n_users": 40,
                "ticks": 8,
                "storage.url": f"sqlite:///{tmp_path_factory.mktemp('iv') / 'runs.db'}",
                "brain.kind": "hybrid",
                "brain.params": {"language_rate": 0.3, "max_calls_per_tick": 8, "max_social_calls_per_tick": 8},
                "llm": llm,
            }
        )
        out = run_scenario(s, progress=False)
        yield s.storage.url, out.run_id, script, srv


def test_one_user_answers_and_the_answer_is_stored(scripted_run, capsys):
    db, run_id, script, srv = scripted_run
    n = srv.request_count
    assert main(["interview", str(run_id), "3", "What did you like this week?", "--db", db]) == 0
    printed = capsys.readouterr().out
    assert "Q to user 3: What did you like this week?" in printed and "A: " in printed
    req = srv.requests[n]
    # The prompt is the user's: persona, what they watched (titles from the log), the question.
    assert req.prompt_text.endswith('Answer: "I') and "What did you like this week?" in req.prompt_text
    assert "Watched: " in req.prompt_text
    eng = connect(db, create=False)
    with eng.connect() as con:
        rows = con.execute(
            select(Interview.user_id, Interview.question, Interview.answer, Interview.by, Interview.rejected).where(Interview.run_id == run_id)
        ).all()
    assert len(rows) == 1 and rows[0].user_id == 3 and rows[0].answer in printed
    cat = script.categories[-1]
    assert (rows[0].by == "llm") == (cat == "good") and (rows[0].rejected == (None if cat == "good" else cat))


def test_all_users_of_a_sample_answer_and_a_table_is_written(scripted_run, tmp_path, capsys):
    db, run_id, script, _srv = scripted_run
    out_file = tmp_path / "answers.json"
    before = len(script.categories)
    assert main(["interview", str(run_id), "--all", "--question", "Why do you keep coming back?", "--sample", "12", "--out", str(out_file), "--db", db]) == 0
    rows = json.loads(out_file.read_text())
    assert len(rows) == 12 and len({r["user_id"] for r in rows}) == 12
    assert all(r["answer"].strip() and r["question"] == "Why do you keep coming back?" for r in rows)
    # Answers the check rejected were replaced by templates and say why; the others are the model's.
    cats = script.categories[before:]
    assert sorted(r["rejected"] or "good" for r in rows) == sorted(cats)
    assert all((r["by"] == "llm") == (r["rejected"] is None) for r in rows)
    # The same sample every time (seeded), and every answer is stored.
    assert main(["interview", str(run_id), "--all", "--question", "Again?", "--sample", "12", "--out", str(tmp_path / "b.csv"), "--db", db]) == 0
    users_b = [int(line.split(",")[0]) for line in (tmp_path / "b.csv").read_text().splitlines()[1:]]
    assert users_b == [r["user_id"] for r in rows]
    eng = connect(db, create=False)
    with eng.connect() as con:
        assert (
            con.execute(select(func.count()).where(Interview.run_id == run_id, Interview.question.in_(["Why do you keep coming back?", "Again?"]))).scalar()
            == 24
        )
    assert "user" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["interview", "99", "1", "q?"], "no run with id 99"),
        (["interview", "1", "500", "q?"], "has users 0..39; got 500"),
        (["interview", "1", "--all"], "--all needs --question"),
        (["interview", "1", "2"], 'expected RUN USER "question"'),
        (["interview", "1", "2", "   "], "the question is empty"),
        (["interview", "1", "--all", "--question", "q", "--out", "x.txt", "--sample", "2"], "expected a .csv or .json file"),
    ],
)
def test_bad_interview_arguments_are_one_line_errors(scripted_run, capsys, args, message):
    db, _run_id, _script, _srv = scripted_run
    assert main([*args, "--db", db]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_interviews_through_the_embedded_model(small_scenario, tmp_path):
    """A run on the embedded Gemma (its default `llm:` section): every user of a sample gets an answer."""
    s = small_scenario(**{"population.n_users": 30, "ticks": 4, "llm": {"cache_path": None, "timeout_s": 300}})
    out = run_scenario(s, progress=False)
    path = tmp_path / "a.csv"
    assert (
        main(
            [
                "interview",
                str(out.run_id),
                "--all",
                "--question",
                "What kind of movies do you want more of?",
                "--sample",
                "3",
                "--out",
                str(path),
                "--db",
                s.storage.url,
            ]
        )
        == 0
    )
    lines = path.read_text().splitlines()
    assert len(lines) == 4
    eng = connect(s.storage.url, create=False)
    with eng.connect() as con:
        rows = con.execute(select(Interview.answer, Interview.by, Interview.tokens_out, Interview.model).where(Interview.run_id == out.run_id)).all()
    assert len(rows) == 3 and all(r.answer.strip() for r in rows)
    # The model answered (whether or not the check kept its text).
    assert all(r.model == "gemma-3-270m-q4_k_m" for r in rows) and sum(r.tokens_out for r in rows) > 0
