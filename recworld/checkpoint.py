"""Checkpoints: the complete state of a World as compressed bytes, and back — or only what changed since the last complete one.

Everything that determines the future of a run (user arrays, agents and
their memory, the recommender's parameters, RNG states, the clock, the social
graph) is pickled. Observers (database connections, live views) and LLM
clients are not state: they are re-attached on resume.

A checkpoint is the world's pickle with its large arrays (16 KiB or more:
the seen bits, the users' state, the catalog's vectors, a recommender's
factors) kept apart by key, compressed with LZ4 (its fastest level: at
100,000 users it compressed 103 MiB in about 0.1 s where zlib's fastest
level took 1.6 s; the checkpoint is taken in the world's thread, so its
speed is the world's).

A run's :class:`Checkpointer` makes the next checkpoints *incremental*: the
world's pickle without its large arrays, plus only the rows of those arrays
that differ from the last complete checkpoint (compared byte for byte
against a copy kept in memory), and of an array replaced by a longer one
(the catalog's, as items are added) its changed and its new rows. A tick
changes the rows of the users who were active, so an incremental
checkpoint is sized to the active share: at a million users the seen bits
alone are 1.4 GiB, of which a tick touches a few per cent. When the
changed rows grow past ``delta_share`` of the large arrays the next one is
complete again. Loading an incremental checkpoint needs its complete one
(``base``): the run database keeps it (``Checkpoint.base_tick``). A world
without large arrays gets complete checkpoints only.

Checkpoints written before (arrays by persistent id: ``RWCK3``; one pickle: LZ4 ``RWCK2``, zlib ``RWCK1``) still load.
"""

from __future__ import annotations

import io
import pickle
import secrets
import struct
import weakref
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lz4.frame
import numpy as np

from recworld.errors import RecWorldError
from recworld.gcpause import paused_gc

if TYPE_CHECKING:  # pragma: no cover
    from recworld.world import World

MAGIC = b"RWCK4"  # LZ4 frame of a pickled _Stored (the world's pickle, its large arrays apart), the arrays' bytes out of band
MAGIC_PERSISTENT_ID = b"RWCK3"  # written before: the same, the arrays referred to by persistent id
MAGIC_PICKLE_LZ4 = b"RWCK2"  # written before: the world's whole pickle, LZ4
MAGIC_ZLIB = b"RWCK1"  # written before LZ4

#: Arrays of at least this many bytes are kept apart (and diffed by rows in incremental checkpoints).
LARGE_ARRAY_BYTES = 1 << 14
_PID = "rw-array"  # RWCK3's persistent ids
_WORD_CHUNK = 1 << 22  # 8-byte words compared at a time (bounds the temporary arrays)
_LZ4_CHUNK = 1 << 26  # bytes handed to the compressor at a time (bounds its output buffer)
_ALIGN = 64  # each array's bytes start at a multiple of this in the decompressed checkpoint


@dataclass
class _Rows:
    """The rows of an array that changed since the complete checkpoint: their indices (first axis) and values."""

    index: np.ndarray
    values: np.ndarray


@dataclass
class _Grown:
    """An array replaced since the complete checkpoint by a longer one (the catalog's arrays when items are added):
    the complete one's array ``base`` with its changed rows, then the new rows."""

    base: int
    index: np.ndarray
    values: np.ndarray
    tail: np.ndarray


@dataclass
class _Stored:
    """What a checkpoint's bytes hold."""

    token: str  # names a complete checkpoint; an incremental one carries its base's token
    base_tick: int | None  # None: complete
    world: bytes  # the world's pickle, large arrays as references to their keys (RWCK3: persistent ids (_PID, key))
    arrays: dict[int, np.ndarray | _Rows | _Grown]


class _TooLarge(Exception):
    """An incremental checkpoint would exceed its share of the complete one."""


def _large(obj: Any) -> bool:
    return type(obj) is np.ndarray and obj.nbytes >= LARGE_ARRAY_BYTES and obj.dtype.kind in "biufc" and obj.ndim >= 1


class _Pickler(pickle.Pickler):
    """Pickles a world with its large arrays replaced by references to keys; ``place(array) -> key`` decides the keys.

    The arrays are caught by ``reducer_override``, which pickle calls for every object but the plain builtins (str,
    int, float, list, dict, tuple, ...); a ``persistent_id`` hook (the format before, ``RWCK3``) is called for all of
    them and cost half of a 1,000-user world's pickling time.
    """

    def __init__(self, file: io.BytesIO, place: Any) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._place = place

    def reducer_override(self, obj: Any) -> Any:
        if not _large(obj):
            return NotImplemented
        # Pickle memoises what this returns: an array met twice is placed once and loads as one array.
        return _stored_array, (self._place(obj),)


