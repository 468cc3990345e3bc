"""Conversation export: chats grouped into conversations, user<->recommender exchanges, from SQL."""

import json

import pytest
from tests_support import log_rows

from recworld.errors import ConfigError
from recworld.events import EventType
from recworld.export import export_conversations
from recworld.llm.testing import ScriptedLLMServer
from recworld.scenarios.runner import run_scenario
from recworld.storage import connect


def script(req):
    last = req.prompt_text.rstrip().splitlines()[-1]
    if last.startswith("Request:"):
        return ' more horror movies, please."'  # the prompt began it: "I want"
    if last.startswith("A:"):
        return "\nB: Yes, twice, what a movie.\nA: Same!"  # after A's first line, which the prompt began
    return 'Pretty good page."'


def test_export_conversations_jsonl(small_scenario, tmp_path):
    with ScriptedLLMServer(script) as srv:
        llm = {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None}
        s = small_scenario(
            **{
                "ticks": 10,
                "population.n_users": 60,
                "brain.kind": "hybrid",
                "brain.params": {
                    "language_rate": 0.5,
                    "dissatisfied_share": 0.5,
                    "max_calls_per_tick": None,
                    "max_social_calls_per_tick": None,
                    "memory": False,
                },
                "llm": llm,
                "social": {"enabled": True, "chat_rate": 0.5, "post_rate": 0.2},
            }
        )
        out = run_scenario(s, progress=False)
    eng = connect(s.storage.url, create=False)
    path = tmp_path / "conv.jsonl"
    n = export_conversations(eng, out.run_id, path)
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert n == len(recs) > 0
    chats = [r for r in recs if r["type"] == "chat"]
    ex = [r for r in recs if r["type"] == "exchange"]
    assert chats and ex
    c = chats[0]
    assert 2 <= len(c["messages"]) <= 4 and c["item_title"] and len(set(c["users"])) == 2
    assert {m["user"] for m in c["messages"]} == set(c["users"])
    assert c["messages"][0]["text"].startswith("Have you seen ") and c["messages"][1]["text"] == "Yes, twice, what a movie."
    # Users who dislike horror could not say it (the grounding check): their instruction is the template.
    e = next(r for r in ex if r["instruction"] == "I want more horror movies, please.")
    assert len(e["page"]) == 10 and all(p["title"] for p in e["page"])
    assert any(r["feeling"] == "Pretty good page." for r in ex)
    nxt = [r for r in ex if r["next_page"]]
    assert nxt and nxt[0]["next_tick"] >= nxt[0]["tick"]
    with pytest.raises(ConfigError, match="no run with id 999"):
        export_conversations(eng, 999, tmp_path / "x.jsonl")


def test_export_crs_conversations_from_a_conversational_run(small_scenario, tmp_path):
    """Conversations with the platform's agent: messages with roles and item mentions, the hidden intent, the outcome."""
    s = small_scenario(**{"ticks": 8, "population.n_users": 40, "conversation": {"enabled": True, "rate": 1.0, "mode": "target"}})
    out = run_scenario(s, progress=False)
    eng = connect(s.storage.url, create=False)
    path = tmp_path / "crs.jsonl"
    export_conversations(eng, out.run_id, path)
    recs = [json.loads(line) for line in path.read_text().splitlines() if '"type": "crs"' in line]
    assert recs
    with eng.connect() as con:
        from sqlalchemy import func, select

        from recworld.storage import Event

        n_end = con.execute(select(func.count()).where(Event.run_id == out.run_id, Event.type == int(EventType.CONVERSATION_END))).scalar()
    assert len(recs) == n_end
    for r in recs:
        assert r["messages"][0]["role"] == "user" and {m["role"] for m in r["messages"]} == {"user", "agent"}
        assert r["intent"]["mode"] == "target" and r["intent"]["target"]["title"]
        assert r["outcome"] in ("success", "abandoned", "left", "ended_by_agent", "failed") and r["agent"] == "policy"
        mentioned = [m for msg in r["messages"] for m in msg["items"]]
        assert all(m["title"] for m in mentioned)
        if r["outcome"] == "success":
            assert r["intent"]["target"] in r["accepted"]


def test_export_metrics_and_events_csv(small_scenario, tmp_path):
    import csv

    from sqlalchemy import select

    from recworld.export import export_events, export_metrics
    from recworld.storage.models import TickMetrics

    s = small_scenario(**{"ticks": 6, "population.n_users": 40})
    out = run_scenario(s, progress=False)
    eng = connect(s.storage.url, create=False)
    n = export_metrics(eng, out.run_id, tmp_path / "m.csv")
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert n == len(rows) == 6 and [int(r["tick"]) for r in rows] == list(range(6))
    with eng.connect() as con:
        wr = con.execute(select(TickMetrics.watch_rate).where(TickMetrics.run_id == out.run_id).order_by(TickMetrics.tick)).scalars().all()
    assert [float(r["watch_rate"]) for r in rows] == pytest.approx(wr)
    log = log_rows(eng, out.run_id)
    n_events, n_watch = len(log), sum(r[2] == int(EventType.WATCH) for r in log)
    m = export_events(eng, out.run_id, tmp_path / "e.csv", chunk=97)  # several keyset pages
    ev = list(csv.DictReader((tmp_path / "e.csv").open()))
    assert m == len(ev) == n_events
    assert sum(r["type"] == "watch" for r in ev) == n_watch
    assert [int(r["tick"]) for r in ev] == sorted(int(r["tick"]) for r in ev)
    with pytest.raises(ConfigError, match="no run with id 99"):
        export_metrics(eng, 99, tmp_path / "x.csv")
