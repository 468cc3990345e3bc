import numpy as np

from recworld.agents.brains import ScriptedBrain


def test_scripted_rules_and_instruction(make_world):
    w = make_world(n=4)
    b = ScriptedBrain(rule=lambda s: s < 0, pages=1, instruction="more comedies please")
    d = b.decide(w.page_context(np.arange(4), np.arange(40).reshape(4, 10), 0, np.zeros((4, 42))))
    assert not d.watched.any() and d.leave.all() and d.instructions[0] == "more comedies please"
    assert np.isnan(d.ratings).all()
