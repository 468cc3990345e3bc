"""Storage: SQLModel tables and the batched run recorder (SQLite by default, any SQLAlchemy URL)."""

from recworld.storage.db import DEFAULT_DB_URL, connect, normalise_url
from recworld.storage.models import (
    Checkpoint,
    Edge,
    EvalResult,
    Event,
    Item,
    LLMCall,
    MemoryRecord,
    RetentionPoint,
    Run,
    TickMetrics,
    UserProfile,
    UserSnapshot,
    Validation,
)

__all__ = [
    "DEFAULT_DB_URL",
    "Checkpoint",
    "Edge",
    "EvalResult",
    "Event",
    "Item",
    "LLMCall",
    "MemoryRecord",
    "RetentionPoint",
    "Run",
    "TickMetrics",
    "UserProfile",
    "UserSnapshot",
    "Validation",
    "connect",
    "normalise_url",
]
