"""The compiled packing of page records and of a tick's impressions by item: read back exactly, whatever the block's shape."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recworld.storage.pagelog import FLOAT_RATINGS, FRAC, IMPRESSIONS, SKIPS, decode, records
from recworld.storage.pagepack import impressions_by_item, pack_pages


def _block(rng: np.random.Generator, b: int, k: int, shares: bool, float_ratings: bool):
    slates = rng.integers(0, 100_000, (b, k))
    watched = rng.random((b, k)) < 0.4
    frac = np.where(watched, rng.random((b, k)) if shares else 1.0, 0.0)
    values = rng.random((b, k)) * 4 + 1 if float_ratings else rng.integers(1, 6, (b, k)).astype(float)
    ratings = np.where(watched & (rng.random((b, k)) < 0.5), values, np.nan)
    return slates, watched, frac, ratings


@pytest.mark.parametrize("k", [1, 7, 8, 9, 17])
@pytest.mark.parametrize(("shares", "float_ratings"), [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize(("impressions", "skips"), [(True, True), (False, True), (False, False)])
def test_page_records_read_back_exactly(k, shares, float_ratings, impressions, skips):
    """Every page's items, watched bits, shares and ratings decode back bit for bit; its seqs follow the block's event order."""
    rng = np.random.default_rng(k * 7 + shares * 3 + float_ratings)
    b, start = 23, 500
    slates, watched, frac, ratings = _block(rng, b, k, shares, float_ratings)
    buf, lens, n_w, n_r, flags = pack_pages(slates, watched, frac, ratings, start, impressions, skips)
    assert len(buf) == lens.sum() and n_w.tolist() == watched.sum(1).tolist()
    assert n_r.tolist() == (watched & ~np.isnan(ratings)).sum(1).tolist()
    assert bool(flags & FRAC) == shares and bool(flags & FLOAT_RATINGS) == float_ratings
    assert bool(flags & IMPRESSIONS) == impressions and bool(flags & SKIPS) == skips
    pages, events = records(b, buf.tobytes())
    assert events == [] and len(pages) == b
    seq_w = start + (b * k if impressions else 0)
    seq_r = seq_w + (b * k if skips else int(n_w.sum()))
    for p, (kk, nw, nr, fl, si, sw, sr, data) in enumerate(pages):
        assert (kk, nw, nr, fl) == (k, n_w[p], n_r[p], flags)
        assert (si, sw, sr) == (start + p * k if impressions else start, seq_w, seq_r)
        seq_w += k if skips else nw
        seq_r += nr
        items, bits, shares_back, ratings_back = decode(kk, nw, nr, fl, data)
        assert list(items) == slates[p].tolist() and bits == watched[p].tolist()
        assert list(shares_back) == frac[p][watched[p]].tolist()
        want = ratings[p][watched[p]].tolist()
        assert [(math.isnan(x), x if x == x else 0) for x in ratings_back] == [(math.isnan(x), x if x == x else 0) for x in want]


def test_a_block_without_pages_or_watches():
    buf, lens, n_w, n_r, flags = pack_pages(np.zeros((0, 5), np.int64), np.zeros((0, 5), bool), np.zeros((0, 5)), np.zeros((0, 5)), 0, False, True)
    assert buf.size == lens.size == 0 and flags == SKIPS
    slates = np.array([[3, 4]])
    buf, lens, n_w, n_r, flags = pack_pages(slates, np.zeros((1, 2), bool), np.zeros((1, 2)), np.full((1, 2), np.nan), 0, False, True)
    assert n_w.tolist() == n_r.tolist() == [0] and lens.tolist() == [19 + 8 + 1]  # head, two items, one byte of bits, no shares or ratings


def test_impressions_grouped_by_item_in_log_order():
    """Per item shown: its users in log order, their marks (0 skipped, 1 watched, 1 + r rated r, 2 + float64 for odd ratings) and counts."""
    rng = np.random.default_rng(4)
    n = 400
    items = rng.integers(0, 30, n)
    users = rng.integers(0, 1000, n)
    watched = rng.random(n) < 0.5
    ratings = np.where(watched & (rng.random(n) < 0.5), rng.choice([1.0, 3.0, 126.0, 127.0, 2.5, 0.0], n), np.nan)
    shown, first, counts, w, nr, g_users, marks, rv, odd = impressions_by_item(items, users, watched, ratings)
    assert shown.tolist() == sorted(set(items.tolist()))
    for it, a, c, ww, rr in zip(shown.tolist(), first.tolist(), counts.tolist(), w.tolist(), nr.tolist()):
        mine = np.flatnonzero(items == it)  # log order
        assert g_users[a : a + c].tolist() == users[mine].tolist() and c == mine.size
        want = []
        for e in mine:
            r = ratings[e]
            rated = watched[e] and r == r
            bad = rated and (r != int(r) or not 1 <= r <= 126)
            want.append((2 if bad else 1 + int(r)) if rated else int(watched[e]))
            assert rv[a + len(want) - 1] == (r if rated else 0.0) and odd[a + len(want) - 1] == bad
        assert marks[a : a + c].tolist() == want
        assert ww == sum(m > 0 for m in want) and rr == sum(m >= 2 for m in want)
    assert odd.any() and (marks == 127).any()  # both kinds of rating met
