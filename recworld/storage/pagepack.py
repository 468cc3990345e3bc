"""The page records of a block of served pages, laid out by one compiled pass (layout: :mod:`recworld.storage.pagelog`).

Packing runs in the world's process when a tick ends (``LoggedTick.of``):
done with numpy it was a fifth of a logged tick's cost there at 10,000
users (a scatter of every page's bytes by fancy indexing, and a dozen
temporaries per block), where this pass writes each byte once.
"""

from __future__ import annotations

import numpy as np

from recworld.jit import njit

# Copies of pagelog's layout constants, not imports: kernels compile constants in, and pagelog is not under the
# kernel cache key (tests/recworld/test_jit.py); test_pagepack.py reads every record back through pagelog's own.
_IMPRESSIONS, _SKIPS, _FRAC, _FLOAT_RATINGS = 1, 2, 4, 8  # pagelog.IMPRESSIONS, SKIPS, FRAC, FLOAT_RATINGS
HEAD_SIZE = 19  # pagelog.PAGE_HEAD: <HHHBiii
MAX_MARK_RATING = 126  # ItemTick marks hold 1 + rating in an int8


@njit(cache=True)
def _put(buf, pos, value, n) -> int:
    # ``n`` little-endian bytes of an integer (two's complement for a negative one, as struct writes it).
    for j in range(n):
        buf[pos + j] = (value >> (8 * j)) & 255
    return pos + n


@njit(cache=True)
def _put8(buf, pos, bits) -> int:
    # A float64's 8 bytes (given as its uint64 bits), little-endian.
    for j in range(8):
        buf[pos + j] = np.uint8((bits >> np.uint64(8 * j)) & np.uint64(255))
    return pos + 8


@njit(cache=True)
def _pack(slates, watched, frac_bits, ratings, rating_bits, start, impressions, skips, buf_out):
    """Counts and flags (first call, ``buf_out`` empty) or the records themselves (second call, into ``buf_out``)."""
    b, k = slates.shape
    n_w = np.zeros(b, np.int64)
    n_r = np.zeros(b, np.int64)
    has_frac = False
    float_r = False
    for p in range(b):
        for j in range(k):
            if watched[p, j]:
                n_w[p] += 1
                if frac_bits[p, j] != np.uint64(0x3FF0000000000000):  # 1.0
                    has_frac = True
                r = ratings[p, j]
                if r == r:
                    n_r[p] += 1
                    if r != np.floor(r) or r < 1.0 or r > 127.0:
                        float_r = True
    flags = (_IMPRESSIONS if impressions else 0) | (_SKIPS if skips else 0) | (_FRAC if has_frac else 0) | (_FLOAT_RATINGS if float_r else 0)
    nb = (k + 7) // 8
    rsize = 8 if float_r else 1
    lens = np.empty(b, np.int64)
    for p in range(b):
        lens[p] = HEAD_SIZE + 4 * k + nb + (8 * n_w[p] if has_frac else 0) + (rsize * n_w[p] if n_r[p] > 0 else 0)
    if buf_out.shape[0] == 0:
        return lens, n_w, n_r, flags
    n_imp = b * k if impressions else 0
    total_ws = 0
    for p in range(b):
        total_ws += k if skips else n_w[p]
    pos = 0
    sw = start + n_imp
    sr = start + n_imp + total_ws
    for p in range(b):
        pos = _put(buf_out, pos, k, 2)
        pos = _put(buf_out, pos, n_w[p], 2)
        pos = _put(buf_out, pos, n_r[p], 2)
        pos = _put(buf_out, pos, flags, 1)
        pos = _put(buf_out, pos, start + p * k if impressions else start, 4)
        pos = _put(buf_out, pos, sw, 4)
        pos = _put(buf_out, pos, sr, 4)
        sw += k if skips else n_w[p]
        sr += n_r[p]
        for j in range(k):
            pos = _put(buf_out, pos, slates[p, j], 4)
        for q in range(nb):  # numpy.packbits order: the first item is the byte's high bit
            byte = 0
            for j in range(8 * q, min(k, 8 * q + 8)):
                if watched[p, j]:
                    byte |= 1 << (7 - (j - 8 * q))
            buf_out[pos] = byte
            pos += 1
        if has_frac:
            for j in range(k):
                if watched[p, j]:
                    pos = _put8(buf_out, pos, frac_bits[p, j])
        if n_r[p] > 0:
            for j in range(k):
                if watched[p, j]:
                    if float_r:
                        pos = _put8(buf_out, pos, rating_bits[p, j])
                    else:
                        r = ratings[p, j]
                        buf_out[pos] = np.uint8(np.int64(r) if r == r else 0)  # 0: watched, not rated
                        pos += 1
    return lens, n_w, n_r, flags


