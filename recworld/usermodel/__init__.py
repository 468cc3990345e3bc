"""The user model: one implementation of how simulated users decide and change.

- :mod:`~recworld.usermodel.params`: named parameter records.
- :mod:`~recworld.usermodel.draws`: the layout of the random draws the model takes as inputs.
- :mod:`~recworld.usermodel.kernels`: the compiled functions (decide, apply a page, start and end sessions)
  that the World, the envs' fast path, distillation and validation all call.
- :mod:`~recworld.usermodel.items`: item tables (the model's view of items).
"""

from recworld.usermodel.draws import END_WIDTH, PageDraws, uniforms
from recworld.usermodel.kernels import ItemTable, Platform
from recworld.usermodel.params import CHOICE_TERMS, LEAVE_TERMS, DecisionParams, decision_record, dynamics_record

__all__ = [
    "CHOICE_TERMS",
    "END_WIDTH",
    "LEAVE_TERMS",
    "DecisionParams",
    "ItemTable",
    "PageDraws",
    "Platform",
    "decision_record",
    "dynamics_record",
    "uniforms",
]