def _stored_array(key: int) -> np.ndarray:
    """Stands for a checkpoint's array ``key`` in the world's pickle; :class:`_Unpickler` resolves it."""
    raise pickle.UnpicklingError(f"array {key} of a checkpoint read outside recworld.checkpoint.load_world")


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, arrays: dict[int, np.ndarray]) -> None:
        super().__init__(file)
        self._arrays = arrays

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == _stored_array.__name__:
            return self._array
        return super().find_class(module, name)

    def _array(self, key: Any) -> np.ndarray:
        if key not in self._arrays:
            raise pickle.UnpicklingError(f"the checkpoint has no array {key!r}")
        return self._arrays[key]

    def persistent_load(self, pid: Any) -> Any:
        # Checkpoints written before (RWCK3) refer to their arrays by persistent id.
        if not (isinstance(pid, tuple) and len(pid) == 2 and pid[0] == _PID and pid[1] in self._arrays):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return self._arrays[pid[1]]


def changed_rows(now: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Indices (first axis) of the rows of ``now`` whose bytes differ from ``before``'s (same shape and dtype)."""
    n = now.shape[0]
    if now.size == 0:
        return np.zeros(0, np.int64)
    a = np.ascontiguousarray(now).reshape(-1).view(np.uint8)
    b = np.ascontiguousarray(before).reshape(-1).view(np.uint8)
    row = a.size // n
    # Compared 8 bytes at a time over the whole array (rows need not be a multiple of 8 bytes: the seen bits' are
    # 1,500 at 12,000 columns); a changed word marks the row of its first and of its last byte.
    words = a.size // 8
    wa, wb = a[: words * 8].view(np.uint64), b[: words * 8].view(np.uint64)
    hits = [np.flatnonzero(wa[s : s + _WORD_CHUNK] != wb[s : s + _WORD_CHUNK]) + s for s in range(0, words, _WORD_CHUNK)]
    first = np.concatenate(hits or [np.zeros(0, np.int64)]) * 8
    tail = np.flatnonzero(a[words * 8 :] != b[words * 8 :]) + words * 8
    if row % 8 == 0:
        rows = np.concatenate([first // row, tail // row])
    else:  # a word across two rows marks both (first and last byte's rows, interleaved: still in order)
        rows = np.concatenate([np.stack([first // row, (first + 7) // row], axis=1).reshape(-1), tail // row])
    rows = rows[np.concatenate([[True], rows[1:] != rows[:-1]])] if rows.size else rows  # sorted: drop repeats
    if row % 8:  # keep the rows that differ
        rows = rows[(a.reshape(n, row)[rows] != b.reshape(n, row)[rows]).any(axis=1)]
    return rows


class Checkpointer:
    """Takes one run's checkpoints: complete ones, and between them incremental ones sized to what changed.

    Called after a tick ends (the world's ``tick`` is the next one), it
    returns the bytes of a complete checkpoint, or ``(bytes, base_tick)`` for
    an incremental one that applies to the complete checkpoint stored under
    ``base_tick``. It keeps a copy of the complete checkpoint's large arrays
    (their size again in memory) to compare against.

    Args:
        delta_share: make the checkpoint incremental while it (the world's
            pickle without its large arrays, plus their changed rows) is at
            most this share of the complete checkpoint (before compression);
            ``0``: every checkpoint complete (and no copy kept).
    """

    def __init__(self, delta_share: float = 0.25) -> None:
        if not 0.0 <= delta_share <= 1.0:
            raise ValueError(f"delta_share must be in [0, 1], got {delta_share}")
        self.delta_share = float(delta_share)
        self._token = ""
        self._base_tick: int | None = None
        self._base: dict[int, tuple[weakref.ref, np.ndarray]] = {}  # key -> (the array, its bytes at the complete checkpoint)
        self._base_bytes = 0

    def __call__(self, world: World) -> bytes | tuple[bytes, int]:
        if self._base_tick is not None:
            try:
                return self._incremental(world), self._base_tick
            except _TooLarge:
                pass
        return self.complete(world)

    def complete(self, world: World) -> bytes:
        """A complete checkpoint of ``world`` (and, with ``delta_share`` > 0, the base of the next incremental ones)."""
        arrays: list[np.ndarray] = []

        def place(a: np.ndarray) -> int:
            arrays.append(a)
            return len(arrays) - 1

        token = secrets.token_hex(8)
        pickled = _dumps(world, place)
        blob = _pack(_Stored(token, None, pickled, dict(enumerate(arrays))))
        old = {k: before for k, (_, before) in self._base.items()}
        self._base, self._base_tick, self._base_bytes = {}, None, 0
        size = sum(a.nbytes for a in arrays)
        if self.delta_share > 0 and size > 0:  # without large arrays an incremental checkpoint would be the same bytes
            self._base = {k: (weakref.ref(a), _copy_into(old.get(k), a)) for k, a in enumerate(arrays)}
            self._base_bytes = size
            self._token, self._base_tick = token, world.tick - 1
        return blob

    def _incremental(self, world: World) -> bytes:
        arrays: dict[int, np.ndarray | _Rows | _Grown] = {}
        budget = self.delta_share * self._base_bytes
        used = 0
        fresh = iter(range(len(self._base), 2**62))
        live = {id(a): key for key, (ref, _) in self._base.items() if (a := ref()) is not None}
        placed = 0  # arrays met so far: the world is pickled in the same order each time

        def place(a: np.ndarray) -> int:
            nonlocal used, placed
            at, placed = placed, placed + 1
            key = live.get(id(a))
            before = None if key is None else self._base[key][1]
            if before is None or a.shape != before.shape or a.dtype != before.dtype:
                # An array the complete checkpoint did not have, or one replaced since: whole, or as the array in the
                # same place in the complete one when it only grew (compared row by row, so any such array is exact).
                key = next(fresh)
                arrays[key] = a
                nbytes = a.nbytes
                then = self._base.get(at, (None, None))[1]
                if then is not None and then.dtype == a.dtype and then.shape[1:] == a.shape[1:] and 0 < then.shape[0] <= a.shape[0]:
                    n = then.shape[0]
                    idx = changed_rows(a[:n], then)
                    grown = _by_rows_bytes(a, idx, a.shape[0] - n)
                    if grown < nbytes:  # else an unrelated array that happens to fit: whole is smaller
                        arrays[key], nbytes = _Grown(at, idx, a[idx], a[n:]), grown
                used += nbytes
                self._check(used, budget)
                return key
            idx = changed_rows(a, before)
            if idx.size:
                nbytes = _by_rows_bytes(a, idx, 0)
                # Most rows changed (state every user's tick touches): the array whole is fewer bytes than rows and indices.
                arrays[key], nbytes = (_Rows(idx, a[idx]), nbytes) if nbytes < a.nbytes else (a, a.nbytes)
                used += nbytes
                self._check(used, budget)
            return key

        # The world's pickle (without its large arrays) is in every checkpoint whole, complete or not: only the
        # arrays' bytes differ between the two kinds, so only they count against the share.
        pickled = _dumps(world, place)
        return _pack(_Stored(self._token, self._base_tick, pickled, arrays))

    @staticmethod
    def _check(used: float, budget: float) -> None:
        if used > budget:
            raise _TooLarge


def _by_rows_bytes(a: np.ndarray, changed: np.ndarray, new_rows: int) -> int:
    """Bytes of ``a`` stored by rows (:class:`_Rows`, :class:`_Grown`): the changed rows' indices and values, and its new rows."""
    return changed.nbytes + (changed.size + new_rows) * (a.nbytes // a.shape[0])


def _copy_into(buffer: np.ndarray | None, a: np.ndarray) -> np.ndarray:
    # The last complete checkpoint's copy is reused when it fits: a fresh 1.9 GiB (a million users) costs 3 s of page faults.
    if buffer is not None and buffer.shape == a.shape and buffer.dtype == a.dtype:
        np.copyto(buffer, a)
        return buffer
    return a.copy()


def _dumps(world: World, place: Any) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, place).dump(world)
    return buf.getvalue()


def _pack(stored: _Stored) -> bytes:
    """MAGIC, then one LZ4 frame of: the pickle of ``stored`` with its arrays' bytes out of band, their lengths, and
    those bytes, each at an aligned offset — compressed straight from the arrays' memory (no pickled copy of them)."""
    buffers: list[pickle.PickleBuffer] = []
    meta = pickle.dumps(stored, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    head = struct.pack("<Q", len(meta)) + meta + struct.pack(f"<Q{len(raws)}Q", len(raws), *(r.nbytes for r in raws))
    out = [MAGIC]
    c = lz4.frame.LZ4FrameCompressor(compression_level=lz4.frame.COMPRESSIONLEVEL_MIN)
    out.append(c.begin())
    offset = _write(c, out, head, 0)
    for r in raws:
        offset = _write(c, out, bytes(-offset % _ALIGN), offset)
        offset = _write(c, out, r, offset)
    out.append(c.flush())
    return b"".join(out)


def _write(c: lz4.frame.LZ4FrameCompressor, out: list[bytes], data: Any, offset: int) -> int:
    view = memoryview(data).cast("B")
    for s in range(0, view.nbytes, _LZ4_CHUNK):
        out.append(c.compress(view[s : s + _LZ4_CHUNK]))
    return offset + view.nbytes


def _unpack(blob: bytes) -> _Stored:
    # Decompressed into one bytearray, which the arrays are views of (writable, aligned; no second copy).
    def read() -> _Stored:
        data = lz4.frame.decompress(memoryview(blob)[len(MAGIC) :], return_bytearray=True)
        view = memoryview(data)
        (n_meta,) = struct.unpack_from("<Q", data, 0)
        meta = view[8 : 8 + n_meta]
        (n,) = struct.unpack_from("<Q", data, 8 + n_meta)
        sizes = struct.unpack_from(f"<{n}Q", data, 16 + n_meta)
        offset = 16 + n_meta + 8 * n
        raws = []
        for size in sizes:
            offset += -offset % _ALIGN
            raws.append(view[offset : offset + size])
            offset += size
        if offset != len(data):
            raise EOFError("checkpoint length does not match its contents")
        return pickle.loads(meta, buffers=raws)

    stored = _load(read)
    if not isinstance(stored, _Stored):
        raise RecWorldError("checkpoint is corrupt or from an incompatible version (unexpected content)")
    return stored


def dump_world(world: World) -> bytes:
    """Serialise ``world`` (without its observers) as a complete checkpoint."""
    return Checkpointer(delta_share=0.0).complete(world)


def load_world(blob: bytes, base: bytes | None = None) -> World:
    """Rebuild a world from checkpoint bytes; an incremental checkpoint needs ``base``, the complete one it names.

    Raises:
        RecWorldError: the blob is not a RecWorld checkpoint or is corrupt, or
            an incremental checkpoint comes without its complete one.
    """
    blob = bytes(blob)
    if blob.startswith((MAGIC, MAGIC_PERSISTENT_ID)):
        stored = _unpack(blob)
        arrays = stored.arrays
        if stored.base_tick is not None:
            if base is None:
                raise RecWorldError(f"this checkpoint is incremental: loading it needs the run's complete checkpoint of tick {stored.base_tick}")
            full = _unpack(bytes(base))
            if full.base_tick is not None or full.token != stored.token:
                raise RecWorldError(f"the checkpoint given as base is not the complete checkpoint of tick {stored.base_tick} this one applies to")
            arrays = _apply(full.arrays, stored.arrays)
        return _load(lambda: _Unpickler(io.BytesIO(stored.world), arrays).load())  # type: ignore[arg-type]
    if blob.startswith(MAGIC_PICKLE_LZ4):
        return _load(lambda: pickle.loads(lz4.frame.decompress(blob[len(MAGIC) :])))
    if blob.startswith(MAGIC_ZLIB):
        return _load(lambda: pickle.loads(zlib.decompress(blob[len(MAGIC) :])))
    raise RecWorldError("not a RecWorld checkpoint (bad header); the database may be from another tool")


def _apply(base: dict[int, Any], changes: dict[int, np.ndarray | _Rows | _Grown]) -> dict[int, np.ndarray]:
    # The base's arrays are writable views of its own decompressed buffer (see _unpack): changed rows go in place,
    # after the grown arrays have copied the rows they start from.
    arrays = dict(base)
    for key, change in changes.items():
        if isinstance(change, _Grown):
            grown = np.concatenate([base[change.base], change.tail])
            grown[change.index] = change.values
            arrays[key] = grown
    for key, change in changes.items():
        if isinstance(change, _Rows):
            arrays[key][change.index] = change.values
        elif not isinstance(change, _Grown):
            arrays[key] = change
    return arrays


def _load(read: Any) -> Any:
    try:
        with paused_gc():  # a million agents are made again
            return read()
    except (zlib.error, RuntimeError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, KeyError, struct.error, ValueError) as exc:
        raise RecWorldError(f"checkpoint is corrupt or from an incompatible version ({exc.__class__.__name__})") from None
