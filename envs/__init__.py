"""Gymnasium and PettingZoo environments over a RecWorld world.

Ids (registered on ``import recworld.envs`` or :func:`recworld.envs.registration.register_all`):
``RecWorld/Feed-v0`` (single user, native vector env), ``RecWorld/Platform-v0``
(a whole platform per step) and ``RecWorld/Conversation-v0`` (one conversation
with the platform's agent, native vector env). The PettingZoo competition env is
:func:`recworld.envs.competition.parallel_env`.
"""

from recworld.envs.registration import register_all

register_all()

__all__ = ["register_all"]
