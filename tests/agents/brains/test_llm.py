"""The llm and hybrid brains against a real HTTP fake (ScriptedLLMServer on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections import Counter

import numpy as np
import pytest
from sqlalchemy import func, select
from tests_support import log_rows, run_collecting

from recworld.agents.brains.llm import HybridBrain, LLMBrain, build_brain_from_config, parse_chat
from recworld.agents.brains.llm_text import PROMPT_NAMES, prompt_template, sanitize
from recworld.checkpoint import dump_world, load_world
from recworld.errors import ConfigError
from recworld.events import EventType
from recworld.llm.testing import Fault, ScriptedLLMServer
from recworld.scenarios.runner import run_scenario
from recworld.storage import Event, LLMCall, TickMetrics, connect

DECISION = {"watch": [1, 3], "ratings": [5, 2], "feeling": "Two picks worth my evening.", "leave": False, "instruction": ""}


def answer(req) -> str:
    """A scripted 'model': JSON for decide calls, short text for language calls."""
    if req.json_schema is not None:
        return json.dumps(DECISION)
    last = req.prompt_text.rstrip().splitlines()[-1]
    if last.startswith("Request:"):
        return ' more horror movies, please." extra'  # the prompt began it: "I want"
    if last.startswith("A:"):
        return "\nB: Loved every minute of that movie.\nA: Same here."
    if last.startswith("Post:"):
        return 'Go watch this tonight!"'
    return 'Not bad at all."'


@pytest.fixture
def server():
    with ScriptedLLMServer(answer) as srv:
        yield srv


def llm_section(srv, **kw):
    d = {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None, "backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 2.0}
    d.update(kw)
    return d


class Records:
    """A stand-in recorder that keeps what the brain reports."""

    def __init__(self):
        self.llm, self.memories, self.edges, self.items = [], [], [], []

    def add_llm_call(self, r):
        self.llm.append(r)

    def add_memory(self, *a):
        self.memories.append(a)

    def add_edges(self, e):
        self.edges.extend(e)

    def add_items(self, rows):
        self.items.extend(rows)


def make(make_world, kind, srv, params=None, n=40, recommender="mf", rec_params=None, **llm):
    brain = build_brain_from_config(kind, params or {}, llm_section(srv, **llm), seed=3)
    world = make_world(n=n, brain=brain, recommender=recommender, params=rec_params)
    world.add_layer(brain)
    rec = Records()
    brain.attach_recorder(rec)
    return world, brain, rec


# ------------------------------------------------------------------ llm brain
def test_llm_brain_parses_structured_decisions(make_world, server):
    world, brain, rec = make(make_world, "llm", server)
    try:
        ev = run_collecting(world, 3)
    finally:
        brain.close()
    decide = [r for r in rec.llm if r["purpose"] == "decide"]
    assert decide and not any(r["fell_back"] for r in decide)
    # Every page followed the script: items 1 and 3 watched, rated 5 and 2.
    w = ev.of_type(EventType.WATCH)
    pages = int(ev.of_type(EventType.WATCH, EventType.SKIP).sum()) // 10
    assert pages == len(decide) and int(w.sum()) == 2 * pages
    r = ev.value[ev.of_type(EventType.RATE)]
    assert sorted(set(r.tolist())) == [2.0, 5.0]
    feelings = [ev.text[i] for i in np.flatnonzero(ev.of_type(EventType.FEELING))]
    assert feelings and set(feelings) == {"Two picks worth my evening."}
    # The schema went to the server and the prompt carried persona and page.
    req = next(q for q in server.requests if q.json_schema is not None)
    assert set(req.json_schema["properties"]) >= {"watch", "ratings", "leave", "instruction"}
    assert "Loves" in req.prompt_text and "1. " in req.prompt_text
    assert not ev.of_type(EventType.FALLBACK).any()


def test_llm_brain_faults_fall_back_without_losing_events(small_scenario, server):
    """500s, timeouts, malformed bodies and invalid JSON: the run completes and accounts for all."""

    def script(req):
        # About a quarter of the users (keyed on their prompt) answer prose, even when re-asked.
        if req.json_schema is not None and _bucket(req) == 0:
            return "I refuse to answer in JSON"
        return answer(req)

    server.script = script
    server.inject(*([Fault.http(500)] * 6 + [Fault.timeout(1.0)] * 3 + [Fault.malformed_json()] * 3 + [Fault.truncated_json()] * 2))
    llm = llm_section(server, timeout_s=0.4, max_retries=1, repair_attempts=1, breaker_failures=50)
    s = small_scenario(**{"population.n_users": 80, "ticks": 8, "brain.kind": "llm", "recommender.name": "mf", "llm": llm})
    out = run_scenario(s, progress=False)
    assert out.status == "completed"
    eng = connect(s.storage.url, create=False)
    with eng.connect() as con:
        calls = con.execute(
            select(LLMCall.purpose, LLMCall.retries, LLMCall.fell_back, LLMCall.error, LLMCall.user_id, LLMCall.tick).where(LLMCall.run_id == out.run_id)
        ).all()
        fb_events = con.execute(select(Event.user_id, Event.tick).where(Event.run_id == out.run_id, Event.type == int(EventType.FALLBACK))).all()
        shown = con.execute(select(func.sum(TickMetrics.impressions)).where(TickMetrics.run_id == out.run_id)).scalar()
    counts = Counter(r[2] for r in log_rows(eng, out.run_id))
    decide = [c for c in calls if c.purpose == "decide"]
    assert sum(c.retries for c in decide) >= 5  # transport retries and repair re-asks
    fell = [c for c in decide if c.fell_back]
    errors = {(c.error or "").split(":")[0] for c in fell}
    assert "invalid output" in errors and errors & {"HTTP 500", "timeout", "bad response"}
    assert len(fell) < len(decide)  # the rest were answered
    # One FALLBACK event per fallen-back decision, for the same user and tick.
    assert sorted((c.user_id, c.tick) for c in fell) == sorted(tuple(r) for r in fb_events)
    # No event lost: every page shown is logged item by item.
    assert counts[int(EventType.WATCH)] + counts[int(EventType.SKIP)] == shown == 10 * len(decide)


def _bucket(req) -> int:
    head = req.prompt_text.split("What you remember")[0]
    return int(hashlib.sha256(head.encode()).hexdigest(), 16) % 4


def test_cached_rerun_reproduces_events_with_zero_llm_calls(small_scenario, server, tmp_path):
    llm = llm_section(server, cache_path=str(tmp_path / "cache.db"))
    s = small_scenario(
        **{
            "population.n_users": 25,
            "ticks": 4,
            "brain.kind": "hybrid",
            "brain.params": {"language_rate": 0.5, "max_calls_per_tick": 20, "max_social_calls_per_tick": 20},
            "recommender.name": "linucb",
            "llm": llm,
            "social": {"enabled": True, "post_rate": 0.5, "chat_rate": 0.3},
        }
    )
    a = run_scenario(s, progress=False)
    n_requests = server.request_count
    assert n_requests > 0
    b = run_scenario(s, progress=False)
    assert server.request_count == n_requests  # zero LLM calls on the re-run
    eng = connect(s.storage.url, create=False)

    def digest(run_id):
        rows = [r[:6] for r in log_rows(eng, run_id)]
        return hashlib.sha256(repr(rows).encode()).hexdigest(), len(rows)

    assert digest(a.run_id) == digest(b.run_id)
    with eng.connect() as con:
        cached = con.execute(select(LLMCall.cached).where(LLMCall.run_id == b.run_id)).scalars().all()
        texts = con.execute(select(Event.text).where(Event.run_id == b.run_id, Event.type == int(EventType.FEELING))).scalars().all()
    assert cached and all(cached)
    assert "Not bad at all." in texts


# ---------------------------------------------------------------- hybrid brain
def test_hybrid_language_budget_templates_and_one_burst_per_page(make_world, server):
    server.script = lambda req: '"' if "Shown:" in req.prompt_text and hashlib.sha256(req.prompt_text.encode()).digest()[0] % 3 == 0 else answer(req)
    world, brain, rec = make(
        make_world, "hybrid", server, {"language_rate": 0.6, "max_calls_per_tick": 5, "max_social_calls_per_tick": 0, "dissatisfied_share": 0.3}, n=60
    )
    bursts = []
    rt = brain.runtime
    orig = rt.submit_many
    rt.submit_many = lambda reqs: bursts.append(len(reqs)) or orig(reqs)
    pages = []
    orig_decide = brain.decide
    brain.decide = lambda ctx: pages.append(len(ctx.users)) or orig_decide(ctx)
    try:
        ev = run_collecting(world, 6)
    finally:
        brain.close()
    assert len(bursts) <= len(pages) and max(bursts) > 1  # a page-batch's calls go as one burst
    per_tick = {}
    for r in rec.llm:
        per_tick[r["tick"]] = per_tick.get(r["tick"], 0) + 1
    assert max(per_tick.values()) <= 5
    feel = [ev.text[i] for i in np.flatnonzero(ev.of_type(EventType.FEELING))]
    instr = [ev.text[i] for i in np.flatnonzero(ev.of_type(EventType.INSTRUCTION))]
    assert "Not bad at all." in feel and "I want more horror movies, please." in instr
    # Unusable answers became template text, recorded as fallbacks.
    bad = [r for r in rec.llm if r["rejected"] == "empty"]
    assert bad and all(r["fell_back"] for r in bad)
    assert brain.stats["templated"] >= len(bad)
    assert not ev.of_type(EventType.FALLBACK).any()  # decisions never fell back: utility made them
    assert rec.memories  # memories persisted


def test_instruction_moves_the_next_slates(make_world, ml):
    """A scripted 'more horror movies' instruction re-ranks mf's next pages towards horror."""
    horror = {i for i, it in enumerate(ml.items) if "Horror" in it.tags}

    def horror_share(text):
        def script(req):
            return " " + text + '"'  # after the prompt's "I want"

        with ScriptedLLMServer(script) as srv:
            world, brain, _ = make(
                make_world,
                "hybrid",
                srv,
                {"language_rate": 0.0, "dissatisfied_share": 1.0, "max_calls_per_tick": None, "memory": False},
                n=40,
                rec_params={"instruction_weight": 3.0},
            )
            try:
                ev = run_collecting(world, 30)
            finally:
                brain.close()
        assert world.instruction_embeddings and len(world.instructions) > 5
        first = {}
        for i in np.flatnonzero(ev.of_type(EventType.INSTRUCTION)):
            first.setdefault(int(ev.user[i]), int(i))
        shown = [
            int(ev.item[i]) for i in np.flatnonzero(ev.of_type(EventType.WATCH, EventType.SKIP)) if int(ev.user[i]) in first and i > first[int(ev.user[i])]
        ]
        return np.mean([x in horror for x in shown])

    more_horror = horror_share("more horror movies")
    more_romance = horror_share("more romance movies")
    assert more_horror > 0.3 and more_horror > 3 * more_romance


