"""User memory for LLM-backed users: RecAgent-style, but cheap enough for thousands of users.

All users' memories live in one :class:`MemoryStore` of numpy arrays (a
structure of arrays, like the world's user state):

- a *short-term buffer* per user (the last ``short_capacity`` observations of
  the current session), filled in batch from page decisions;
- a *long-term store* per user, bounded at ``capacity`` entries: at session
  end, short-term entries whose importance passes ``promote_threshold`` are
  promoted; when full, the entry with the lowest importance × recency is evicted;
- *reflections*: summaries written by the LLM (at most one per user every
  ``reflection_every`` sessions, driven by the hybrid brain) stored as
  high-importance long-term entries.

Importance comes from rules (how strongly the user rated, whether they
watched anything, whether they left), not from a per-observation LLM call.
Retrieval ranks long-term entries by ``similarity × recency × importance``
where similarity is the cosine between the query vector and the entry's
vector; vectors are catalog item embeddings (the mean of the items an
observation is about), so nothing is text-encoded on the hot path. Text is
rendered only when an entry is retrieved or persisted.

A :class:`MemoryStore` pickles (checkpoints); its recorder is re-attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from recworld.catalog import Catalog

# Entry kinds (stored as int8; names are what storage and the dashboard see).
WATCHED, SKIPPED, REFLECTION, CHAT, POST, INSTRUCTION = 0, 1, 2, 3, 4, 5
KIND_NAMES = ("watched", "skipped", "reflection", "chat", "post", "instruction")


@dataclass(frozen=True)
class MemoryItem:
    """A retrieved memory: its rendered text and bookkeeping."""

    text: str
    kind: str
    tick: int
    importance: float
    score: float


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)).astype(np.float32)


class MemoryStore:
    """Memories of all users of a world, as arrays.

    Args:
        n_users: users in the world.
        dim: dimension of the catalog embeddings.
        capacity: long-term entries kept per user.
        short_capacity: short-term (session) entries per user.
        promote_threshold: importance at or above which a short-term entry
            is promoted to long-term at session end.
        recency_half_life: ticks after which recency weight halves.
        reflection_every: sessions between reflections of one user (0 = never).
    """

    def __init__(
        self,
        n_users: int,
        dim: int,
        capacity: int = 24,
        short_capacity: int = 8,
        promote_threshold: float = 0.45,
        recency_half_life: float = 72.0,
        reflection_every: int = 5,
    ) -> None:
        self.n_users, self.dim = int(n_users), int(dim)
        self.capacity, self.short_capacity = int(capacity), int(short_capacity)
        self.promote_threshold = float(promote_threshold)
        self.recency_half_life = float(recency_half_life)
        self.reflection_every = int(reflection_every)
        n, c, s = self.n_users, self.capacity, self.short_capacity
        # Long-term store.
        self.vec = np.zeros((n, c, dim), np.float32)
        self.importance = np.zeros((n, c), np.float32)  # 0 = empty slot
        self.tick = np.full((n, c), -1, np.int64)
        self.kind = np.zeros((n, c), np.int8)
        self.item = np.full((n, c), -1, np.int64)
        self.value = np.full((n, c), np.nan, np.float32)
        self.text: dict[tuple[int, int], str] = {}  # (user, slot) -> free text (reflections, chats, ...)
        self.count = np.zeros(n, np.int64)  # long-term entries ever stored per user
        # Short-term buffer (a ring per user).
        self.s_vec = np.zeros((n, s, dim), np.float32)
        self.s_importance = np.zeros((n, s), np.float32)
        self.s_tick = np.full((n, s), -1, np.int64)
        self.s_kind = np.zeros((n, s), np.int8)
        self.s_item = np.full((n, s), -1, np.int64)
        self.s_value = np.full((n, s), np.nan, np.float32)
        self.s_text: dict[tuple[int, int], str] = {}
        self.s_len = np.zeros(n, np.int64)  # entries written to the ring this session
        self.last_reflection_session = np.zeros(n, np.int64)
        self.recorder: Any = None
        self.catalog: Catalog | None = None  # for rendering titles; set by the brain

    # ----------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["recorder"] = None  # a database connection: re-attached on resume
        return state

    # -------------------------------------------------------------- writes
    def observe_pages(
        self, users: np.ndarray, slates: np.ndarray, watched: np.ndarray, ratings: np.ndarray, leave: np.ndarray, item_embeddings: np.ndarray, tick: int
    ) -> None:
        """Add one short-term observation per page (vectorised over the batch).

        A page with watches becomes a ``watched`` entry about its best-rated
        watched item (vector: mean of watched items); a page with none becomes
        a ``skipped`` entry (vector: mean of the page). Importance rules:
        strong ratings and full pages matter more; an empty page the user
        left on matters (it is a complaint).
        """
        users = np.asarray(users, np.int64)
        if users.size == 0:
            return
        watched = np.asarray(watched, bool)
        ratings = np.asarray(ratings, np.float64)
        b, k = slates.shape
        n_w = watched.sum(axis=1)
        e = item_embeddings[slates]  # (b, k, d)
        w = watched.astype(np.float32)
        has = n_w > 0
        vec = np.where(has[:, None], np.einsum("bk,bkd->bd", w, e) / np.maximum(n_w, 1)[:, None], e.mean(axis=1))
        # Most telling watched item: strongest rating, else the first watched.
        strength = np.where(watched, np.where(np.isnan(ratings), 0.5, np.abs(ratings - 3.0) + 0.6), -1.0)
        best = strength.argmax(axis=1)
        item = np.where(has, slates[np.arange(b), best], slates[:, 0])
        val = np.where(has, ratings[np.arange(b), best], np.nan)
        dev = np.where(np.isnan(val), 0.0, np.abs(val - 3.0) / 2.0)
        importance = np.where(
            has,
            0.25 + 0.35 * dev + 0.25 * np.minimum(n_w / max(k, 1), 1.0),
            0.2 + 0.35 * np.asarray(leave, bool),
        ).astype(np.float32)
        kind = np.where(has, WATCHED, SKIPPED).astype(np.int8)
        slot = self.s_len[users] % self.short_capacity
        self.s_vec[users, slot] = _unit(vec)
        self.s_importance[users, slot] = importance
        self.s_tick[users, slot] = tick
        self.s_kind[users, slot] = kind
        self.s_item[users, slot] = item
        self.s_value[users, slot] = val
        for u, sl in zip(users.tolist(), slot.tolist()):
            self.s_text.pop((u, sl), None)
        self.s_len[users] += 1

    def add(
        self, user: int, tick: int, kind: int, importance: float, vec: np.ndarray, text: str | None = None, item: int = -1, value: float = float("nan")
    ) -> int:
        """Store one long-term entry directly (reflections, chats, posts); returns its slot."""
        slot = self._free_slot(user, tick)
        self.vec[user, slot] = _unit(np.asarray(vec, np.float32).reshape(-1))
        self.importance[user, slot] = max(float(importance), 1e-3)
        self.tick[user, slot] = tick
        self.kind[user, slot] = kind
        self.item[user, slot] = item
        self.value[user, slot] = value
        if text is not None:
            self.text[(user, slot)] = text
        else:
            self.text.pop((user, slot), None)
        self.count[user] += 1
        self._persist(user, slot)
        return slot

    def end_sessions(self, users: np.ndarray, tick: int) -> int:
        """Promote important short-term entries of ``users`` to long-term; clear their buffers.

        Returns:
            Entries promoted.
        """
        promoted = 0
        for u in np.asarray(users, np.int64).tolist():
            n = int(min(self.s_len[u], self.short_capacity))
            for sl in range(n):
                imp = float(self.s_importance[u, sl])
                if imp < self.promote_threshold:
                    continue
                slot = self._free_slot(u, tick)
                self.vec[u, slot] = self.s_vec[u, sl]
                self.importance[u, slot] = imp
                self.tick[u, slot] = self.s_tick[u, sl]
                self.kind[u, slot] = self.s_kind[u, sl]
                self.item[u, slot] = self.s_item[u, sl]
                self.value[u, slot] = self.s_value[u, sl]
                t = self.s_text.pop((u, sl), None)
                if t is not None:
                    self.text[(u, slot)] = t
                else:
                    self.text.pop((u, slot), None)
                self.count[u] += 1
                self._persist(u, slot)
                promoted += 1
            self.s_len[u] = 0
            self.s_importance[u] = 0.0
        return promoted

    def _free_slot(self, user: int, tick: int) -> int:
        empty = np.flatnonzero(self.importance[user] <= 0)
        if empty.size:
            return int(empty[0])
        keep = self.importance[user] * self._recency(self.tick[user], tick)
        # Reflections are summaries of many entries: evict them last.
        keep = np.where(self.kind[user] == REFLECTION, keep + 1.0, keep)
        return int(np.argmin(keep))

    def _recency(self, ticks: np.ndarray, now: int) -> np.ndarray:
        age = np.maximum(now - ticks, 0).astype(np.float32)
        return np.exp2(-age / self.recency_half_life)

    def _persist(self, user: int, slot: int) -> None:
        if self.recorder is not None:
            self.recorder.add_memory(
                int(user), int(self.tick[user, slot]), KIND_NAMES[int(self.kind[user, slot])], float(self.importance[user, slot]), self.render(user, slot)
            )

    # --------------------------------------------------------------- reads
    def render(self, user: int, slot: int, short: bool = False) -> str:
        """The text of a long-term (or, with ``short``, short-term) entry."""
        texts, kind, item, value = (self.s_text, self.s_kind, self.s_item, self.s_value) if short else (self.text, self.kind, self.item, self.value)
        t = texts.get((user, slot))
        if t is not None:
            return t
        k = int(kind[user, slot])
        it = int(item[user, slot])
        title = self.catalog.titles[it] if (self.catalog is not None and 0 <= it < len(self.catalog)) else f"item {it}"
        v = float(value[user, slot])
        if k == WATCHED:
            return f"Watched {title}" + (f" and rated it {int(v)}/5." if v == v else ".")
        if k == SKIPPED:
            return f"Skipped a page of recommendations like {title}."
        return title

    def retrieve(self, users: np.ndarray, queries: np.ndarray, tick: int, top_k: int = 3) -> list[list[MemoryItem]]:
        """The ``top_k`` long-term memories of each user most relevant to ``queries`` (B, d).

        Score = max(cos, 0) × recency × importance (vectorised over users).
        """
        users = np.asarray(users, np.int64)
        if users.size == 0 or top_k <= 0:
            return [[] for _ in range(users.size)]
        q = _unit(np.asarray(queries, np.float32).reshape(users.size, -1))
        sim = np.einsum("bd,bcd->bc", q, self.vec[users])
        imp = self.importance[users]
        score = (0.5 + 0.5 * np.clip(sim, -1.0, 1.0)) * self._recency(self.tick[users], tick) * imp
        score = np.where(imp > 0, score, -1.0)
        m = min(top_k, self.capacity)
        order = np.argsort(-score, axis=1, kind="stable")[:, :m]
        out = []
        for row, u in enumerate(users.tolist()):
            got = []
            for sl in order[row].tolist():
                if score[row, sl] < 0:
                    break
                got.append(MemoryItem(self.render(u, sl), KIND_NAMES[int(self.kind[u, sl])], int(self.tick[u, sl]), float(imp[row, sl]), float(score[row, sl])))
            out.append(got)
        return out

    def recent(self, user: int, n: int = 3) -> list[str]:
        """Texts of the user's newest short-term entries (this session), newest first."""
        total = int(self.s_len[user])
        out = []
        for j in range(min(n, total, self.short_capacity)):
            sl = (total - 1 - j) % self.short_capacity
            out.append(self.render(user, sl, short=True))
        return out

    def due_for_reflection(self, users: np.ndarray, sessions: np.ndarray) -> np.ndarray:
        """Mask of ``users`` whose last reflection is at least ``reflection_every`` sessions old."""
        users = np.asarray(users, np.int64)
        if self.reflection_every <= 0:
            return np.zeros(users.size, bool)
        have = (self.importance[users] > 0).sum(axis=1) >= 3
        return have & (np.asarray(sessions) - self.last_reflection_session[users] >= self.reflection_every)

    def reflection_vector(self, user: int) -> np.ndarray:
        """Importance-weighted mean vector of a user's long-term entries."""
        w = self.importance[user]
        if w.sum() <= 0:
            return np.zeros(self.dim, np.float32)
        return _unit((w[:, None] * self.vec[user]).sum(axis=0))

    def sizes(self) -> np.ndarray:
        """Long-term entries held per user."""
        return (self.importance > 0).sum(axis=1)


class UserMemory:
    """A user's view of the shared :class:`MemoryStore` (what ``UserAgent.memory`` holds)."""

    def __init__(self, store: MemoryStore, user: int) -> None:
        self.store = store
        self.user = user

    def __len__(self) -> int:
        return int(self.store.sizes()[self.user])

    def retrieve(self, query: np.ndarray, tick: int, top_k: int = 3) -> list[MemoryItem]:
        """Top memories for a query vector."""
        return self.store.retrieve(np.array([self.user]), np.asarray(query)[None, :], tick, top_k)[0]

    def texts(self) -> list[str]:
        """All long-term memories of the user, oldest first."""
        s = self.store
        slots = [sl for sl in np.argsort(s.tick[self.user], kind="stable").tolist() if s.importance[self.user, sl] > 0]
        return [s.render(self.user, sl) for sl in slots]


__all__ = ["KIND_NAMES", "MemoryItem", "MemoryStore", "UserMemory"]
