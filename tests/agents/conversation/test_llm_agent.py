"""The LLM conversational agent against a scripted OpenAI-compatible server on 127.0.0.1."""

import json

import numpy as np
from tests_support import run_collecting

from recworld.agents.conversation.layer import ConversationConfig, ConversationLayer
from recworld.agents.conversation.llm_agent import LLMAgent
from recworld.events import EventType
from recworld.llm.testing import ScriptedLLMServer
from recworld.payloads import ConversationEndPayload, TurnPayload


def _llm(srv):
    return {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None, "backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 2.0}


def _run(make_world, script, ticks=8):
    with ScriptedLLMServer(script) as srv:
        agent = LLMAgent(llm=_llm(srv))
        w = make_world(n=40, recommender="popularity", seed=4)
        w.add_layer(ConversationLayer(ConversationConfig(rate=1.0, ask_about_rate=0.0), agent))
        ev = run_collecting(w, ticks)
        w.close()
    return w, agent, ev


def _turns(ev):
    return [(TurnPayload.read(ev.payload[int(i)]), ev.text[int(i)]) for i in np.flatnonzero(ev.of_type(EventType.CONVERSE))]


def test_an_invented_title_never_reaches_the_user(make_world):
    """The model proposes a title that is not in the catalog (and an id no tool returned): the user only sees tool results."""
    plan = {"task": "recommend", "items": ["Totally Real Movie (2031)", "1500"], "text": "Watch Totally Real Movie!", "profile": "Likes made-up films."}
    w, agent, ev = _run(make_world, lambda req: json.dumps(plan))
    turns = _turns(ev)
    recs = [(p, t) for p, t in turns if p.act == "recommend"]
    assert recs and agent.stats["unknown_items"] >= len(recs)
    assert "Totally Real Movie" not in " ".join(t for _, t in turns)
    assert all(1500 not in p.items for p, _ in recs)
    assert agent.stats["calls"] > 0 and agent.stats["fallbacks"] == 0


def test_the_plan_drives_the_turn_and_garbage_falls_back_cleanly(make_world):
    def script(req):
        wishes = next((ln for ln in req.prompt_text.splitlines() if ln.startswith("Known wishes:")), "")
        if "'genre'" in wishes and "'era'" not in wishes:
            return "not json at all"  # every time, repair re-asks included
        if "Known wishes: none" in req.prompt_text:
            return json.dumps({"task": "ask", "attribute": "genre", "text": "what are you in the mood for?", "profile": "New user."})
        return json.dumps({"task": "search", "query": "comedy 1990s", "profile": "Wants something specific."})

    w, agent, ev = _run(make_world, script)
    turns = _turns(ev)
    agent_turns = [p for p, _ in turns if p.role == "agent"]
    assert any(p.act == "ask" and p.attribute == "genre" for p in agent_turns)
    assert any("search" in p.tools for p in agent_turns if p.act == "recommend")
    assert any(t == "what are you in the mood for?" for _, t in turns)
    assert agent.stats["fallbacks"] > 0  # the unparseable answers, planned by the policy instead
    ends = [ConversationEndPayload.read(ev.payload[int(i)]) for i in np.flatnonzero(ev.of_type(EventType.CONVERSATION_END))]
    assert ends and all(e.agent == "llm" and e.outcome != "failed" for e in ends)
