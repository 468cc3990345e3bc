"""Conversation export: chats grouped into conversations, user<->recommender exchanges, from SQL."""

import json

import pytest

from recworld.errors import ConfigError
from recworld.export import export_conversations
from recworld.llm.testing import ScriptedLLMServer
from recworld.storage import connect
from scenarios.runner import run_scenario


def script(req):
    last = req.prompt_text.rstrip().splitlines()[-1]
    if last.startswith("Request:"):
        return 'More horror movies, please."'
    if last.startswith("A:"):
        return " Have you seen it?\nB: Yes, twice.\nA: Same!"
    return 'Pretty good page."'


def test_export_conversations_jsonl(small_scenario, tmp_path):
    with ScriptedLLMServer(script) as srv:
        llm = {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None}
        s = small_scenario(**{
            "ticks": 10, "population.n_users": 60, "brain.kind": "hybrid",
            "brain.params": {"language_rate": 0.5, "dissatisfied_share": 0.5, "max_calls_per_tick": None, "max_social_calls_per_tick": None, "memory": False},
            "llm": llm, "social": {"enabled": True, "chat_rate": 0.5, "post_rate": 0.2},
        })
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
    assert c["messages"][0]["text"] == "Have you seen it?"
    e = ex[0]
    assert e["instruction"] == "More horror movies, please."
    assert len(e["page"]) == 10 and all(p["title"] for p in e["page"])
    assert any(r["feeling"] == "Pretty good page." for r in ex)
    nxt = [r for r in ex if r["next_page"]]
    assert nxt and nxt[0]["next_tick"] >= nxt[0]["tick"]
    with pytest.raises(ConfigError, match="no run with id 999"):
        export_conversations(eng, 999, tmp_path / "x.jsonl")
