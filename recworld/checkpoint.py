"""Checkpoints: the complete state of a World as compressed bytes, and back.

Everything that determines the future of a run (user arrays, agents and
their memory, the recommender's parameters, RNG states, the clock, the social
graph) is pickled. Observers (database connections, live views) and LLM
clients are not state: they are re-attached on resume.
"""

from __future__ import annotations

import pickle
import zlib
from typing import TYPE_CHECKING

from recworld.errors import RecWorldError

if TYPE_CHECKING:  # pragma: no cover
    from recworld.world import World

MAGIC = b"RWCK1"


def dump_world(world: World) -> bytes:
    """Serialise ``world`` (without its observers)."""
    return MAGIC + zlib.compress(pickle.dumps(world, protocol=pickle.HIGHEST_PROTOCOL), 1)


def load_world(blob: bytes) -> World:
    """Rebuild a world from :func:`dump_world` bytes.

    Raises:
        RecWorldError: the blob is not a RecWorld checkpoint or is corrupt.
    """
    if not blob.startswith(MAGIC):
        raise RecWorldError("not a RecWorld checkpoint (bad header); the database may be from another tool")
    try:
        return pickle.loads(zlib.decompress(blob[len(MAGIC) :]))
    except (zlib.error, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise RecWorldError(f"checkpoint is corrupt or from an incompatible version ({exc.__class__.__name__})") from None
