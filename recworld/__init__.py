"""RecWorld kernel: types, events, the World (a mesa.Model), catalog, storage, metrics, LLM runtime.

The kernel imports none of the other RecWorld packages; users, brains and
recommenders are injected through the Protocols in :mod:`recworld.protocols`.
Gymnasium ids (``RecWorld/Feed-v0`` …) are registered by ``import recworld.envs``.
"""

from recworld.errors import ConfigError, DataError, RecWorldError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "RecWorldError", "__version__"]
