"""Kill a real `recworld run` process (SIGKILL, SIGTERM) and resume it: nothing lost, nothing duplicated."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from tests_support import event_log_hash

from recworld.errors import ConfigError
from recworld.events import EventType
from recworld.storage import Event, connect
from recworld.storage.db import dispose_all
from recworld.storage.models import Run
from recworld.storage.queries import last_checkpoint

pytestmark = pytest.mark.slow

TICKS = 24  # a day: kills land anywhere in ticks 3..18


def _scenario(tmp_path, seed, writer="thread", delta_share=0.25):
    f = tmp_path / "s.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "name": "crash",
                "seed": seed,
                "ticks": TICKS,
                "population": {"source": "movielens", "n_users": 40},
                "recommender": {"name": "linucb"},
                # Conversations and searches are part of the state a resume must restore.
                "conversation": {"enabled": True, "rate": 0.3},
                "search": {"enabled": True, "rate": 0.3},
                "storage": {"url": f"sqlite:///{tmp_path / 'r.db'}", "writer": writer, "checkpoint_delta_share": delta_share},
            }
        )
    )
    return f


def _uninterrupted(scenario_file) -> None:
    """The reference run, in this process (the code `recworld run` calls; the runs that are killed and resumed are real processes)."""
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario

    assert run_scenario(load_scenario(str(scenario_file)), progress=False).status == "completed"


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "recworld.scenarios.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for_tick(db, run_id, tick, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            eng = connect(db, create=False)
            with eng.connect() as con:
                done = con.execute(select(Run.tick_done).where(Run.id == run_id)).scalar()
        except (ConfigError, OperationalError):  # the run has not created its database yet
            done = None
        if done is not None and done >= tick:
            return done
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("run did not reach the tick in time")


@pytest.mark.parametrize(("seed", "writer", "delta_share"), [(1, "thread", 0.0), (2, "thread", 1.0), (3, "process", 1.0)])
def test_sigkill_at_random_tick_then_resume_equals_uninterrupted(tmp_path, seed, writer, delta_share):
    """A run killed at a random tick and resumed logs what an uninterrupted run logs; with a writer process, the orphaned
    writer writes nothing after the kill; a resume from an incremental checkpoint (with its complete one) is as exact."""
    scen = _scenario(tmp_path, seed, writer, delta_share)
    db = f"sqlite:///{tmp_path / 'r.db'}"
    _uninterrupted(scen)
    kill_at = random.Random(seed).randint(3, TICKS - 6)
    p = _cli("run", str(scen), "--quiet")
    _wait_for_tick(db, 2, kill_at, p)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    p.stdout.close()
    p.stderr.close()
    # 0: every checkpoint complete; 1.0: incremental after the first.
    assert (last_checkpoint(connect(db, create=False), 2).base is not None) == (delta_share == 1.0)
    res = subprocess.run([sys.executable, "-m", "recworld.scenarios.cli", "resume", "2", "--db", db, "--quiet"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    eng = connect(db, create=False)
    h1, n1 = event_log_hash(eng, 1)
    h2, n2 = event_log_hash(eng, 2)
    assert n1 == n2 > 0 and h1 == h2
    with eng.connect() as con:
        ticks = [t for (t,) in con.execute(select(func.distinct(Event.tick)).where(Event.run_id == 2).order_by(Event.tick))]
        status = con.execute(select(Run.status).where(Run.id == 2)).scalar()
        talk = con.execute(select(func.count()).where(Event.run_id == 2, Event.type.in_([int(EventType.CONVERSE), int(EventType.SEARCH)]))).scalar()
    assert status == "completed"
    assert ticks == sorted(set(ticks)) and ticks[-1] == TICKS - 1
    assert talk > 0  # the resumed run went on talking and searching, identically
    dispose_all()
    # No orphan is left holding the database: the killed run's writer process ends itself (even one caught mid-read of a job).
    deadline = time.monotonic() + 10
    while (holders := _holders(tmp_path / "r.db")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not holders


def _holders(path) -> list[int]:
    """Other processes with ``path`` (or its -wal / -shm) open (Linux /proc; empty elsewhere)."""
    names = {str(path), f"{path}-wal", f"{path}-shm"}
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        if int(d.name) == os.getpid():
            continue
        try:
            if any(os.readlink(f) in names for f in (d / "fd").iterdir()):
                out.append(int(d.name))
        except OSError:
            continue
    return out


def test_sigterm_finishes_the_tick_marks_interrupted_and_resumes(tmp_path):
    scen = _scenario(tmp_path, 5)
    db = f"sqlite:///{tmp_path / 'r.db'}"
    p = _cli("run", str(scen), "--quiet")
    _wait_for_tick(db, 1, 4, p)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130
    assert "recworld resume 1" in err
    eng = connect(db, create=False)
    with eng.connect() as con:
        status, done = con.execute(select(Run.status, Run.tick_done).where(Run.id == 1)).one()
    assert status == "interrupted" and 4 <= done < TICKS - 1
    res = subprocess.run([sys.executable, "-m", "recworld.scenarios.cli", "resume", "1", "--db", db, "--quiet"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    _uninterrupted(scen)
    assert event_log_hash(eng, 1) == event_log_hash(eng, 2)
    dispose_all()


def test_sigkill_with_language_in_flight_then_resume_replays_exactly(tmp_path):
    """Hybrid users whose texts are heard two ticks after they are asked for: a SIGKILL leaves requests in flight;
    the resumed run sends them again from the checkpoint and its log equals an uninterrupted run's."""
    from tests_support import LanguageScript

    from recworld.llm.testing import ScriptedLLMServer

    script = LanguageScript()
    # Latency keeps requests in flight across checkpoints (and no response cache: the resume must re-ask).
    with ScriptedLLMServer(script, latency_s=0.02) as srv:
        f = tmp_path / "lang.yaml"
        db = f"sqlite:///{tmp_path / 'lang.db'}"
        f.write_text(
            yaml.safe_dump(
                {
                    "name": "crash-language",
                    "seed": 4,
                    "ticks": 24,
                    "population": {"source": "movielens", "n_users": 60},
                    "recommender": {"name": "linucb", "params": {"instruction_weight": 1.0}},
                    "brain": {
                        "kind": "hybrid",
                        "params": {"language_rate": 0.3, "max_calls_per_tick": 10, "max_social_calls_per_tick": 10, "language_lag": 2, "reflection_every": 2},
                    },
                    "social": {"enabled": True, "post_rate": 0.4, "chat_rate": 0.3},
                    "llm": {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None, "timeout_s": 10.0},
                    "storage": {"url": db},
                }
            )
        )
        _uninterrupted(f)
        p = _cli("run", str(f), "--quiet")
        _wait_for_tick(db, 2, 9, p)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        p.stdout.close()
        p.stderr.close()
        res = subprocess.run(
            [sys.executable, "-m", "recworld.scenarios.cli", "resume", "2", "--db", db, "--quiet"], capture_output=True, text=True, timeout=300
        )
        assert res.returncode == 0, res.stderr
    eng = connect(db, create=False)
    h1, n1 = event_log_hash(eng, 1)
    h2, n2 = event_log_hash(eng, 2)
    assert n1 == n2 > 0 and h1 == h2
    with eng.connect() as con:
        texts = con.execute(select(func.count()).where(Event.run_id == 2, Event.type.in_([int(EventType.FEELING), int(EventType.INSTRUCTION)]))).scalar()
    assert texts > 0  # the log did carry model-written (and templated) feelings and instructions
    dispose_all()