# --------------------------------------------------------------- plumbing
def test_checkpoint_drops_runtime_and_resumes(make_world, server):
    world, brain, rec = make(make_world, "hybrid", server, {"language_rate": 0.5})
    run_collecting(world, 2)
    blob = dump_world(world)
    brain.close()
    w2 = load_world(blob)
    assert w2.brain._rt is None and w2.brain._recorder is None and w2.instruction_encoder is None
    w2.reattach_layers()
    assert w2.instruction_encoder is not None
    w2.brain.llm_config = brain.llm_config
    w2.run(2)
    assert w2.brain.stats["calls"] > brain.stats["calls"]
    w2.brain.close()
    assert w2.user_agents[0].memory is not None and w2.user_agents[0].memory.store is w2.brain.memory


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"brain\.params\.bogus"):
        build_brain_from_config("hybrid", {"bogus": 1}, {})
    with pytest.raises(ConfigError, match=r"brain\.params\.language_rate"):
        build_brain_from_config("hybrid", {"language_rate": 2}, {})
    with pytest.raises(ConfigError, match=r"llm\.concurrency"):
        build_brain_from_config("llm", {}, {"concurrency": 0})
    with pytest.raises(ConfigError, match=r"brain\.kind"):
        build_brain_from_config("oracle", {}, {})
    assert isinstance(build_brain_from_config("hybrid", {}, {}), HybridBrain)
    b = build_brain_from_config("llm", {}, {"backend": "openai", "base_url": "http://127.0.0.1:9/v1"})
    assert isinstance(b, LLMBrain) and b._rt is None  # nothing started until the first call
    assert pickle.loads(pickle.dumps(b)).params == b.params


