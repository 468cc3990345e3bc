"""Users search: queries from their taste, a results page browsed with the user model, SEARCH events, metrics."""

import numpy as np
import pytest
from tests_support import run_collecting

from recworld.agents.search import SearchConfig, SearchLayer
from recworld.errors import ConfigError
from recworld.events import EventType
from recworld.payloads import SearchPayload


@pytest.fixture
def search_world(make_world):
    def _make(seed=3, n=40, **cfg):
        w = make_world(n=n, recommender="popularity", seed=seed)
        w.add_layer(SearchLayer(SearchConfig(rate=1.0, **cfg)))
        return w

    return _make


def test_searches_are_logged_and_their_results_are_a_page_applied_like_the_feed(search_world, collect):
    w = search_world(n=60)
    c = collect()
    w.subscribe(c)
    w.run(24)
    n_search = 0
    for ev, m in zip(c.events, c.metrics):
        idx = np.flatnonzero(ev.of_type(EventType.SEARCH))
        assert m.searches == idx.size
        assert m.search_clicks == sum(1 for i in idx if ev.value[i] > 0)
        for i in idx:
            p = SearchPayload.read(ev.payload[int(i)])
            assert isinstance(p, SearchPayload) and ev.text[int(i)]
            u = ev.user[i]
            # The results page follows its SEARCH event: watch/skip events in result order, watches = the clicks.
            after = np.arange(i + 1, len(ev))
            page = after[np.isin(ev.type[after], [EventType.WATCH, EventType.SKIP]) & (ev.user[after] == u)][: len(p.results)]
            assert ev.item[page].tolist() == p.results
            assert ev.item[page][ev.type[page] == EventType.WATCH].tolist() == p.clicked
            assert ev.value[i] == len(p.clicked)
            n_search += 1
        # Search pages count in the tick's impressions and watches like feed pages.
        assert m.impressions == int(ev.of_type(EventType.WATCH, EventType.SKIP).sum())
        assert m.watches == int(ev.of_type(EventType.WATCH).sum())
    assert n_search > 20
    assert w.layers[0].searches == n_search


def test_known_item_queries_find_what_the_user_wants_and_explore_queries_fit_its_genre(search_world):
    w = search_world(known_item_share=1.0, n=60)
    ev = run_collecting(w, 24)
    known, explore = [], []
    for i in np.flatnonzero(ev.of_type(EventType.SEARCH)):
        p = SearchPayload.read(ev.payload[int(i)])
        (known if p.intent == "known_item" else explore).append(p)
    assert known and explore
    assert np.mean([p.wanted in p.results for p in known]) >= 0.8
    genre_hits = [set(w.catalog.tags[p.wanted]) & set(w.catalog.tags[r]) != set() for p in explore for r in p.results]
    assert np.mean(genre_hits) >= 0.7


def test_search_clicks_follow_the_user_model(search_world):
    """Results the user model likes more are clicked more (the same kernel as the feed decides)."""
    from recworld.agents.conversation.intent import item_utilities

    w = search_world(n=80)
    layer = w.layers[0]
    clicked_u, skipped_u = [], []
    for _ in range(24):
        w.step()
        ev = w.last_events
        for i in np.flatnonzero(ev.of_type(EventType.SEARCH)):
            p = SearchPayload.read(ev.payload[int(i)])
            util = item_utilities(w, layer.model, np.array([ev.user[i]]), np.array(p.results))[0]
            clicked = np.isin(p.results, p.clicked)
            clicked_u += util[clicked].tolist()
            skipped_u += util[~clicked].tolist()
    assert clicked_u and np.mean(clicked_u) > np.mean(skipped_u) + 0.5


def test_search_is_deterministic_per_seed(search_world):
    a = run_collecting(search_world(seed=4), 12).digest()
    b = run_collecting(search_world(seed=4), 12).digest()
    assert a == b


def test_bad_search_section_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"unknown key 'search.rat'"):
        SearchLayer.from_config({"rat": 0.1})
    with pytest.raises(ConfigError, match=r"field 'search.rate'"):
        SearchLayer.from_config({"rate": 2})
