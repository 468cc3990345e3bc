"""Which items each user has been shown: one bit per user and item.

A dense ``bool`` matrix costs a byte per user and item (10 GB for a million
users over 10,000 items); :class:`SeenMatrix` keeps the same facts in bits,
laid out as ``np.packbits(dense, axis=1)`` (row ``u``, byte ``it // 8``, bit
``7 - it % 8``): 1.25 GB at that size. It is the one implementation every
reader and writer goes through: numpy code reads dense rows of a batch of
users (``seen[users]``, unpacked on the fly), compiled kernels read and
write the packed ``bits`` with :func:`is_seen` / :func:`mark`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recworld.jit import njit


@njit(cache=True, inline="always")
def is_seen(bits: np.ndarray, u: int, it: int) -> bool:
    """Whether user ``u`` was shown item ``it`` (``bits``: a :class:`SeenMatrix`'s packed rows)."""
    return (bits[u, it >> 3] >> (7 - (it & 7))) & 1 != 0


@njit(cache=True, inline="always")
def mark(bits: np.ndarray, u: int, it: int) -> None:
    """Record that user ``u`` was shown item ``it``."""
    bits[u, it >> 3] |= np.uint8(1 << (7 - (it & 7)))


@njit(cache=True, inline="always")
def unmark(bits: np.ndarray, u: int, it: int) -> None:
    """Forget that user ``u`` was shown item ``it``."""
    bits[u, it >> 3] &= np.uint8(~(1 << (7 - (it & 7))) & 0xFF)


@njit(cache=True)
def _mark_pairs(bits: np.ndarray, users: np.ndarray, items: np.ndarray, value: bool) -> None:
    for r in range(users.shape[0]):
        if value:
            mark(bits, users[r], items[r])
        else:
            unmark(bits, users[r], items[r])


class SeenMatrix:
    """An (n_users, capacity) boolean matrix stored as bits.

    Indexing follows numpy's for the forms the simulator uses:
    ``seen[users]`` and ``seen[users, cols]`` give dense ``bool`` arrays (rows
    unpacked for that batch only), ``seen[u, it]`` a ``bool``;
    ``seen[users, items] = True`` marks (user, item) pairs, ``seen[users] = False``
    clears rows, and slices of rows and columns can be set.

    Args:
        n_users: rows.
        capacity: columns (items, including room for posts).
    """

    def __init__(self, n_users: int, capacity: int) -> None:
        self.bits = np.zeros((n_users, (capacity + 7) // 8), np.uint8)
        self.capacity = int(capacity)

    @classmethod
    def from_bits(cls, bits: np.ndarray, capacity: int) -> SeenMatrix:
        """Wrap packed rows (``np.packbits(dense, axis=1)``) of ``capacity`` columns."""
        m = cls.__new__(cls)
        m.bits = np.ascontiguousarray(bits, np.uint8)
        m.capacity = int(capacity)
        if m.bits.ndim != 2 or m.bits.shape[1] != (m.capacity + 7) // 8:
            raise ValueError(f"packed seen rows of shape {m.bits.shape} do not hold {capacity} columns")
        return m

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> SeenMatrix:
        """The bits of a dense (n_users, capacity) ``bool`` matrix."""
        dense = np.asarray(dense, bool)
        return cls.from_bits(np.packbits(dense, axis=1), dense.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.bits.shape[0]), self.capacity)

    @property
    def nbytes(self) -> int:
        return int(self.bits.nbytes)

    def __len__(self) -> int:
        return int(self.bits.shape[0])

    def rows(self, users: Any) -> np.ndarray:
        """Dense ``bool`` rows of ``users`` (an index array, a slice or one id), all ``capacity`` columns."""
        packed = self.bits[users]
        return np.unpackbits(packed, axis=-1, count=self.capacity).view(bool)

    def to_dense(self) -> np.ndarray:
        """The whole matrix as ``bool`` (tests and small worlds only: a byte per user and item)."""
        return self.rows(slice(None))

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            return self.rows(key)
        users, cols = key
        if np.ndim(users) == 0 and np.ndim(cols) == 0 and not isinstance(cols, slice):
            u, it = int(users), int(cols)
            if not 0 <= it < self.capacity:
                raise IndexError(f"item {it} is outside the seen matrix's {self.capacity} columns")
            return bool(is_seen(self.bits, u, it))
        if isinstance(cols, slice) or np.ndim(users) == 0:
            return self.rows(users)[..., cols]
        # Two index arrays: element-wise pairs, as numpy's advanced indexing.
        users, cols = np.broadcast_arrays(np.asarray(users, np.int64), np.asarray(cols, np.int64))
        return ((self.bits[users, cols >> 3] >> (7 - (cols & 7))) & 1).astype(bool)

    def __setitem__(self, key: Any, value: bool) -> None:
        users, cols = key if isinstance(key, tuple) else (key, slice(None))
        if not isinstance(users, slice) and not isinstance(cols, slice):
            # Index arrays (or ids): element-wise (user, item) pairs, as numpy's advanced indexing.
            users, cols = np.broadcast_arrays(np.atleast_1d(np.asarray(users, np.int64)), np.atleast_1d(np.asarray(cols, np.int64)))
            if cols.size and (cols.min() < 0 or cols.max() >= self.capacity):
                raise IndexError(f"item ids outside the seen matrix's {self.capacity} columns")
            _mark_pairs(self.bits, np.ascontiguousarray(users.ravel()), np.ascontiguousarray(cols.ravel()), bool(value))
        elif cols == slice(None) and not value:
            self.bits[users] = 0
        else:  # a block of rows and columns: unpack those rows, write, pack them back
            dense = self.rows(users)
            dense[..., cols] = value
            self.bits[users] = np.packbits(dense, axis=-1)

    def grow(self, capacity: int) -> None:
        """Widen to ``capacity`` columns (new columns unseen)."""
        width = (capacity + 7) // 8
        if width > self.bits.shape[1]:
            self.bits = np.concatenate([self.bits, np.zeros((self.bits.shape[0], width - self.bits.shape[1]), np.uint8)], axis=1)
        self.capacity = max(self.capacity, int(capacity))


__all__ = ["SeenMatrix", "is_seen", "mark"]
