"""The social layer: graphs with homophily, posts and cascades, social watches, chats, follows."""

import json
import pickle

import numpy as np
import pytest
from sqlalchemy import func, select
from tests_support import run_collecting

from recworld.agents.social import SocialLayer
from recworld.checkpoint import load_world
from recworld.errors import ConfigError
from recworld.events import EventType
from recworld.scenarios.runner import run_scenario
from recworld.storage import Edge, Event, Item, LLMCall, connect
from recworld.storage.queries import last_checkpoint


def pair_sim(world, edges):
    t = world.users.taste
    return float(np.mean([t[a] @ t[b] for a, b in edges]))


@pytest.mark.parametrize("graph", ["small_world", "preferential"])
def test_graphs_have_the_mean_degree_and_homophily(make_world, graph):
    world = make_world(n=200)
    layer = SocialLayer.from_config(world, {"graph": graph, "degree": 6}, seed=1)
    edges = layer.edges()
    assert 4.5 <= layer.mean_degree() <= 9.5
    rng = np.random.default_rng(0)
    rand = [tuple(rng.choice(200, 2, replace=False)) for _ in range(2000)]
    assert pair_sim(world, edges) > pair_sim(world, rand) + 0.1
    indeg = np.bincount([d for _, d in edges], minlength=200)
    if graph == "preferential":
        assert indeg.max() > 4 * max(np.median(indeg), 1)  # hubs
    world.add_layer(layer)
    assert world.layers == [layer] and world.tick_hooks == [layer.on_tick]


def test_config_errors_name_social_keys(make_world):
    world = make_world(n=20)
    with pytest.raises(ConfigError, match=r"social\.bogus"):
        SocialLayer.from_config(world, {"bogus": 1})
    with pytest.raises(ConfigError, match=r"social\.graph"):
        SocialLayer.from_config(world, {"graph": "ring"})
    with pytest.raises(ConfigError, match=r"social\.post_rate"):
        SocialLayer.from_config(world, {"post_rate": 3})
    with pytest.raises(ConfigError, match=r"social\.chat_turns"):
        SocialLayer.from_config(world, {"chat_turns": [1, 6]})


def test_social_dynamics_with_the_utility_brain(make_world):
    world = make_world(n=150, recommender="mf")
    layer = SocialLayer.from_config(
        world,
        {"post_rate": 0.6, "chat_rate": 0.3, "follow_rate": 0.3, "unfollow_rate": 0.1, "reshare_rate": 0.8, "item_post_rate": 0.3},
        brain=world.brain,
        seed=2,
    )
    world.add_layer(layer)
    n_items0 = len(world.catalog)
    taste0 = world.users.taste.copy()
    ev = run_collecting(world, 30)
    count = {t: int(ev.of_type(t).sum()) for t in (EventType.POST, EventType.SOCIAL_WATCH, EventType.CHAT, EventType.FOLLOW, EventType.UNFOLLOW)}
    assert all(v > 0 for v in count.values()), count
    # Posts carry cascade ids: a reshare's cascade is its parent's cascade.
    posts = {ev.payload[i]["post"]: ev.payload[i] for i in np.flatnonzero(ev.of_type(EventType.POST))}
    children = [p for p in posts.values() if p["parent_post"] is not None]
    assert children and all(p["cascade"] == posts[p["parent_post"]]["cascade"] for p in children)
    stats = layer.cascade_stats()
    assert stats["posts"] == len(posts) and stats["max_cascade_size"] >= 2 and stats["max_reach"] >= 1
    assert stats["top_items"][0]["social_watches"] >= 1
    # Social watches are of items shared by someone the user follows.
    for i in np.flatnonzero(ev.of_type(EventType.SOCIAL_WATCH)):
        assert world.seen[ev.user[i], ev.item[i]]
    # Chats: 2-4 messages, value = partner, tastes moved.
    chat_i = np.flatnonzero(ev.of_type(EventType.CHAT))
    convs = {}
    for i in chat_i:
        convs.setdefault(ev.payload[i]["conversation"], []).append(i)
    assert all(2 <= len(v) <= 4 for v in convs.values())
    i = chat_i[0]
    assert int(ev.value[i]) != int(ev.user[i]) and ev.text[i]
    assert not np.allclose(world.users.taste, taste0)
    # Original posts became catalog items; the world's per-item arrays kept up.
    assert len(world.catalog) > n_items0 and world.seen.shape[1] >= len(world.catalog)
    assert pickle.loads(pickle.dumps(layer)).cascade_stats() == stats


def test_scenario_with_social_logs_edges_items_and_no_llm_calls(small_scenario):
    s = small_scenario(
        **{"ticks": 12, "population.n_users": 80, "social": {"enabled": True, "degree": 4, "post_rate": 0.5, "chat_rate": 0.2, "item_post_rate": 0.5}}
    )
    out = run_scenario(s, progress=False)
    eng = connect(s.storage.url, create=False)
    with eng.connect() as con:
        edges = con.execute(select(func.count()).select_from(Edge).where(Edge.run_id == out.run_id)).scalar()
        posts = con.execute(select(Event.payload).where(Event.run_id == out.run_id, Event.type == int(EventType.POST))).scalars().all()
        new_items = con.execute(select(func.count()).select_from(Item).where(Item.run_id == out.run_id, Item.creator.is_not(None))).scalar()
        calls = con.execute(select(func.count()).select_from(LLMCall).where(LLMCall.run_id == out.run_id)).scalar()
    assert edges >= 80 * 3 and posts and all("cascade" in json.loads(p) for p in posts)
    assert new_items >= 1 and calls == 0
    assert out.summary is not None


def test_unfollows_close_edges_in_the_database(small_scenario):
    s = small_scenario(**{"ticks": 16, "population.n_users": 80, "social": {"enabled": True, "degree": 4, "follow_rate": 0.3, "unfollow_rate": 0.3}})
    out = run_scenario(s, progress=False)
    eng = connect(s.storage.url, create=False)
    with eng.connect() as con:
        rows = con.execute(select(Edge.src, Edge.dst, Edge.created_tick, Edge.removed_tick).where(Edge.run_id == out.run_id)).all()
        unfollows = con.execute(select(Event.user_id, Event.value, Event.tick).where(Event.run_id == out.run_id, Event.type == int(EventType.UNFOLLOW))).all()
    removed = sorted((s_, d, t) for s_, d, _, t in rows if t is not None)
    assert unfollows and removed == sorted((u, int(v), t) for u, v, t in unfollows)
    assert all(c <= t for _, _, c, t in rows if t is not None)
    # What is still live in the database is the social layer's graph at the end.
    live = sorted((s_, d) for s_, d, _, t in rows if t is None)
    ck = last_checkpoint(eng, out.run_id)
    social = next(x for x in load_world(ck.state, ck.base).layers if isinstance(x, SocialLayer))
    assert live == sorted(social.edges())
