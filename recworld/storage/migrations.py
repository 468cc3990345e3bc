"""Schema migrations: each step brings a database from version N to N+1.

Tables added in a new version are created by ``create_all``; a step here
only has to alter existing tables (add columns, backfill).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

# version -> function that upgrades a database from that version to version+1
STEPS: dict[int, Callable[[Engine], None]] = {}


def migrate(engine: Engine, from_version: int) -> None:
    """Apply every step from ``from_version`` up to the current schema version."""
    from recworld.storage.models import SCHEMA_VERSION

    for v in range(from_version, SCHEMA_VERSION):
        step = STEPS.get(v)
        if step is not None:
            step(engine)
