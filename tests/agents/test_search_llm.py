"""Search queries written by an LLM brain (hybrid) against a scripted OpenAI-compatible server on 127.0.0.1."""

import json
import re

import numpy as np
from tests_support import run_collecting

from recworld.agents.brains.llm import build_brain_from_config
from recworld.agents.search import SearchConfig, SearchLayer
from recworld.events import EventType
from recworld.llm.testing import ScriptedLLMServer
from recworld.payloads import SearchPayload
from recworld.search import title_words

DECISION = {"watch": [1], "ratings": [4], "feeling": "Fine.", "leave": False, "instruction": ""}


def _wanted(req):
    return next(ln for ln in req.prompt_text.splitlines()[::-1] if ln.startswith("Viewer:")).split("Looking for: ", 1)[1].rstrip(".")


def _world(make_world, srv, budget=None, **search):
    llm = {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None, "backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 2.0}
    brain = build_brain_from_config("hybrid", {"max_search_calls_per_tick": budget}, llm, seed=3)
    w = make_world(n=40, brain=brain, recommender="popularity", seed=2)
    w.add_layer(brain)
    w.add_layer(SearchLayer(SearchConfig(rate=1.0, **search)))
    return w


def _searches(ev):
    for i in np.flatnonzero(ev.of_type(EventType.SEARCH)):
        yield int(ev.tick[i]), SearchPayload.read(ev.payload[int(i)]), ev.text[int(i)]


def _script(query_for):
    def answer(req):
        if req.json_schema is not None:
            return json.dumps(DECISION)
        if req.prompt_text.rstrip().endswith('Query: "'):
            return query_for(_wanted(req))
        return 'Nice."'

    return answer


def _query_for(wanted):
    """What a good model types: the title it was told the user knows, else the first genre it was told."""
    m = re.search(r'know as "(.+)"', wanted)
    return f"{m.group(1).lower()}" if m else f"good {wanted.split(' film')[0].removeprefix('a ').split(' or ')[0]} films"


def test_the_llm_writes_queries_about_what_the_user_is_after_and_the_results_follow_them(make_world):
    with ScriptedLLMServer(_script(_query_for)) as srv:
        w = _world(make_world, srv, known_item_share=1.0)
        layer = w.layers[-1]
        ev = run_collecting(w, 12)
        w.close()
    found = list(_searches(ev))
    llm = [(p, q) for _, p, q in found if p.by == "llm"]
    assert len(llm) >= 10
    for p, q in llm:
        if p.intent == "known_item":
            assert set(title_words(q)) <= set(title_words(w.catalog.titles[p.wanted]))  # the title they know, by name
        else:
            assert q.startswith("good ") and any(g.lower() in q for g in w.catalog.tags[p.wanted])  # one of the genres
        # The platform's search answered the LLM's query, not the template's.
        assert p.results == layer.engine.search(q, len(p.results)).items.tolist()
    assert np.mean([p.wanted in p.results for p, _ in llm if p.intent == "known_item"]) >= 0.6


def test_queries_that_are_sentences_or_name_other_titles_fall_back_to_the_template(make_world, catalog):
    bad = ["I would really love to find a great movie to watch tonight with my friends", "Toy Story", ""]
    n = {"i": 0}

    def query_for(wanted):
        n["i"] += 1
        return bad[n["i"] % len(bad)]

    with ScriptedLLMServer(_script(query_for)) as srv:
        w = _world(make_world, srv)
        ev = run_collecting(w, 8)
        w.close()
    found = list(_searches(ev))
    assert found and n["i"] >= len(found) - 3  # the model was asked for (nearly) every query
    toy = catalog.titles.index(next(t for t in catalog.titles if t.startswith("Toy Story")))
    for _, p, q in found:
        if p.by == "llm":  # only a known-item search for Toy Story itself may keep its title
            assert q == "Toy Story" and p.wanted == toy
        else:
            assert "friends" not in q and q


def test_the_search_call_budget_caps_llm_queries_per_tick(make_world):
    with ScriptedLLMServer(_script(_query_for)) as srv:
        w = _world(make_world, srv, budget=1, known_item_share=0.0)
        ev = run_collecting(w, 8)
        w.close()
    per_tick: dict[int, int] = {}
    for tick, p, _ in _searches(ev):
        per_tick[tick] = per_tick.get(tick, 0) + (p.by == "llm")
    assert per_tick and max(per_tick.values()) <= 1 and sum(per_tick.values()) >= 1
