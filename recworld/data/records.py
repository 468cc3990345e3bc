"""Plain records produced by the loaders, before embedding."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RawItem:
    """An item as read from a data file."""

    external_id: str
    title: str
    text: str = ""
    tags: tuple[str, ...] = ()
    year: int | None = None
    created_at: str | None = None
    creator: str | None = None

    def embed_text(self) -> str:
        """The text that is embedded for this item."""
        parts = [self.title if self.year is None else f"{self.title} ({self.year})"]
        if self.tags:
            parts.append("Genres: " + ", ".join(self.tags) + ".")
        if self.text and self.text != self.title:
            parts.append(self.text)
        return " ".join(parts)


@dataclass(frozen=True)
class RawUser:
    """A real user's demographics as read from a data file."""

    external_id: str
    age: int | None = None
    gender: str | None = None
    occupation: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
