import numpy as np

from recworld.catalog import Catalog
from recworld.data.records import RawItem
from recworld.embeddings import TextEncoder


def test_movielens_catalog_shape_and_norms(catalog):
    assert len(catalog) == 1682
    assert catalog.embeddings.shape == (1682, 64)
    assert np.allclose(np.linalg.norm(catalog.embeddings, axis=1), 1.0, atol=1e-4)
    assert "Sci-Fi" in catalog.tag_names
    assert catalog.describe(0).startswith("Toy Story (1995)")


def test_embeddings_are_semantic(catalog):
    # Two Star Wars films should be closer to each other than to a random comedy.
    titles = catalog.titles
    sw = [i for i, t in enumerate(titles) if t.startswith("Star Wars") or t.startswith("Return of the Jedi")][:2]
    comedy = titles.index("Toy Story")
    e = catalog.embeddings
    assert e[sw[0]] @ e[sw[1]] > e[sw[0]] @ e[comedy]


def test_encoder_cache_is_used(tmp_path):
    enc = TextEncoder(cache_path=tmp_path / "emb.sqlite")
    v1 = enc.embed(["a quiet film about the sea"])
    enc2 = TextEncoder(cache_path=tmp_path / "emb.sqlite")
    v2 = enc2.embed(["a quiet film about the sea"])
    assert enc2._model is None  # served from the cache, model never loaded
    assert np.allclose(v1, v2)


def test_add_item_grows_catalog(tmp_path):
    enc = TextEncoder(cache_path=tmp_path / "emb.sqlite")
    items = [RawItem(str(i), f"Movie {i}", tags=("Drama",) if i % 2 else ("Comedy",)) for i in range(8)]
    cat = Catalog.build(items, encoder=enc, dim=4)
    idx = cat.add_item("my post", "about dramas", np.ones(4, np.float32), tags=("Drama", "Nope"), creator=3, tick=5)
    assert idx == 8 and len(cat) == 9 and cat.tags[8] == ("Drama",) and cat.creators[8] == 3
    assert cat.embeddings.shape == (9, 4)


def test_replicate_grows_the_catalog_with_seeded_near_copies(catalog):
    from recworld.usermodel.items import content_item_table, replicate_item_table

    n0 = len(catalog)
    big, src = catalog.replicate(n0 + 500, seed=3)
    again, _ = catalog.replicate(n0 + 500, seed=3)
    assert len(big) == n0 + 500 and np.array_equal(src[:n0], np.arange(n0)) and np.array_equal(big.embeddings, again.embeddings)
    assert big.titles[:n0] == catalog.titles and big.titles[n0].startswith(catalog.titles[src[n0]] + " #")
    assert len(set(big.external_ids)) == len(big) and big.tags[n0] == catalog.tags[src[n0]]
    assert np.allclose(np.linalg.norm(big.embeddings, axis=1), 1, atol=1e-5)
    cos = (big.embeddings[n0:] * catalog.embeddings[src[n0:]]).sum(1)
    assert cos.mean() > 0.5  # near their source, not copies of it
    table = replicate_item_table(content_item_table(catalog), src, seed=3)
    assert table.factors.shape[0] == n0 + 500 and np.array_equal(table.appeal[n0:], table.appeal[src[n0:]])
    assert catalog.replicate(10)[0] is catalog


def test_catalog_vectors_do_not_depend_on_the_callers_blas_threads(ml):
    """Catalog.build runs its products on one BLAS thread whoever calls it: a catalog built (and cached) by a command
    running on two threads is the one a world's build makes (else a later run in that process logged other events)."""
    from threadpoolctl import threadpool_limits

    from recworld.data.movielens import item_quality

    quality, _ = item_quality(ml)
    with threadpool_limits(limits=2, user_api="blas"):
        two = Catalog.build(ml.items, quality=quality)
    with threadpool_limits(limits=1, user_api="blas"):
        one = Catalog.build(ml.items, quality=quality)
    assert np.array_equal(two.embeddings, one.embeddings)
