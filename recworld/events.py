"""Events: what happened in the world, as append-only, columnar batches.

The hot path produces thousands of events per tick, so events travel as
:class:`EventBatch` columns (numpy arrays) rather than one object each.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class EventType(enum.IntEnum):
    """Kinds of events. Values are stable: they are stored in the event log."""

    IMPRESSION = 1  # an item shown on a page (value = position)
    WATCH = 2  # item watched (value = fraction watched)
    SKIP = 3  # item shown and not watched
    RATE = 4  # explicit rating 1..5 (value)
    LEAVE = 5  # session ended (value = pages seen; payload = reason, see recworld.payloads)
    RETURN = 6  # a user came back and started a session (value = ticks away)
    CHURN = 7  # user left the platform for good
    SESSION_START = 8  # first session of a user (value = 0)
    SEARCH = 9  # a search query (text; value = results watched; payload = results, see recworld.payloads)
    POST = 10  # user posted/shared an item to followers (text)
    SOCIAL_WATCH = 11  # item watched from the social feed
    CHAT = 12  # one chat message (text; value = other user id)
    FOLLOW = 13  # value = followed user id
    UNFOLLOW = 14  # value = unfollowed user id
    INSTRUCTION = 15  # reflective instruction to the recommender (text)
    FEELING = 16  # the user's stated feeling about a page (text)
    FALLBACK = 17  # an LLM decision fell back to the utility brain
    CONVERSE = 18  # one turn of a conversation with the platform's agent (text; value = turn; payload = role, act, items)
    CONVERSATION_END = 19  # a conversation ended (value = turns; item = the accepted item that made it a success; payload = outcome)

    @classmethod
    def parse(cls, name: str) -> EventType:
        """Parse a lower-case event type name such as ``"watch"``."""
        try:
            return cls[name.upper()]
        except KeyError:
            valid = ", ".join(t.name.lower() for t in cls)
            raise ValueError(f"unknown event type {name!r}; expected one of: {valid}") from None


INT_NONE = -1  # stands for "no item/user" in integer columns
#: Event types a served page produces per item shown (stored packed, one row per page; see recworld.storage.pagelog).
PAGE_ITEM_TYPES = (EventType.IMPRESSION, EventType.WATCH, EventType.SKIP, EventType.RATE)


@dataclass(frozen=True)
class PageBlock:
    """The pages of one ``serve_page`` call, kept packed next to their per-item events.

    The per-item events (IMPRESSION, WATCH/SKIP, RATE) of these pages are the
    rows ``start .. start + n_events`` of the batch that carries the block, in
    this order: impressions (when logged) of every page, then watch/skip of
    every page, then ratings. The event log stores the block (one row per
    page) instead of those rows and expands it back on read.

    Attributes:
        start: index of the block's first per-item event in its batch.
        n_events: how many per-item events the block stands for.
        users: (b,) users shown a page.
        slates: (b, k) items shown.
        watched: (b, k) bool.
        frac: (b, k) watched share of each item (1.0 where watched without a share).
        ratings: (b, k) rating, NaN where not rated (only watched items are rated).
        impressions: IMPRESSION events were logged.
        skips: SKIP events were logged.
    """

    start: int
    n_events: int
    users: np.ndarray
    slates: np.ndarray
    watched: np.ndarray
    frac: np.ndarray
    ratings: np.ndarray
    impressions: bool
    skips: bool

    def shifted(self, offset: int) -> PageBlock:
        return PageBlock(self.start + offset, self.n_events, self.users, self.slates, self.watched, self.frac, self.ratings, self.impressions, self.skips)


def payload_json(payload: dict[str, Any]) -> str:
    """A payload as stored in ``Event.payload`` (JSON, sorted keys; see :mod:`recworld.payloads`)."""
    return json.dumps(payload, sort_keys=True)


@dataclass
class EventBatch:
    """A columnar batch of events of one tick.

    Attributes:
        tick: simulated time of each event.
        user: user index.
        type: :class:`EventType` value.
        item: item index or ``INT_NONE``.
        value: a float payload (rating, position, ...), NaN if none.
        text: optional free text per event (sparse: index -> text).
        payload: optional JSON-able dict per event (sparse: index -> dict).
        pages: the served pages behind this batch's per-item page events
            (:class:`PageBlock`; how the event log stores them compactly).
    """

    tick: np.ndarray
    user: np.ndarray
    type: np.ndarray
    item: np.ndarray
    value: np.ndarray
    text: dict[int, str] = field(default_factory=dict)
    payload: dict[int, dict[str, Any]] = field(default_factory=dict)
    pages: list[PageBlock] = field(default_factory=list)

    @classmethod
    def empty(cls) -> EventBatch:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z.copy(), z.astype(np.int16), z.copy(), np.zeros(0, dtype=np.float64))

    @classmethod
    def build(
        cls,
        tick: int,
        users: np.ndarray,
        etype: EventType | np.ndarray,
        items: np.ndarray | None = None,
        values: np.ndarray | None = None,
        texts: list[str | None] | None = None,
        payloads: list[dict[str, Any] | None] | None = None,
    ) -> EventBatch:
        """Build a batch of events that share a tick (and maybe a type)."""
        users = np.asarray(users, dtype=np.int64).ravel()
        n = users.shape[0]
        types = np.full(n, int(etype), dtype=np.int16) if isinstance(etype, (int, EventType)) else np.asarray(etype, dtype=np.int16).ravel()
        items_a = np.full(n, INT_NONE, dtype=np.int64) if items is None else np.asarray(items, dtype=np.int64).ravel()
        vals = np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64).ravel()
        text = {i: t for i, t in enumerate(texts) if t is not None} if texts else {}
        payload = {i: p for i, p in enumerate(payloads) if p is not None} if payloads else {}
        return cls(np.full(n, tick, dtype=np.int64), users, types, items_a, vals, text, payload)

    def __len__(self) -> int:
        return int(self.user.shape[0])

    @staticmethod
    def concat(batches: list[EventBatch]) -> EventBatch:
        """Concatenate batches, keeping their order."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return EventBatch.empty()
        text: dict[int, str] = {}
        payload: dict[int, dict[str, Any]] = {}
        pages: list[PageBlock] = []
        offset = 0
        for b in batches:
            text.update({offset + i: t for i, t in b.text.items()})
            payload.update({offset + i: p for i, p in b.payload.items()})
            pages.extend(p.shifted(offset) for p in b.pages)
            offset += len(b)
        return EventBatch(
            np.concatenate([b.tick for b in batches]),
            np.concatenate([b.user for b in batches]),
            np.concatenate([b.type for b in batches]),
            np.concatenate([b.item for b in batches]),
            np.concatenate([b.value for b in batches]),
            text,
            payload,
            pages,
        )

    def of_type(self, *types: EventType) -> np.ndarray:
        """Boolean mask of events whose type is one of ``types``."""
        return np.isin(self.type, [int(t) for t in types])

    def take(self, idx: np.ndarray) -> EventBatch:
        """The events at ``idx`` (ascending) as a batch of their own, without page blocks (texts and payloads kept, the same objects)."""
        idx = np.asarray(idx, np.int64)
        pos = self.positions(idx)
        text = {pos[i]: t for i, t in self.text.items() if pos[i] >= 0}
        payload = {pos[i]: p for i, p in self.payload.items() if pos[i] >= 0}
        return EventBatch(self.tick[idx], self.user[idx], self.type[idx], self.item[idx], self.value[idx], text, payload)

    def positions(self, idx: np.ndarray) -> list[int]:
        """Each event's position in ``idx`` (ascending indices), -1 for events not in it: how :meth:`take` re-keys texts and payloads."""
        at = np.full(len(self), -1, np.int64)
        at[np.asarray(idx, np.int64)] = np.arange(len(idx))
        return at.tolist()

    def stored_columns(
        self, idx: np.ndarray, stored: dict[int, str] | None = None
    ) -> tuple[list[int | None], list[float | None], list[str | None], list[str | None]]:
        """Items, values, texts and payload JSON of the events at ``idx``, as the event log stores them (None where missing).

        Built column-wise (the hot path of logging). ``stored``: :meth:`stored_payloads`, when the caller has it already.
        """
        idx = np.asarray(idx, np.int64)
        item_a, value_a = self.item[idx], self.value[idx]
        items = item_a.astype(object)
        items[item_a == INT_NONE] = None
        values = value_a.astype(object)
        values[np.isnan(value_a)] = None
        n = idx.size
        whole = n == len(self) and (n == 0 or (idx[0] == 0 and idx[-1] == n - 1))
        pos = None if whole or not (self.text or self.payload) else {int(j): r for r, j in enumerate(idx.tolist())}
        texts: list[str | None] = [None] * n
        for i, t in self.text.items():
            r = i if pos is None else pos.get(i)
            if r is not None:
                texts[r] = t
        payloads: list[str | None] = [None] * n
        for i, js in (self.stored_payloads() if stored is None else stored).items():
            r = i if pos is None else pos.get(i)
            if r is not None:
                payloads[r] = js
        return items.tolist(), values.tolist(), texts, payloads

    def stored_payloads(self) -> dict[int, str]:
        """The payloads as the event log stores them (JSON, see :func:`payload_json`), by event index; a dict many events share (LEAVE reasons) is serialised once."""
        memo: dict[int, str] = {}
        out: dict[int, str] = {}
        for i, p in self.payload.items():
            js = memo.get(id(p))
            if js is None:
                js = memo[id(p)] = payload_json(p)
            out[i] = js
        return out

    def rows(self) -> Iterator[tuple[int, int, int, int | None, float | None, str | None, str | None]]:
        """Rows as (tick, user, type, item, value, text, payload_json) with None for missing."""
        for i in range(len(self)):
            item = int(self.item[i])
            val = float(self.value[i])
            p = self.payload.get(i)
            yield (
                int(self.tick[i]),
                int(self.user[i]),
                int(self.type[i]),
                None if item == INT_NONE else item,
                None if val != val else val,
                self.text.get(i),
                None if p is None else payload_json(p),
            )

    def digest(self, h: hashlib._Hash | None = None) -> str:
        """A sha256 over the batch content (used to prove determinism)."""
        h = h or hashlib.sha256()
        for arr in (self.tick, self.user, self.type, self.item):
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
        h.update(np.round(np.nan_to_num(self.value, nan=-999.0), 6).tobytes())
        h.update(json.dumps(sorted(self.text.items())).encode())
        h.update(json.dumps(sorted(self.payload.items()), sort_keys=True).encode())
        return h.hexdigest()
