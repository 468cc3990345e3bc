import numpy as np
import pytest

from recworld.agents.brains import ScriptedBrain
from recworld.errors import RecWorldError
from recworld.events import EventBatch, EventType


def test_world_is_a_mesa_model_with_one_agent_per_user(make_world):
    import mesa

    w = make_world(n=30)
    assert isinstance(w, mesa.Model)
    assert len(w.agents) == 30 and w.n_users == 30


def test_sessions_pages_and_events_are_consistent(make_world, collect):
    w = make_world(n=80)
    c = collect()
    w.subscribe(c)
    w.run(48)
    ev = EventBatch.concat(c.events)
    starts = ev.of_type(EventType.SESSION_START, EventType.RETURN).sum()
    leaves = ev.of_type(EventType.LEAVE).sum()
    assert starts == leaves == sum(m.sessions for m in c.metrics) > 0
    shown = ev.of_type(EventType.WATCH, EventType.SKIP).sum()
    assert shown == sum(m.impressions for m in c.metrics)
    # No user is shown the same item twice.
    shown_mask = ev.of_type(EventType.WATCH, EventType.SKIP)
    pairs = ev.user[shown_mask] * 100_000 + ev.item[shown_mask]
    assert np.unique(pairs).size == pairs.size
    # Each user's first session is a SESSION_START, later ones RETURNs.
    first = ev.user[ev.of_type(EventType.SESSION_START)]
    assert np.unique(first).size == first.size


def test_every_leave_says_why(make_world, collect):
    """LEAVE payloads name a reason that matches what happened on the session's last page."""
    from recworld.payloads import LEAVE_REASONS, LeavePayload

    w = make_world(n=120, max_pages=5)
    c = collect()
    w.subscribe(c)
    w.run(36)
    ev = EventBatch.concat(c.events)
    k = w.config.slate_size
    shown = np.flatnonzero(ev.of_type(EventType.WATCH, EventType.SKIP))
    seen_reasons = set()
    for i in np.flatnonzero(ev.of_type(EventType.LEAVE)).tolist():
        reason = LeavePayload.read(ev.payload.get(i)).reason
        seen_reasons.add(reason)
        u = ev.user[i]
        last_page = [j for j in shown[shown < i] if ev.user[j] == u][-k:]
        watched_any = any(ev.type[j] == EventType.WATCH for j in last_page)
        if reason == "page_limit":
            assert ev.value[i] == 5
        elif reason == "nothing_to_watch":
            assert not watched_any
        else:
            assert reason in ("tired", "satisfied") and watched_any
    assert seen_reasons >= {"page_limit", "nothing_to_watch", "tired", "satisfied"} and seen_reasons <= set(LEAVE_REASONS)


def test_scripted_brain_is_followed_exactly(make_world, collect):
    w = make_world(n=20, brain=ScriptedBrain(pages=3), churn_base=0.0)
    c = collect()
    w.subscribe(c)
    w.run(24)
    ev = EventBatch.concat(c.events)
    watched = ev.item[ev.of_type(EventType.WATCH)]
    skipped = ev.item[ev.of_type(EventType.SKIP)]
    assert (watched % 2 == 0).all() and (skipped % 2 == 1).all()
    assert (ev.value[ev.of_type(EventType.LEAVE)] == 3).all()
    assert (ev.value[ev.of_type(EventType.RATE)] == 4).all()


def test_low_satisfaction_churns_more(make_world, collect):
    def run(rule):
        w = make_world(n=150, brain=ScriptedBrain(rule=rule, rating=1.0, pages=2), seed=3)
        w.run(96)
        return w.churned_total

    assert run(lambda s: np.zeros(s.shape, bool)) > run(lambda s: np.ones(s.shape, bool)) + 10


def test_interests_drift_towards_consumption(make_world):
    w = make_world(n=40, recommender="popularity", drift_rate=0.1, anchor_rate=0.0)
    t0 = w.users.taste.copy()
    w.run(48)
    moved = np.linalg.norm(w.users.taste - t0, axis=1)
    assert (moved[w.users.watches > 0] > 0.01).all()


def test_bad_recommender_output_is_a_clear_error(make_world):
    class Dup:
        name = "dup"

        def setup(self, *a):
            pass

        def recommend(self, users, k, ctx):
            return np.zeros((users.size, k), dtype=np.int64)

        def observe(self, fb):
            pass

    w = make_world(n=10)
    w.recommender = Dup()
    with pytest.raises(RecWorldError, match="duplicate items"):
        w.run(30)


