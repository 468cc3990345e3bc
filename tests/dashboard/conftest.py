"""Real run databases for the dashboard tests, made once per session by the simulator itself.

- Run 1 (``run_db.run_id``): the quickstart scenario (80 MovieLens users, 30
  ticks, LinUCB) with the hybrid brain talking to a scripted OpenAI-compatible
  server on 127.0.0.1 and the social layer on at raised rates, so the log
  holds everything the dashboard shows: posts and reshare cascades, social
  watches, chats, follows and unfollows, instructions, feelings, memories and
  LLM calls.
- Run 2 (``run_db.other_run_id``): a short quickstart with the random
  recommender and the social layer off (the compare view, empty graphs).

- A fidelity report (``validation_name``): ``recworld validate`` on a small
  items file with an interactions log, stored in the same database.

What the tests compare against comes from the simulator too: the social
layer's own cascade statistics and graph, read from run 1's last checkpoint.
No row is written by hand here; malformed-input tests build their own
databases and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from recworld.events import EventType
from recworld.payloads import json_fragment


def scripted_llm(req) -> str:
    """Answers of the scripted LLM server, by the prompt's last line."""
    last = req.prompt_text.rstrip().splitlines()[-1]
    if last.startswith("Request:"):
        return ' fewer romances, more space sci-fi."'  # the prompt starts the request: "I want"
    if last.startswith("A:"):
        return " It is so good, <3 & all\nB: Not yet, adding it to my list.\nA: You will love it."
    if last.startswith("Summary:"):
        return 'I like slow science films."'
    if last.startswith("Post:"):
        return 'You have to see this one."'
    return 'Pretty good page tonight."'


@dataclass(frozen=True)
class RunDB:
    url: str
    run_id: int
    other_run_id: int
    user_id: int  # a user with chats, posts, instructions and memories
    item_id: int  # an item with a share cascade of depth > 0
    cascade_stats: dict[str, Any] = field(default_factory=dict)  # the social layer's cascade_stats() at the end
    cascades: dict[int, tuple[int, int]] = field(default_factory=dict)  # root post -> (size, depth), from the social layer
    edges: list[tuple[int, int]] = field(default_factory=list)  # the social layer's follow graph at the end
    exposure: dict[int, int] = field(default_factory=dict)  # item -> times shown on a page (the world's own counter)
    watch_counts: dict[int, int] = field(default_factory=dict)  # item -> watches, page and social (the world's own counter)


def _world_at_end(engine, run_id: int):
    from recworld.checkpoint import load_world
    from recworld.storage.queries import last_checkpoint

    ck = last_checkpoint(engine, run_id)  # incremental or complete: loaded with its base
    return load_world(ck.state, ck.base)


def _pick_user(engine, run_id: int) -> int:
    """The user with the most chats among those who also posted, gave an instruction the LLM wrote and remember something."""
    from recworld.storage import Event, MemoryRecord

    def users_with(t: EventType, *where) -> dict[int, int]:
        q = select(Event.user_id, func.count()).where(Event.run_id == run_id, Event.type == int(t), *where).group_by(Event.user_id)
        with engine.connect() as con:
            return {int(u): int(n) for u, n in con.execute(q)}

    by_llm = Event.payload.like("%" + json_fragment("by", "llm") + "%")
    chats, posts, instr = users_with(EventType.CHAT), users_with(EventType.POST), users_with(EventType.INSTRUCTION, by_llm)
    with engine.connect() as con:
        mem = {int(u) for (u,) in con.execute(select(MemoryRecord.user_id).where(MemoryRecord.run_id == run_id).distinct())}
    both = [u for u in chats if u in posts and u in instr and u in mem]
    assert both, "the fixture run has no user with chats, posts, instructions and memories; raise the social/LLM rates"
    return max(both, key=lambda u: (chats[u], -u))


