"""A real run database for the dashboard tests (made once per session by the simulator).

The quickstart scenario (80 MovieLens users, 30 ticks, LinUCB) runs first; a
second short run with the random recommender gives the compare view two runs.
Run 1 has its social layer switched off, and a small, exactly known set of
follow edges, posts (with share-cascade payloads), chats, instructions,
memories and LLM calls is added afterwards — in the same tables and shapes the
recorder writes — so tests can assert exact cascade and graph shapes. A third
run with the real social layer on backs ``social_run`` (tests of real data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import insert

from recworld.events import EventType


@dataclass(frozen=True)
class RunDB:
    url: str
    run_id: int
    other_run_id: int
    user_id: int  # a user with social activity
    item_id: int  # an item with a share cascade


def _social_rows(run_id: int, user: int, item: int) -> dict:
    ev = []

    def e(tick, uid, t, item_id=None, value=None, text=None, payload=None):
        ev.append(
            {
                "run_id": run_id,
                "tick": tick,
                "user_id": uid,
                "type": int(t),
                "item_id": item_id,
                "value": value,
                "text": text,
                "payload": None if payload is None else json.dumps(payload),
            }
        )

    # A share cascade of `item`: user -> 1 -> 2, user -> 3, plus a post with a malformed payload.
    e(5, user, EventType.POST, item, text="You have to see this one")
    e(6, 1, EventType.POST, item, text="reshare", payload={"parent": user})
    e(7, 2, EventType.POST, item, text="via 1", payload={"parent": {"user": 1, "tick": 6}})
    e(8, 3, EventType.POST, item, payload={"parent_user": str(user)})
    e(9, 4, EventType.POST, item, payload={"something": "else"})
    e(10, 5, EventType.POST, item, payload={"parent": 9999})  # unknown parent: a new root
    e(11, 6, EventType.SOCIAL_WATCH, item, value=1.0)
    e(12, user, EventType.CHAT, value=1.0, text="Have you watched it? <b>so good</b>")
    e(12, 1, EventType.CHAT, value=float(user), text="Not yet, adding it to my list")
    e(13, user, EventType.INSTRUCTION, text="fewer romances, more space sci-fi")
    e(14, user, EventType.FOLLOW, value=2.0)
    edges = [
        {"run_id": run_id, "src": s, "dst": d, "created_tick": 0, "removed_tick": None}
        for s, d in [(user, 1), (1, user), (1, 2), (2, 3), (3, user), (4, 5), (5, 6), (6, 4), (user, 2)]
    ]
    edges.append({"run_id": run_id, "src": 7, "dst": 8, "created_tick": 0, "removed_tick": 3})
    memory = [
        {"run_id": run_id, "user_id": user, "tick": 3, "kind": "observation", "importance": 0.4, "text": "Watched a good documentary"},
        {"run_id": run_id, "user_id": user, "tick": 20, "kind": "reflection", "importance": 0.9, "text": "I like slow science films"},
    ]
    llm = [
        {
            "run_id": run_id,
            "tick": 3,
            "user_id": user,
            "purpose": "decide",
            "model": "gemma-270m",
            "tokens_in": 300,
            "tokens_out": 20,
            "latency_ms": 120.0,
            "cached": False,
            "retries": 0,
            "fell_back": False,
        },
        {
            "run_id": run_id,
            "tick": 4,
            "user_id": user,
            "purpose": "decide",
            "model": "gemma-270m",
            "tokens_in": 300,
            "tokens_out": 20,
            "latency_ms": 1.0,
            "cached": True,
            "retries": 0,
            "fell_back": False,
        },
        {
            "run_id": run_id,
            "tick": 4,
            "user_id": 1,
            "purpose": "chat",
            "model": "gemma-270m",
            "tokens_in": 200,
            "tokens_out": 40,
            "latency_ms": 300.0,
            "cached": False,
            "retries": 1,
            "fell_back": True,
        },
    ]
    return {"events": ev, "edges": edges, "memory": memory, "llm": llm}


@pytest.fixture(scope="session")
def run_db(tmp_path_factory) -> RunDB:
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario
    from recworld.storage import connect
    from recworld.storage.models import Edge, Event, LLMCall, MemoryRecord

    url = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'runs.db'}"
    s = load_scenario("quickstart").with_overrides(**{"population.n_users": 80, "ticks": 30, "social.enabled": False})
    out = run_scenario(s, db_url=url, progress=False)
    other = run_scenario(
        load_scenario("quickstart").with_overrides(**{"population.n_users": 40, "ticks": 12, "recommender.name": "random", "social.enabled": False}),
        db_url=url,
        progress=False,
        run_name="quickstart-random",
    )
    user, item = 0, 10
    rows = _social_rows(out.run_id, user, item)
    engine = connect(url)
    with engine.begin() as con:
        con.execute(insert(Event.__table__), rows["events"])
        con.execute(insert(Edge.__table__), rows["edges"])
        con.execute(insert(MemoryRecord.__table__), rows["memory"])
        con.execute(insert(LLMCall.__table__), rows["llm"])
    return RunDB(url=url, run_id=out.run_id, other_run_id=other.run_id, user_id=user, item_id=item)


@pytest.fixture(scope="session")
def social_run(run_db) -> int:
    """Id of a run (same database) whose posts, chats and edges come from the real social layer."""
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario

    s = load_scenario("quickstart").with_overrides(**{"population.n_users": 80, "ticks": 36})
    return run_scenario(s, db_url=run_db.url, progress=False, run_name="quickstart-social").run_id


@pytest.fixture(scope="session")
def eval_name(run_db) -> str:
    """Name of a real (small) policy evaluation stored in the same database by ``recworld.envs.evaluate``."""
    from recworld.envs.evaluate import evaluate, store_results

    rows = evaluate({"random": "random", "popularity": "popularity"}, seeds=[1000, 1001, 1002], episodes=4, max_episode_steps=30, n_background=10)
    store_results(run_db.url, "nightly eval", rows)
    return "nightly eval"


@pytest.fixture(scope="session")
def app(run_db):
    from recworld.dashboard.app import create_app

    return create_app(run_db.url, poll_interval=0.05)


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@dataclass(frozen=True)
class SweepDB:
    url: str
    name: str


@pytest.fixture(scope="session")
def sweep_db(tmp_path_factory) -> SweepDB:
    """A database holding one real sweep (2 seeds x 2 recommenders, run in this process by `recworld.scenarios.sweep`)."""
    from recworld.scenarios.schema import load_scenario
    from recworld.scenarios.sweep import run_sweep

    url = f"sqlite:///{tmp_path_factory.mktemp('sweep') / 'sweep.db'}"
    base = load_scenario("quickstart").with_overrides(**{"population.n_users": 30, "ticks": 48, "social.enabled": False})
    out = run_sweep(base, [0, 1], ["random", "popularity"], db_url=url, name="nightly:qs", use_ray=False)
    assert not out.failed
    return SweepDB(url=url, name="nightly:qs")


@pytest.fixture(scope="session")
def sweep_client(sweep_db):
    from fastapi.testclient import TestClient

    from recworld.dashboard.app import create_app

    with TestClient(create_app(sweep_db.url, poll_interval=0.05)) as c:
        yield c
