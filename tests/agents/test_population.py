import numpy as np
import pytest

from recworld.agents.population import MovieLensPopulation, SampledPopulation
from recworld.errors import ConfigError


def test_movielens_personas_from_real_ratings(ml, catalog):
    pop = MovieLensPopulation(ml, catalog)
    arrays, personas = pop.build_arrays()
    assert len(personas) == 943
    p = personas[0]
    assert p.age == 24 and p.occupation == "technician" and p.liked_genres and p.liked_titles
    text = p.profile_text()
    assert "24-year-old" in text and "Loves" in text
    assert np.allclose(np.linalg.norm(arrays.taste, axis=1), 1, atol=1e-4)
    # Heavier raters are more active.
    cnt = np.bincount(ml.rating_user, minlength=943)
    assert np.corrcoef(cnt, arrays.activity)[0, 1] > 0.5
    for trait in ("patience", "conformity", "diversity_seeking"):
        v = getattr(arrays, trait)
        assert 0 <= v.min() and v.max() <= 1


def test_taste_points_at_the_users_liked_items(ml, catalog):
    arrays, _ = MovieLensPopulation(ml, catalog).build_arrays()
    sims = arrays.taste @ catalog.embeddings.T
    liked = ml.rating >= 4
    disliked = ml.rating <= 2
    s_like = sims[ml.rating_user[liked], ml.rating_item[liked]].mean()
    s_dis = sims[ml.rating_user[disliked], ml.rating_item[disliked]].mean()
    assert s_like > s_dis + 0.05


def test_sampled_population_follows_spec(catalog):
    a, personas = SampledPopulation(catalog, 500, seed=1, patience=0.8, conformity=0.2).build_arrays()
    assert abs(a.patience.mean() - 0.8) < 0.05 and abs(a.conformity.mean() - 0.2) < 0.05
    assert personas[3].external_id == "s3" and personas[3].liked_genres


def test_bad_sizes(ml, catalog):
    with pytest.raises(ConfigError, match="943 users"):
        MovieLensPopulation(ml, catalog, n_users=5000)
    with pytest.raises(ConfigError, match=">= 1"):
        SampledPopulation(catalog, 0)


def test_demographics_in_one_draw_are_the_per_user_draws():
    from recworld.agents.population import _demographics

    occ = SampledPopulation.OCCUPATIONS
    for n in (0, 1, 7, 500):
        a, b = np.random.default_rng(n), np.random.default_rng(n)
        age, gender, job = _demographics(a, n, occ)
        ref = [(int(b.integers(16, 70)), str(b.choice(["F", "M"])), str(b.choice(occ))) for _ in range(n)]
        assert [(int(x), "FM"[g], occ[j]) for x, g, j in zip(age, gender, job)] == ref
        assert a.random() == b.random()  # the generator is left where the per-user draws leave it


def test_sampled_personas_are_built_on_demand_from_the_core_taste(catalog):
    a, personas = SampledPopulation(catalog, 50, seed=2).build_arrays()
    p = personas[7]
    assert p == personas[7] and personas[-1].external_id == "s49" and len(personas[10:13]) == 3
    sims = catalog.embeddings @ a.taste0[7]
    assert p.liked_titles == [catalog.titles[j] for j in np.argsort(-sims)[:3]]
    assert p.disliked_titles == [catalog.titles[j] for j in np.argsort(sims)[:2]]
    with pytest.raises(IndexError):
        personas[50]


@pytest.mark.parametrize("content", [False, True])
def test_personas_built_in_a_batch_are_those_built_one_by_one(catalog, content):
    """SampledPersonas.build ranks many users at once (the recorder's profile rows); each persona equals the one
    built alone, for the fitted and the content-only model; the titles are the taste's best and worst items."""
    from recworld.usermodel.bundled import bundled_model

    a, personas = SampledPopulation(catalog, 300, seed=5, model=None if content else bundled_model()).build_arrays()
    users = np.array([7, 0, 299, 7, 150, *range(20, 60)])
    batch = personas.build(users)
    assert batch == [personas[int(u)] for u in users] and batch[0] == batch[3]
    assert personas[10:40] == [personas[i] for i in range(10, 40)]
    items = personas.items
    for u, p in zip(users.tolist(), batch):
        sims = items @ a.taste0[u]
        assert p.liked_titles == [catalog.titles[j] for j in np.argsort(-sims)[:3]]
        assert p.disliked_titles == [catalog.titles[j] for j in np.argsort(sims)[:2]]
    assert sum(bool(p.liked_genres) for p in batch) > len(batch) // 2
