"""``recworld validate``: the fidelity report on held-out ML-100K behaviour, end to end (CLI, JSON, database)."""

import json

import numpy as np
import pytest
from sqlmodel import Session, select

from recworld.scenarios.cli import main
from recworld.scenarios.schema import load_scenario
from recworld.scenarios.validate import check_targets
from recworld.storage import Validation, connect


@pytest.mark.slow
def test_validate_reports_every_protocol_stores_it_and_the_fitted_parts_beat_their_baselines(tmp_path, capsys):
    db = f"sqlite:///{tmp_path}/v.db"
    out = tmp_path / "report.json"
    rc = main(
        [
            "validate",
            "quickstart",
            "--recommenders",
            "random,popularity",
            "--ticks",
            "6",
            "--conversations",
            "40",
            "--db",
            db,
            "--json",
            str(out),
            "--name",
            "t1",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "taste alignment" in text and "AUC" in text and "sim-to-real agreement" in text and "iEvaLM" in text
    report = json.loads(out.read_text())
    ta = report["taste_alignment"]
    assert set(ta) == {"1:1", "1:3", "1:9"}
    for ratio, m in (("1:1", 1), ("1:3", 3), ("1:9", 9)):
        row = ta[ratio]
        # The protocol's arithmetic: m negatives per positive, every user with held-out items.
        assert row["shown"] - row["positives"] == pytest.approx(m * row["positives"], rel=0.02)
        for kind in ("most_likely", "sampled"):
            assert 0 <= row[kind]["accuracy"] <= 1
    # Each fitted component does better than its baseline, with a margin.
    assert ta["1:1"]["most_likely"]["accuracy"] > 0.75 and ta["1:1"]["sampled"]["accuracy"] > 0.7
    assert report["auc"]["model"] > report["auc"]["popularity"] + 0.04
    assert report["ratings"]["rmse"] < report["ratings"]["global_mean_rmse"] - 0.15
    assert report["ratings"]["tv"] < 0.05
    rows = {r["recommender"]: r for r in report["agreement"]["rows"]}
    assert rows["popularity"]["recall@10"] > 5 * rows["random"]["recall@10"]
    assert rows["popularity"]["watch_rate"] > rows["random"]["watch_rate"]
    # Conversations in the three intent modes, the same 40 users each; target-free users accept far more often than users after one item.
    cv = report["conversations"]
    assert cv["users"] == 40 and set(cv["modes"]) == {"target", "target_free", "held_out"}
    for m in cv["modes"].values():
        assert m["conversations"] == 40 and 0 <= m["success"] <= 1 and m["recall"]["@1"] <= m["recall"]["@3"] <= m["recall"]["@5"] <= 1
    assert cv["modes"]["target_free"]["success"] > cv["modes"]["held_out"]["success"]
    with Session(connect(db, create=False)) as s:
        stored = s.exec(select(Validation)).one()
    assert stored.name == "t1" and json.loads(stored.report_json)["auc"] == report["auc"]


def test_targets_are_checked_in_the_right_direction():
    report = {
        "taste_alignment": {"1:1": {"most_likely": {"accuracy": 0.9, "f1": 0.8}, "sampled": {"accuracy": 0.79, "f1": 0.7}}},
        "auc": {"model": 0.93},
        "ratings": {"rmse": 0.95, "tv": 0.01},
        "agreement": {"spearman_recall": 0.9},
    }
    t = check_targets(report)
    assert t["accuracy_most_likely_1:1"]["met"] and not t["f1_most_likely_1:1"]["met"]
    assert not t["rating_rmse"]["met"] and t["rating_tv"]["met"] and t["spearman"]["met"]


def test_bad_arguments_are_one_line_errors(capsys):
    assert main(["validate", "--holdout", "1.5"]) == 2
    assert "--holdout" in capsys.readouterr().err
    assert main(["validate", "--ticks", "0"]) == 2
    assert main(["validate", "no_such_scenario"]) == 2
    err = capsys.readouterr().err
    assert "unknown scenario" in err and "Traceback" not in err


def test_validate_needs_an_interaction_log(tmp_path, capsys):
    items = tmp_path / "items.csv"
    items.write_text("id,title\n1,A\n2,B\n3,C\n")
    scen = tmp_path / "s.yaml"
    scen.write_text(
        f"name: s\ncatalog: {{source: items_file, path: {items}, embedding_dim: 2}}\npopulation: {{source: sampled, n_users: 5}}\nworld: {{slate_size: 2}}\n"
    )
    assert main(["validate", str(scen), "--recommenders", "none"]) == 2
    assert "interaction log" in capsys.readouterr().err


def _title_rule(title: str) -> bool:
    return title[:1].upper() < "N"


def _answer(req) -> str:
    """A scripted model that watches exactly the movies whose title starts with A..M."""
    line = next(x for x in req.prompt_text.splitlines() if x.startswith("1. "))
    watch = _title_rule(line[3:])
    return json.dumps({"watch": [1] if watch else [], "ratings": [4] if watch else [], "feeling": "", "leave": False, "instruction": ""})


def test_the_llm_brain_is_validated_on_its_own_decisions(tmp_path):
    from recworld.llm.testing import ScriptedLLMServer
    from recworld.scenarios.build import build_catalog
    from recworld.scenarios.validate import validate
    from recworld.usermodel import fidelity as F
    from recworld.usermodel.bundled import bundled_model

    bundled_model()  # the holdout fit below reuses the cache when it is there
    with ScriptedLLMServer(_answer) as srv:
        llm = {"backend": "openai", "base_url": srv.base_url, "model": "scripted", "cache_path": None, "timeout_s": 5.0}
        scenario = load_scenario("quickstart").with_overrides(**{"brain.kind": "llm", "llm": llm})
        report = validate(scenario, recommenders=(), llm_users=6)
        calls = srv.request_count
    row = report["taste_alignment"]["1:1"]
    assert "most_likely" not in row and row["fallbacks"] == 0
    assert calls == row["shown"] + report["taste_alignment"]["1:3"]["shown"] + report["taste_alignment"]["1:9"]["shown"]
    # The protocol scores exactly the server's decisions: recompute them from the items shown.
    catalog, _ = build_catalog(scenario)
    shown = report["taste_alignment"]["1:1"]["items"]
    decisions = np.array([_title_rule(catalog.titles[i]) for i in shown["items"]])
    assert row["sampled"] == F.decision_metrics(decisions, np.array(shown["labels"]))
