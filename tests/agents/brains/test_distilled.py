"""The distilled brain recovers a teacher's choice model from its decisions."""

import numpy as np
import pytest

from recworld.agents.brains import DecisionParams, UtilityBrain
from recworld.agents.brains.distilled import DistilledBrain
from recworld.errors import ConfigError


def test_recovers_the_weights_of_a_utility_teacher(make_world, tmp_path):
    world = make_world(n=200, recommender="popularity", seed=4)
    world.run(24)  # varied state: fatigue, recent consumption, popularity, seen items
    truth = DecisionParams(affinity=2.2, position=0.8, no_click=1.5, satiation=0.0)
    student = DistilledBrain.fit(world, UtilityBrain(truth), pages=6000, seed=1)
    p = student.params
    assert p.affinity == pytest.approx(2.2, abs=0.25)
    assert p.position == pytest.approx(0.8, abs=0.2)
    assert p.no_click == pytest.approx(1.5, abs=0.3)
    assert p.leave_quality > 0 and p.leave_patience > 0
    again = DistilledBrain.load(student.save(tmp_path / "d.json"))
    assert again.params == student.params and again.fit_report["pages"] == 6000


def test_learns_a_position_only_teacher(make_world):
    from recworld.agents.brains import ScriptedBrain

    world = make_world(n=100, seed=2)
    teacher = ScriptedBrain(rule=lambda s: np.arange(s.shape[1])[None, :].repeat(s.shape[0], 0) < 2, pages=2)
    student = DistilledBrain.fit(world, teacher, pages=500)
    assert student.params.position > 3 and abs(student.params.affinity) < 0.5


def test_errors():
    with pytest.raises(ConfigError, match="does not exist"):
        DistilledBrain.load("/nonexistent/d.json")


def test_too_few_pages(make_world):
    with pytest.raises(ConfigError, match="at least 50 pages"):
        DistilledBrain.fit(make_world(n=10), UtilityBrain(), pages=10)
