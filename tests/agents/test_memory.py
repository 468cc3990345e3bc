"""User memory: short-term buffer, promotion by importance, bounded long-term store, retrieval."""

import pickle

import numpy as np

from recworld.agents.memory import REFLECTION, MemoryStore, UserMemory


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


class Rec:
    def __init__(self):
        self.rows = []

    def add_memory(self, *a):
        self.rows.append(a)


def store(**kw):
    emb = np.eye(8, dtype=np.float32)  # item i points along axis i
    return MemoryStore(4, 8, **kw), emb


def test_pages_become_observations_and_important_ones_are_promoted():
    m, emb = store(capacity=4, promote_threshold=0.45)
    rec = Rec()
    m.recorder = rec
    slates = np.array([[0, 1], [2, 3]])
    watched = np.array([[True, False], [False, False]])
    ratings = np.array([[5.0, np.nan], [np.nan, np.nan]])
    m.observe_pages(np.array([0, 1]), slates, watched, ratings, np.array([False, False]), emb, tick=3)
    assert m.s_len[0] == 1 and m.recent(0) == ["Watched item 0 and rated it 5/5."]
    assert m.s_importance[0, 0] > m.s_importance[1, 0]  # a 5-star watch beats a skipped page
    assert m.end_sessions(np.array([0, 1]), tick=3) == 1  # only the strong one is kept
    assert m.sizes().tolist() == [1, 0, 0, 0] and m.s_len[0] == 0
    assert rec.rows == [(0, 3, "watched", float(m.importance[0, 0]), "Watched item 0 and rated it 5/5.")]


def test_long_term_store_is_bounded_and_evicts_weak_old_entries():
    m, emb = store(capacity=3)
    for t, imp in enumerate([0.9, 0.2, 0.8, 0.7, 0.6]):
        m.add(0, t, 0, imp, emb[t], item=t)
    assert m.sizes()[0] == 3
    kept = set(m.item[0].tolist())
    assert 1 not in kept and 0 in kept  # the weak entry went first


def test_retrieval_ranks_by_similarity_recency_and_importance():
    m, emb = store(capacity=8)
    m.add(0, 0, 0, 0.5, emb[1], text="about axis 1")
    m.add(0, 0, 0, 0.5, emb[2], text="about axis 2")
    m.add(0, 90, 0, 0.5, emb[3], text="recent axis 3")
    m.add(0, 90, REFLECTION, 0.95, unit([0, 0.5, 0, 1, 0, 0, 0, 0]), text="reflection")
    got = m.retrieve(np.array([0]), emb[[1]], tick=100, top_k=2)[0]
    assert [g.text for g in got][0] == "reflection"  # important, recent and partly similar
    by_sim = m.retrieve(np.array([0]), emb[[2]], tick=0, top_k=1)[0]
    assert by_sim[0].text == "about axis 2"
    assert m.retrieve(np.array([1]), emb[[2]], tick=0)[0] == []  # empty memory
    view = UserMemory(m, 0)
    assert len(view) == 4 and view.texts()[0] in ("about axis 1", "about axis 2")


def test_reflection_due_and_pickle_drops_recorder():
    m, emb = store(reflection_every=2)
    for t in range(3):
        m.add(0, t, 0, 0.5, emb[t])
    assert m.due_for_reflection(np.array([0, 1]), np.array([2, 5])).tolist() == [True, False]
    m.recorder = Rec()
    m2 = pickle.loads(pickle.dumps(m))
    assert m2.recorder is None and np.array_equal(m2.vec, m.vec)


def test_memory_is_cheap_for_943_users():
    import time

    emb = np.random.default_rng(0).standard_normal((1682, 64)).astype(np.float32)
    m = MemoryStore(943, 64)
    users = np.arange(943)
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    for tick in range(5):
        slates = rng.integers(0, 1682, (943, 10))
        w = rng.random((943, 10)) < 0.2
        r = np.where(w, rng.integers(1, 6, (943, 10)), np.nan)
        m.observe_pages(users, slates, w, r, np.ones(943, bool), emb, tick)
        m.end_sessions(users, tick)
        m.retrieve(users, emb[slates[:, 0]], tick, 3)
    assert time.perf_counter() - t0 < 5.0
    assert m.vec.nbytes < 10 * 2**20
