"""The platform's catalog search: embedding retrieval plus title match, over the real ML-100K catalog."""

import copy

import numpy as np

from recworld.search import CatalogSearch, title_words, words


def test_words_drop_stop_words_and_the_year():
    assert words("The Movies of the 1990s") == ["1990s"]
    assert title_words("Toy Story (1995)") == ["toy", "story"]


def test_a_known_title_ranks_first(catalog):
    s = CatalogSearch(catalog)
    for title in ("Toy Story", "Star Wars", "Fargo", "Heat"):
        idx = catalog.titles.index(title)
        res = s.search(" ".join(title_words(title)), 10)
        assert res.items[0] == idx, (title, [catalog.titles[i] for i in res.items[:3]])
        assert res.title_hits[0]


def test_genre_and_era_queries_retrieve_by_embedding(catalog):
    s = CatalogSearch(catalog)
    res = s.search("horror", 20)
    assert np.mean(["Horror" in catalog.tags[i] for i in res.items]) >= 0.8
    res = s.search("children animation 1990s", 20)
    assert np.mean([("Children's" in catalog.tags[i] or "Animation" in catalog.tags[i]) for i in res.items]) >= 0.8
    # The embedding carries the query without any title match.
    assert not s.search("horror", 20).title_hits.all()


def test_results_are_ranked_distinct_deterministic_and_respect_exclude_and_within(catalog):
    s = CatalogSearch(catalog)
    a = s.search("space adventure", 15)
    assert np.all(np.diff(a.scores) <= 1e-12) and len(set(a.items.tolist())) == 15
    assert np.array_equal(a.items, CatalogSearch(catalog).search("space adventure", 15).items)
    b = s.search("space adventure", 15, exclude=a.items[:5])
    assert not set(b.items.tolist()) & set(a.items[:5].tolist())
    c = s.search("space adventure", 3, within=np.array([10, 20, 30, 40]))
    assert set(c.items.tolist()) <= {10, 20, 30, 40} and c.items.size == 3
    assert s.search("", 4).items.size == 4  # an empty query still answers a page
    assert s.search("zzqx unknownword", 4).items.size == 4


def test_items_added_to_the_catalog_become_searchable(catalog):
    cat = copy.deepcopy(catalog)
    s = CatalogSearch(cat)
    idx = cat.add_item("Quasar Lullaby", "a user's post", cat.embeddings[0])
    assert s.search("quasar lullaby", 5).items[0] == idx


def _direct(s, query, k, exclude=None):
    """The selection done in full on every call (what search answered before it kept rankings): argpartition, then score and id."""
    sc = s.scores(query)
    allowed = np.ones(len(sc), bool)
    if exclude is not None:
        allowed[np.asarray(exclude, np.int64)] = False
    cand = np.flatnonzero(allowed)
    k = min(k, cand.size)
    top = np.argpartition(-sc[cand], k - 1)[:k] if k < cand.size else np.arange(cand.size)
    top = top[np.lexsort((cand[top], -sc[cand][top]))]
    return cand[top]


def test_kept_rankings_answer_exactly_as_a_full_selection_ties_included(catalog):
    s = CatalogSearch(catalog)
    rng = np.random.default_rng(0)
    # "zzzz" knows no word: every score ties, so every cut falls inside a tie (the full selection decides those).
    for q in ("drama 1990s", "well-known action", "children's", "star wars", "zzzz", ""):
        for _ in range(40):
            k = int(rng.choice([1, 3, 50, 100, 101, len(catalog) - 1, len(catalog) + 5]))
            ex = rng.choice(len(catalog), size=int(rng.integers(0, 30))) if rng.random() < 0.7 else None
            assert np.array_equal(s.search(q, k, exclude=ex).items, _direct(s, q, k, ex)), (q, k)
    assert len(s._scored_cache) == 6
    # A checkpoint does not carry the kept rankings; the copy answers the same.
    c = copy.deepcopy(s)
    assert c._scored_cache == {} and np.array_equal(c.search("drama 1990s", 20).items, s.search("drama 1990s", 20).items)
