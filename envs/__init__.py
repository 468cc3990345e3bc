"""Gymnasium and PettingZoo environments over a RecWorld world.

Ids (registered on ``import recworld.envs`` or :func:`recworld.envs.registration.register_all`):
``RecWorld/Feed-v0`` (single user, native vector env) and ``RecWorld/Platform-v0``
(a whole platform per step). The PettingZoo competition env is
:func:`recworld.envs.competition.parallel_env`.
"""

from recworld.envs.registration import register_all

register_all()

__all__ = ["register_all"]
