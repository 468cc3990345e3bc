"""``recworld fit`` on every interaction source the catalog loads; a fitted file used by a scenario."""

import numpy as np
import pytest

from recworld.scenarios.build import build_world
from recworld.scenarios.cli import main
from recworld.scenarios.schema import load_scenario
from recworld.usermodel.fit import FittedModel

GENRES = ["Action", "Comedy", "Drama", "Horror"]


def _log(n_users=60, n_items=40, seed=0):
    """A small log with structure: users like one genre, items have one."""
    rng = np.random.default_rng(seed)
    item_genre = rng.integers(0, 4, n_items)
    user_genre = rng.integers(0, 4, n_users)
    rows = []
    for u in range(n_users):
        for i in range(n_items):
            p = 0.5 if item_genre[i] == user_genre[u] else 0.05
            if rng.random() < p:
                rows.append((u, i, 5 if item_genre[i] == user_genre[u] else 2, 1000 * u + i))
    return item_genre, rows


def _items_csv_and_log(tmp_path):
    genre, rows = _log()
    items = tmp_path / "items.csv"
    items.write_text("id,title,tags\n" + "".join(f"i{i},{GENRES[g]} story number {i},{GENRES[g]}\n" for i, g in enumerate(genre)))
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,rating,timestamp\n" + "".join(f"u{u},i{i},{r},{t}\n" for u, i, r, t in rows))
    scen = tmp_path / "s.yaml"
    scen.write_text(
        "name: mine\nseed: 1\nticks: 4\ncatalog: {source: items_file, path: items.csv, interactions: log.csv, embedding_dim: 8}\n"
        "population: {source: movielens}\nworld: {slate_size: 4, max_pages: 2}\nrecommender: {name: popularity}\n"
    )
    return scen


def _grouplens(tmp_path):
    genre, rows = _log()
    d = tmp_path / "gl"
    d.mkdir()
    flags = lambda g: "|".join("1" if k == g + 1 else "0" for k in range(19))  # noqa: E731
    (d / "u.item").write_text("".join(f"{i + 1}|{GENRES[g]} story {i} (1990)|01-Jan-1990||url|{flags(g)}\n" for i, g in enumerate(genre)), encoding="latin-1")
    (d / "u.data").write_text("".join(f"{u + 1}\t{i + 1}\t{r}\t{t}\n" for u, i, r, t in rows))
    return d


def _atomic(tmp_path):
    genre, rows = _log()
    d = tmp_path / "atomic"
    d.mkdir()
    (d / "x.item").write_text(
        "item_id:token\tmovie_title:token_seq\tclass:token_seq\n" + "".join(f"{i}\t{GENRES[g]} tale {i}\t{GENRES[g]}\n" for i, g in enumerate(genre))
    )
    (d / "x.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    return d


def _dir_scenario(tmp_path, folder):
    scen = tmp_path / "d.yaml"
    scen.write_text(f"name: d\nticks: 3\ncatalog: {{source: movielens_dir, path: {folder}, embedding_dim: 8}}\nworld: {{slate_size: 4, max_pages: 2}}\n")
    return scen


@pytest.mark.parametrize("source", ["items_file", "grouplens", "atomic"])
def test_fit_works_for_every_interaction_source(tmp_path, monkeypatch, capsys, source):
    monkeypatch.setenv("RECWORLD_CACHE_DIR", str(tmp_path / "cache"))
    scen = {"items_file": _items_csv_and_log, "grouplens": lambda p: _dir_scenario(p, _grouplens(p)), "atomic": lambda p: _dir_scenario(p, _atomic(p))}[source](
        tmp_path
    )
    out = tmp_path / "model.npz"
    assert main(["fit", str(scen), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "choice: affinity" in text and "rating cut points" in text
    model = FittedModel.load(out)
    assert model.n_items == 40 and model.n_users == 60
    # Users' fitted tastes separate what they chose from what they did not.
    a = model.taste @ model.factors.T
    assert model.decision.affinity > 0 and a.std() > 0
    assert len(list((tmp_path / "cache" / "usermodels").glob("*.npz"))) == 1  # cached too


def test_a_scenario_runs_on_a_fitted_file_and_on_the_content_model(tmp_path, monkeypatch):
    monkeypatch.setenv("RECWORLD_CACHE_DIR", str(tmp_path / "cache"))
    scen = _items_csv_and_log(tmp_path)
    out = tmp_path / "model.npz"
    assert main(["fit", str(scen), "--out", str(out)]) == 0
    s = load_scenario(scen).with_overrides(**{"population.model": str(out)})
    w = build_world(s)
    np.testing.assert_array_equal(w.items.factors[:40], FittedModel.load(out).factors)
    w.run(4)
    assert w.users.sessions.sum() > 0
    content = build_world(load_scenario(scen).with_overrides(**{"population.model": "content"}))
    assert content.users.taste.shape[1] == content.catalog.dim


def test_fit_errors_are_one_line(tmp_path, capsys):
    items = tmp_path / "items.csv"
    items.write_text("id,title\n1,A\n2,B\n")
    scen = tmp_path / "s.yaml"
    scen.write_text(
        f"name: s\ncatalog: {{source: items_file, path: {items}, embedding_dim: 2}}\npopulation: {{source: sampled, n_users: 3}}\nworld: {{slate_size: 2}}\n"
    )
    assert main(["fit", str(scen)]) == 2
    assert "no interaction log" in capsys.readouterr().err
    assert main(["fit", "--holdout", "2"]) == 2
    bad = tmp_path / "b.yaml"
    bad.write_text("name: b\npopulation: {model: /nope/model.npz}\n")
    assert main(["run", str(bad), "--ticks", "1", "--quiet", "--db", f"sqlite:///{tmp_path}/x.db"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_validate_fits_under_the_exposure_assumption_it_is_given(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    scen = _items_csv_and_log(tmp_path)
    reports = {}
    for k in ("1", "3"):
        out = tmp_path / f"v{k}.json"
        args = ["validate", str(scen), "--recommenders", "none", "--exposures-per-watch", k, "--json", str(out), "--db", f"sqlite:///{tmp_path / 'v.db'}"]
        assert main(args) == 0
        reports[k] = json.loads(out.read_text())
    assert reports["1"]["fit"]["exposures_per_watch"] == 1.0
    assert reports["3"]["fit"]["exposures_per_watch"] == 3.0
    # A different assumption is a different fit, not the cached one.
    assert reports["1"]["fit"]["awareness"] != reports["3"]["fit"]["awareness"]
