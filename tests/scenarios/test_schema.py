import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests_support import fuzz_case

from recworld.errors import ConfigError
from recworld.scenarios.schema import load_scenario, shipped, validate


def test_shipped_scenarios_validate():
    names = set(shipped())
    assert {"quickstart", "filter_bubble", "cold_start"} <= names
    for name in names:
        assert load_scenario(name).name == name


def _write(tmp_path, text):
    f = tmp_path / "s.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize(
    "text,match",
    [
        ("name: x\ntickz: 3\n", r"s.yaml: unknown key 'tickz'; remove it or check its spelling"),
        ("name: x\nticks: many\n", r"s.yaml: field 'ticks': .*integer.*\(got 'many'\)"),
        ("name: x\nrecommender: {name: magic}\n", r"field 'recommender.name': unknown recommender 'magic'; expected one of"),
        ("name: x\nbrain: {kind: psychic}\n", r"field 'brain.kind': .*'utility'"),
        ("name: x\nworld: {slate_size: 0}\n", r"field 'world.slate_size'"),
        ("name: x\ncatalog: {source: items_file, path: nope.csv}\npopulation: {source: sampled}\n", r"field 'catalog.path': nope.csv does not exist"),
        ("name: x\ncatalog: {source: items_file}\n", r"catalog.source=items_file needs catalog.path"),
        ("ticks: 3\n", r"field 'name': Field required; add it"),
        ("name: [unclosed\n", r"s.yaml: invalid YAML at line"),
        ("- a\n- b\n", r"expected a mapping"),
    ],
)
def test_bad_scenarios_give_one_line_naming_file_and_field(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match) as e:
        load_scenario(_write(tmp_path, text))
    assert "\n" not in str(e.value)


def test_missing_and_unknown_scenario(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_scenario(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="unknown scenario 'nope'"):
        load_scenario("nope")


def test_overrides_revalidate_and_reset_foreign_params():
    s = load_scenario("filter_bubble").with_overrides(**{"recommender.name": "random", "ticks": 5})
    assert s.recommender.params == {} and s.ticks == 5
    with pytest.raises(ConfigError, match="field 'ticks'"):
        s.with_overrides(ticks=-1)


def test_relative_catalog_path_resolves_from_scenario_file(tmp_path):
    (tmp_path / "items.csv").write_text("id,title\n1,A\n")
    f = _write(tmp_path, "name: x\ncatalog: {source: items_file, path: items.csv}\npopulation: {source: sampled, n_users: 3}\n")
    assert load_scenario(f).catalog.path == str(tmp_path / "items.csv")


scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**7), st.floats(allow_nan=True), st.text(max_size=20))
keys = st.sampled_from(["name", "seed", "ticks", "catalog", "population", "brain", "recommender", "world", "storage", "bogus"])
docs = st.dictionaries(
    keys, st.one_of(scalars, st.dictionaries(st.sampled_from(["source", "n_users", "name", "kind", "slate_size", "url", "x"]), scalars, max_size=3)), max_size=6
)


@settings(max_examples=300, deadline=None)
@given(docs)
def test_fuzz_schema_only_raises_config_error(doc):
    with fuzz_case("scenario schema (hypothesis)"):
        try:
            validate(doc, source="fuzz")
        except ConfigError as e:
            assert str(e).startswith("fuzz: ") and "\n" not in str(e)


def test_a_replicated_catalog_builds_a_world_of_that_size():
    from recworld.scenarios.build import build_world
    from recworld.scenarios.schema import load_scenario

    s = load_scenario("filter_bubble").with_overrides(**{"population.n_users": 30, "catalog.replicate_to": 2500, "ticks": 2})
    w = build_world(s)
    assert len(w.catalog) == 2500 and w.items.factors.shape[0] >= 2500 and w.seen.shape[1] >= 2500
    w.run(2)
    assert w.user_agents[0].persona.liked_titles