def test_sanitize_and_chat_parsing():
    assert sanitize('  Great picks tonight." And more') == "Great picks tonight."
    assert sanitize('"') is None and sanitize("") is None and sanitize("\n\n") is None
    assert sanitize("Viewer: loves Comedy") is None
    assert sanitize("View: I like action.") == "I like action."
    assert len(sanitize("word " * 200)) <= 221
    assert parse_chat(" Seen it?\nB: Yes!\nA: Great.\nB: Agreed.\nA: extra") == ["Seen it?", "Yes!", "Great.", "Agreed."]
    assert parse_chat(" only one line") is None
    for name in PROMPT_NAMES:
        assert prompt_template(name).strip()


@pytest.mark.slow
def test_hybrid_on_the_embedded_model_writes_real_text(small_scenario):
    """A few ticks with the bundled Gemma 3 270M: every call is answered and judged; some model text reaches the log."""
    from recworld.llm.grounding import REASONS

    s = small_scenario(
        **{
            "ticks": 3,
            "population.n_users": 40,
            "brain.kind": "hybrid",
            "brain.params": {"language_rate": 0.05, "dissatisfied_share": 1.0, "max_calls_per_tick": 6, "max_social_calls_per_tick": 6},
            "llm": {"cache_path": None, "timeout_s": 300},
            "social": {"enabled": True, "post_rate": 1.0, "chat_rate": 1.0, "feed_views": 0},
        }
    )
    out = run_scenario(s, progress=False)
    assert out.status == "completed"
    eng = connect(s.storage.url, create=False)
    with eng.connect() as con:
        calls = con.execute(
            select(LLMCall.purpose, LLMCall.fell_back, LLMCall.tokens_out, LLMCall.rejected, LLMCall.error).where(LLMCall.run_id == out.run_id)
        ).all()
        texts = {
            t: con.execute(select(Event.text, Event.payload).where(Event.run_id == out.run_id, Event.type == int(t))).all()
            for t in (EventType.POST, EventType.CHAT, EventType.INSTRUCTION)
        }
    assert {c.purpose for c in calls} >= {"post", "chat", "instruction"}
    # The model answered every call (no faults); each answer was kept or rejected for a named reason.
    assert all(c.tokens_out > 0 or c.rejected == "empty" for c in calls) and not any(c.fell_back and c.rejected is None for c in calls), calls
    assert all(c.rejected in REASONS for c in calls if c.rejected is not None)
    for t, rows in texts.items():
        assert rows and all(isinstance(x, str) and x.strip() and "\n" not in x for x, _p in rows), t
    kept = [x for rows in texts.values() for x, p in rows if '"by": "llm"' in (p or "")]
    assert kept, "no model text survived the grounding check"


def test_sanitize_rejects_fragments():
    from recworld.agents.brains.llm_text import sanitize

    for fragment in ("not me.", "Reminds me of:", "I would recommend the", "ok", "(1995) — a take by user 700, (1996)", "Star Wars (1977);"):
        assert sanitize(fragment) is None
    assert sanitize("Best movie of the eighties, easily.") == "Best movie of the eighties, easily."