@pytest.fixture(scope="session")
def run_db(tmp_path_factory) -> RunDB:
    from recworld.llm.testing import ScriptedLLMServer
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario
    from recworld.storage import connect

    url = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'runs.db'}"
    with ScriptedLLMServer(scripted_llm) as srv:
        s = load_scenario("quickstart").with_overrides(
            **{
                "population.n_users": 80,
                "ticks": 30,
                "brain.kind": "hybrid",
                "brain.params": {"language_rate": 0.05, "max_calls_per_tick": 6, "max_social_calls_per_tick": 6, "reflection_every": 2},
                "llm": {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None},
                "social": {"enabled": True, "post_rate": 0.4, "reshare_rate": 0.8, "chat_rate": 0.15, "follow_rate": 0.1, "unfollow_rate": 0.1},
            }
        )
        out = run_scenario(s, db_url=url, progress=False)
    other = run_scenario(
        load_scenario("quickstart").with_overrides(**{"population.n_users": 40, "ticks": 12, "recommender.name": "random", "social.enabled": False}),
        db_url=url,
        progress=False,
        run_name="quickstart-random",
    )
    from recworld.agents.social import SocialLayer

    engine = connect(url, create=False)
    world = _world_at_end(engine, out.run_id)
    layer = next(x for x in world.layers if isinstance(x, SocialLayer))
    n_items = len(world.catalog)
    stats = layer.cascade_stats()
    cascades = {int(r): (int(layer.cascade_posts[r]), int(layer.cascade_depth.get(r, 0))) for r in layer.cascade_posts}
    deepest = max(cascades, key=lambda r: (cascades[r][1], cascades[r][0], -r))
    assert cascades[deepest][1] >= 1, "the fixture run has no reshare; raise social.reshare_rate"
    item = int(layer.posts[deepest][1])
    return RunDB(
        url=url,
        run_id=out.run_id,
        other_run_id=other.run_id,
        user_id=_pick_user(engine, out.run_id),
        item_id=item,
        cascade_stats=stats,
        cascades=cascades,
        edges=sorted(layer.edges()),
        exposure={i: int(n) for i, n in enumerate(world.exposure[:n_items].tolist()) if n},
        watch_counts={i: int(n) for i, n in enumerate(world.watch_counts[:n_items].tolist()) if n},
    )


@pytest.fixture(scope="session")
def eval_name(run_db) -> str:
    """Name of a real (small) policy evaluation stored in the same database by ``recworld.envs.evaluate``."""
    from recworld.envs.evaluate import evaluate, store_results

    rows = evaluate({"random": "random", "popularity": "popularity"}, seeds=[1000, 1001, 1002], episodes=4, max_episode_steps=30, n_background=10)
    store_results(run_db.url, "nightly eval", rows)
    return "nightly eval"


@dataclass(frozen=True)
class StoredValidation:
    name: str
    report: dict[str, Any]


@pytest.fixture(scope="session")
def validation(run_db, tmp_path_factory) -> StoredValidation:
    """A real fidelity report: ``recworld validate`` on 60 users x 40 items with genre structure, stored in run_db."""
    import json

    import numpy as np

    from recworld.scenarios.cli import main

    d = tmp_path_factory.mktemp("validate")
    rng = np.random.default_rng(0)
    genres = ["Action", "Comedy", "Drama", "Horror"]
    item_g, user_g = rng.integers(0, 4, 40), rng.integers(0, 4, 60)
    (d / "items.csv").write_text("id,title,tags\n" + "".join(f"i{i},{genres[g]} story {i},{genres[g]}\n" for i, g in enumerate(item_g)))
    rows = [(u, i) for u in range(60) for i in range(40) if rng.random() < (0.5 if item_g[i] == user_g[u] else 0.05)]
    (d / "log.csv").write_text(
        "user_id,item_id,rating,timestamp\n" + "".join(f"u{u},i{i},{5 if item_g[i] == user_g[u] else 2},{1000 * u + i}\n" for u, i in rows)
    )
    (d / "s.yaml").write_text(
        "name: small-log\nticks: 4\ncatalog: {source: items_file, path: items.csv, interactions: log.csv, embedding_dim: 8}\n"
        "population: {source: movielens}\nworld: {slate_size: 4, max_pages: 2}\nrecommender: {name: popularity}\n"
    )
    out = d / "report.json"
    args = [
        "validate",
        str(d / "s.yaml"),
        "--recommenders",
        "random,popularity",
        "--ticks",
        "4",
        "--db",
        run_db.url,
        "--json",
        str(out),
        "--name",
        "fidelity check",
    ]
    assert main(args) == 0
    return StoredValidation(name="fidelity check", report=json.loads(out.read_text()))


