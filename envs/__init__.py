"""Gymnasium and PettingZoo environments over a RecWorld world.

Ids (registered on ``import recworld`` or :func:`envs.registration.register_all`):
``RecWorld/Feed-v0`` (single user, native vector env) and ``RecWorld/Platform-v0``
(a whole platform per step). The PettingZoo competition env is
:func:`envs.competition.parallel_env`.
"""

from envs.registration import register_all

register_all()

__all__ = ["register_all"]
