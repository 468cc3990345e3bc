"""Storage: SQLModel tables, the batched run recorder and rollback (SQLite by default, any SQLAlchemy URL).

Read queries of the CLI and the exports are in :mod:`recworld.storage.queries`;
the dashboard keeps its own in ``recworld.dashboard.queries``.
"""

from recworld.storage.db import DEFAULT_DB_URL, connect, normalise_url
from recworld.storage.models import (
    Checkpoint,
    Edge,
    EvalResult,
    Event,
    Interview,
    Item,
    ItemTick,
    LLMCall,
    MemoryRecord,
    RetentionPoint,
    Run,
    TickMetrics,
    TickSummary,
    UserProfile,
    UserSnapshot,
    UserTick,
    Validation,
)
from recworld.storage.recorder import rollback

__all__ = [
    "DEFAULT_DB_URL",
    "Checkpoint",
    "Edge",
    "EvalResult",
    "Event",
    "Interview",
    "Item",
    "ItemTick",
    "LLMCall",
    "MemoryRecord",
    "UserTick",
    "RetentionPoint",
    "Run",
    "TickMetrics",
    "TickSummary",
    "UserProfile",
    "UserSnapshot",
    "Validation",
    "connect",
    "normalise_url",
    "rollback",
]