def test_same_seed_same_events_different_seed_differs(make_world, collect):
    def digest(seed):
        w = make_world(n=60, recommender="mf", seed=seed)
        c = collect()
        w.subscribe(c)
        w.run(36)
        return EventBatch.concat(c.events).digest()

    assert digest(5) == digest(5)
    assert digest(5) != digest(6)


def test_log_skips_off_keeps_metrics_but_drops_skip_events(make_world, collect):
    w = make_world(n=40, log_skips=False)
    c = collect()
    w.subscribe(c)
    w.run(24)
    ev = EventBatch.concat(c.events)
    assert not ev.of_type(EventType.SKIP).any()
    assert ev.of_type(EventType.WATCH).sum() == sum(m.watches for m in c.metrics) > 0
    assert sum(m.impressions for m in c.metrics) > ev.of_type(EventType.WATCH).sum()


class _Layer:
    """A minimal WorldLayer that records what the world calls."""

    name = "probe"

    def __init__(self):
        self.calls = []

    def attach(self, world):
        self.calls.append("attach")

    def on_tick_start(self, world, tick):
        self.calls.append(("start", tick))
        return EventBatch.build(tick, np.array([1]), EventType.UNFOLLOW, values=np.array([0.0]))

    def on_tick(self, world, tick):
        self.calls.append(("tick", tick))
        return EventBatch.build(tick, np.array([0]), EventType.FOLLOW, values=np.array([1.0]))

    def attach_recorder(self, recorder):
        self.calls.append("recorder")

    def reattach(self, world):
        self.calls.append("reattach")

    def close(self):
        self.calls.append("close")


def test_world_drives_its_layers(make_world, collect):
    from recworld.checkpoint import dump_world, load_world
    from recworld.protocols import WorldLayer

    w = make_world(n=20)
    layer = _Layer()
    assert isinstance(layer, WorldLayer)
    w.add_layer(layer)
    with pytest.raises(RecWorldError, match="already attached"):
        w.add_layer(layer)
    c = collect()
    w.attach_recorder(c)
    w.run(2)
    assert layer.calls == ["attach", "recorder", ("start", 0), ("tick", 0), ("start", 1), ("tick", 1)]
    # The layer's events (at the start of the tick and after its sessions) join the tick's log.
    assert [int(e.of_type(EventType.FOLLOW).sum()) for e in c.events] == [1, 1]
    assert [int(e.of_type(EventType.UNFOLLOW).sum()) for e in c.events] == [1, 1]
    w2 = load_world(dump_world(w))
    w2.reattach_layers()
    w2.close()
    assert w2.layers[0].calls[-2:] == ["reattach", "close"] and not w2.observers


def test_build_world_attaches_nothing_from_outside(small_scenario, make_world):
    """A world built from a scenario has exactly the attributes World.__init__ gives any world: nothing is added from outside."""
    from recworld.agents.social import SocialLayer
    from recworld.scenarios.build import build_world

    world = build_world(small_scenario(**{"population.n_users": 30}))
    assert world.name == "quickstart" and [type(x) for x in world.layers] == [SocialLayer]
    assert set(vars(world)) == set(vars(make_world(n=30)))


def test_end_sessions_mid_tick_closes_only_those_in_session(make_world):
    """An env ends some users' sessions within a tick (``end_sessions``); ``tick_events(since=...)`` returns what came after a mark."""
    w = make_world(n=20)
    users = w.begin_tick(only=np.arange(6))
    assert users.tolist() == list(range(6))
    mark = w.event_mark()
    w.end_sessions(np.array([1, 3, 3 + 10]))  # user 13 is not in session: nothing for them
    ev = w.tick_events(since=mark)
    leave = ev.of_type(EventType.LEAVE)
    assert sorted(ev.user[leave].tolist()) == [1, 3]
    assert all(ev.payload[int(i)]["reason"] == "session_closed" for i in np.flatnonzero(leave))
    assert not w.users.in_session[[1, 3]].any() and w.users.in_session[[0, 2, 4, 5]].all()
    assert (w.users.next_return[[1, 3]] > w.tick).all()
    w.end_tick(close_sessions=False)
    assert w.users.in_session.sum() == 4  # the others stay in session across the tick
    assert w.tick_events().type.size == 0