@pytest.fixture(scope="session")
def engine(run_db):
    from recworld.storage import connect

    return connect(run_db.url, create=False)


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
    # A checkpoint a day: the sweep pages read summaries and metrics, and checkpoints take most of a tick's time.
    base = load_scenario("quickstart").with_overrides(**{"population.n_users": 30, "ticks": 48, "social.enabled": False, "storage.checkpoint_every": 24})
    out = run_sweep(base, [0, 1], ["random", "popularity"], db_url=url, name="nightly:qs", use_ray=False)
    assert not out.failed
    return SweepDB(url=url, name="nightly:qs")


@pytest.fixture(scope="session")
def sweep_client(sweep_db):
    from fastapi.testclient import TestClient

    from recworld.dashboard.app import create_app

    with TestClient(create_app(sweep_db.url, poll_interval=0.05)) as c:
        yield c


@dataclass(frozen=True)
class LanguageRun:
    url: str
    run_id: int
    user_id: int  # a user who was interviewed
    counts: dict  # what the scripted model answered, per category


@pytest.fixture(scope="session")
def language_run(tmp_path_factory) -> LanguageRun:
    """A hybrid run (its own database) whose model is scripted to make a base model's mistakes, and one interview."""
    from tests_support import LanguageScript

    from recworld.llm.testing import ScriptedLLMServer
    from recworld.scenarios.interview import interview
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario
    from recworld.storage import connect

    script = LanguageScript()
    with ScriptedLLMServer(script) as srv:
        s = load_scenario("quickstart").with_overrides(
            **{
                "population.n_users": 40,
                "ticks": 10,
                "brain.kind": "hybrid",
                "brain.params": {"language_rate": 0.3, "max_calls_per_tick": 8, "max_social_calls_per_tick": 8},
                "llm": {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None, "timeout_s": 5.0},
            }
        )
        url = f"sqlite:///{tmp_path_factory.mktemp('lang') / 'runs.db'}"
        run_id = run_scenario(s, db_url=url, progress=False, run_name="quickstart-language").run_id
        counts = script.counts()
        interview(connect(url), run_id, [3], "What would you change about the app?")
    return LanguageRun(url, run_id, 3, counts)


@pytest.fixture(scope="session")
def language_client(language_run):
    from fastapi.testclient import TestClient

    from recworld.dashboard.app import create_app

    with TestClient(create_app(language_run.url, poll_interval=0.05)) as c:
        yield c


@dataclass
class ConversationRun:
    url: str
    run_id: int


@pytest.fixture(scope="session")
def conversation_run(tmp_path_factory) -> ConversationRun:
    """The shipped ``conversational`` scenario, small, with templates (its own database)."""
    from recworld.scenarios.runner import run_scenario
    from recworld.scenarios.schema import load_scenario

    url = f"sqlite:///{tmp_path_factory.mktemp('conv') / 'runs.db'}"
    s = load_scenario("conversational").with_overrides(**{"population.n_users": 120, "ticks": 24, "conversation.rate": 0.4})
    return ConversationRun(url, run_scenario(s, db_url=url, progress=False).run_id)


@pytest.fixture(scope="session")
def conversation_client(conversation_run):
    from fastapi.testclient import TestClient

    from recworld.dashboard.app import create_app

    with TestClient(create_app(conversation_run.url, poll_interval=0.05)) as c:
        yield c