@njit(cache=True)
def _by_item(items, users, watched, ratings, n_items, out_users, out_marks, out_rv, out_odd, counts, w, nr):
    # A stable counting sort of a tick's impressions by item (log order kept within an item), with each one's mark.
    n = items.shape[0]
    for e in range(n):
        counts[items[e]] += 1
    pos = np.empty(n_items, np.int64)
    acc = 0
    for it in range(n_items):
        pos[it] = acc
        acc += counts[it]
    for e in range(n):
        it = items[e]
        p = pos[it]
        pos[it] += 1
        out_users[p] = users[e]
        r = ratings[e]
        rated = watched[e] and r == r
        rv = r if rated else 0.0
        odd = rated and (r != np.floor(r) or r < 1.0 or r > MAX_MARK_RATING)  # a rating an int8 mark (1 + r) cannot hold
        mark = 2 if odd else (1 + np.int64(rv) if rated else (1 if watched[e] else 0))
        out_marks[p] = mark
        out_rv[p] = rv
        out_odd[p] = odd
        if mark > 0:
            w[it] += 1
        if mark >= 2:
            nr[it] += 1


def impressions_by_item(items: np.ndarray, users: np.ndarray, watched: np.ndarray, ratings: np.ndarray) -> tuple[np.ndarray, ...]:
    """A tick's impressions (flat arrays, one entry per item shown to a user) grouped by item, in log order within an item.

    Returns the items shown (ascending), each one's first position and count,
    watched and rated counts, and per impression (grouped): the user, the
    ItemTick mark (layout: ``pagelog.item_tick_rows``; 2 where the rating
    needs float64), the rating or 0.0, and whether it needs float64.
    """
    it = np.ascontiguousarray(items, np.int64)
    n_items = int(it.max()) + 1 if it.size else 0
    n = it.size
    out_users = np.empty(n, "<i4")
    out_marks = np.empty(n, np.int8)
    out_rv = np.empty(n, np.float64)
    out_odd = np.empty(n, np.bool_)
    counts, w, nr = (np.zeros(n_items, np.int64) for _ in range(3))
    args = (np.ascontiguousarray(users, np.int64), np.ascontiguousarray(watched, np.bool_), np.ascontiguousarray(ratings, np.float64))
    _by_item(it, *args, n_items, out_users, out_marks, out_rv, out_odd, counts, w, nr)
    shown = np.flatnonzero(counts)
    first = (np.cumsum(counts) - counts)[shown]
    return shown, first, counts[shown], w[shown], nr[shown], out_users, out_marks, out_rv, out_odd


def pack_pages(
    slates: np.ndarray, watched: np.ndarray, frac: np.ndarray, ratings: np.ndarray, start: int, impressions: bool, skips: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """One block's page records (head and data) in one buffer, with each record's length, watched and rated counts, and the pages' flags.

    Args:
        slates: (b, k) items shown.
        watched: (b, k) bool.
        frac: (b, k) watched shares.
        ratings: (b, k) ratings, NaN where none.
        start: the tick's event index of the block's first per-item event (the records' seqs count from it).
        impressions: IMPRESSION events were logged; skips: SKIP events were logged.
    """
    sl = np.ascontiguousarray(slates, np.int64)
    w = np.ascontiguousarray(watched, np.bool_)
    fr = np.ascontiguousarray(frac, np.float64)
    rt = np.ascontiguousarray(ratings, np.float64)
    args = (sl, w, fr.view(np.uint64), rt, rt.view(np.uint64), int(start), bool(impressions), bool(skips))
    lens, n_w, n_r, flags = _pack(*args, np.empty(0, np.uint8))
    buf = np.empty(int(lens.sum()), np.uint8)
    _pack(*args, buf)
    return buf, lens, n_w, n_r, int(flags)


__all__ = ["impressions_by_item", "pack_pages"]
