"""The language pipeline: texts written in the background, heard at a fixed tick, checked, counted (scripted server on 127.0.0.1)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from tests_support import LanguageScript, event_log_hash

from recworld.events import EventType
from recworld.llm.testing import ScriptedLLMServer
from recworld.scenarios.runner import run_scenario
from recworld.storage import Event, LLMCall, TickMetrics, connect


def _llm(srv, **kw):
    # A long timeout: on a loaded machine a retried request would be answered (and counted by the script) twice.
    d = {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None, "backoff_s": 0.01, "timeout_s": 60.0, "concurrency": 8}
    d.update(kw)
    return d


def _scenario(small_scenario, srv, lag=2, **over):
    base = {
        "population.n_users": 80,
        "ticks": 16,
        "brain.kind": "hybrid",
        "brain.params": {"language_rate": 0.3, "max_calls_per_tick": 12, "max_social_calls_per_tick": 12, "language_lag": lag, "reflection_every": 2},
        "recommender.name": "linucb",
        "llm": _llm(srv),
        "social": {"enabled": True, "post_rate": 0.4, "chat_rate": 0.3},
    }
    base.update(over)
    return small_scenario(**base)


def test_pipelined_language_gives_the_same_event_log_twice(small_scenario):
    """Answers arrive at different times in the two runs (random latency); the logs are identical."""
    import random

    script = LanguageScript()
    jitter = random.Random(0)

    def slow(req):
        import time

        time.sleep(jitter.random() * 0.03)  # the order in which answers come back varies from run to run
        return script(req)

    with ScriptedLLMServer(slow) as srv:
        s = _scenario(small_scenario, srv)
        a = run_scenario(s, progress=False)
        b = run_scenario(s, progress=False)
    eng = connect(s.storage.url, create=False)
    ha, na = event_log_hash(eng, a.run_id)
    assert (ha, na) == event_log_hash(eng, b.run_id) and na > 0
    with eng.connect() as con:
        rows = con.execute(
            select(Event.tick, Event.type, Event.payload).where(Event.run_id == a.run_id, Event.type.in_([int(EventType.FEELING), int(EventType.INSTRUCTION)]))
        ).all()
    assert rows
    # Texts asked for in tick t are heard at the start of tick t + lag (or at the end of the last tick).
    for tick, _t, payload in rows:
        asked = json.loads(payload)["asked"]
        assert tick == min(asked + 2, s.ticks - 1)


def test_grounding_rejects_and_counts_what_a_base_model_gets_wrong(small_scenario):
    """Invented titles, persona contradictions, echoes, off-topic and empty texts are rejected, templated and counted per reason."""
    script = LanguageScript()
    with ScriptedLLMServer(script) as srv:
        s = _scenario(small_scenario, srv, lag=1)
        out = run_scenario(s, progress=False)
    eng = connect(s.storage.url, create=False)
    with eng.connect() as con:
        by_reason = dict(con.execute(select(LLMCall.rejected, func.count()).where(LLMCall.run_id == out.run_id).group_by(LLMCall.rejected)).all())
        fell = con.execute(select(func.count()).where(LLMCall.run_id == out.run_id, LLMCall.fell_back, LLMCall.rejected.is_(None))).scalar()
        texts = con.execute(
            select(Event.type, Event.text, Event.payload).where(Event.run_id == out.run_id, Event.type.in_([int(t) for t in _TEXT_TYPES]))
        ).all()
        retries = con.execute(select(func.sum(LLMCall.retries)).where(LLMCall.run_id == out.run_id)).scalar()
    got = script.counts()
    assert fell == 0 and retries == 0
    # Every answer was counted under the reason its fault calls for; good answers were kept.
    assert by_reason == {(None if c == "good" else c): n for c, n in got.items()}, (by_reason, got)
    assert set(by_reason) == {None, "invented_title", "contradicts_persona", "echo", "off_topic", "empty"}
    # No rejected text reached the log: no invented film, no contradiction, no echo, nothing off topic.
    for _t, text, _p in texts:
        assert "Love on the Beach" not in text and "die-hard" not in text and "girl in the picture" not in text
        assert "just sing-alongs" not in text and "cowboys and shootouts" not in text  # the examples of the prompts
    authors = {json.loads(p)["by"] for _t, _x, p in texts}
    assert authors == {"llm", "template"}


_TEXT_TYPES = (EventType.FEELING, EventType.INSTRUCTION, EventType.POST, EventType.CHAT)


def test_lag_zero_hears_in_the_same_tick_and_accounts_per_tick(small_scenario):
    script = LanguageScript({"good": 1})
    with ScriptedLLMServer(script) as srv:
        s = _scenario(small_scenario, srv, lag=0, ticks=6)
        out = run_scenario(s, progress=False)
    eng = connect(s.storage.url, create=False)
    with eng.connect() as con:
        rows = con.execute(select(Event.tick, Event.payload).where(Event.run_id == out.run_id, Event.type == int(EventType.FEELING))).all()
        per_tick = dict(con.execute(select(LLMCall.tick, func.count()).where(LLMCall.run_id == out.run_id).group_by(LLMCall.tick)).all())
        metric = dict(con.execute(select(TickMetrics.tick, TickMetrics.llm_calls).where(TickMetrics.run_id == out.run_id)).all())
    assert rows and all(t == json.loads(p)["asked"] for t, p in rows)
    # Calls are accounted at the tick their text is heard, and the tick's metrics count them.
    assert per_tick and all(metric[t] == n for t, n in per_tick.items())


@pytest.mark.parametrize("lag", [1, 3])
def test_texts_asked_for_in_the_last_ticks_are_heard_at_the_end(small_scenario, lag):
    script = LanguageScript({"good": 1})
    with ScriptedLLMServer(script) as srv:
        s = _scenario(small_scenario, srv, lag=lag, ticks=5)
        out = run_scenario(s, progress=False)
    eng = connect(s.storage.url, create=False)
    with eng.connect() as con:
        asked = con.execute(select(func.count()).where(LLMCall.run_id == out.run_id)).scalar()
    # Every request made was heard and accounted (none left in flight when the run ended).
    assert asked == len(script.categories) > 0
