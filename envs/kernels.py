"""Compiled (numba) kernels of the feed environments' fast path.

The feed envs spend their time in small batches (one focal user, or a
thousand focal users plus a few hundred background users), where the cost of
a page is numpy call overhead rather than arithmetic. These kernels do one
page for a batch of users, one round of session starts, and one round of
candidate draws + observations in a single compiled call each, on the
world's own arrays (in place).

They implement the same model as :class:`recworld.agents.brains.utility.UtilityBrain`
(decisions) and :meth:`recworld.world.World._serve_page` /
``_end_sessions`` / ``_start_sessions`` (state), without event logging or
tick metrics, which environments do not read. Randomness comes from one
64-bit seed per row, expanded
in the kernel by SplitMix64 (Steele, Lea and Flood 2014); the per-row seeds
come from one SplitMix64 stream whose state (a 1-element uint64 array) the
caller seeds once and the kernels advance, so runs are deterministic for a
given seed and no numpy draw is needed per step. ``tests/envs/test_kernels.py`` checks the
decision and dynamics statistics against the numpy path.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Index of each parameter in the packed float64 vectors the kernels take.
BRAIN_PARAMS = (
    "affinity", "quality", "popularity", "boredom", "position", "fatigue", "seen_penalty", "no_click",
    "rating_mean", "rating_affinity", "rating_affinity_offset", "rating_quality", "rating_noise", "rate_probability",
    "leave_base", "leave_fatigue", "leave_patience", "leave_quality",
)  # fmt: skip
WORLD_PARAMS = (
    "max_pages", "satisfaction_rate", "fatigue_per_page", "drift_rate", "churn_base", "churn_sensitivity",
    "mean_return_ticks", "return_sensitivity", "fatigue_recovery_ticks", "anchor_rate",
)  # fmt: skip
REWARD_PARAMS = ("watch_reward", "rating_weight", "return_bonus", "churn_penalty")

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_PI = 2.0 * math.pi
_LOG101 = math.log(101.0)


@njit(cache=True, inline="always")
def _uniform(s: np.uint64) -> tuple[np.uint64, float]:
    """Next SplitMix64 state and a uniform double in (0, 1)."""
    s = s + _GOLDEN
    z = s
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return s, ((z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _row_seed(rng_state) -> np.uint64:
    """Advance the caller's stream (``rng_state[0]``) and return a fresh row seed."""
    s, _ = _uniform(rng_state[0])
    rng_state[0] = s
    z = s
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _normal(s: np.uint64) -> tuple[np.uint64, float]:
    s, u1 = _uniform(s)
    s, u2 = _uniform(s)
    return s, math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


@njit(cache=True)
def _open_session(i, tick, away, wp, first_session, last_session, sessions, in_session, pages, fatigue, taste, taste0) -> None:
    # Fatigue recovers over the time away; interests drift back a little towards the core taste.
    fatigue[i] = fatigue[i] * np.float32(math.exp(-max(away, 1) / wp[8]))
    if first_session[i] < 0:
        first_session[i] = tick
    last_session[i] = tick
    sessions[i] += 1
    in_session[i] = True
    pages[i] = 0
    anchor = wp[9]
    if anchor > 0:
        d = taste.shape[1]
        norm = 0.0
        for t in range(d):
            v = (1.0 - anchor) * taste[i, t] + anchor * taste0[i, t]
            taste[i, t] = v
            norm += v * v
        norm = max(math.sqrt(norm), 1e-8)
        for t in range(d):
            taste[i, t] = taste[i, t] / norm


@njit(cache=True)
def start_sessions(users, tick, churned, in_session, next_return, first_session, last_session, sessions, pages, fatigue, taste, taste0, wp):
    """Open the sessions of ``users`` due at ``tick`` (``World._start_sessions`` without events); returns how many."""
    started = 0
    for i in users:
        if churned[i] or in_session[i] or next_return[i] > tick:
            continue
        away = 0 if first_session[i] < 0 else tick - last_session[i]
        _open_session(i, tick, away, wp, first_session, last_session, sessions, in_session, pages, fatigue, taste, taste0)
        started += 1
    return started


@njit(cache=True)
def serve_pages(
    users,
    slates,
    rng_state,
    tick,
    n_focal,
    bp,
    wp,
    rp,
    aff_scale,
    taste,
    taste0,
    recent,
    conformity,
    diversity,
    fatigue,
    patience,
    rating_bias,
    satisfaction,
    activity,
    pages,
    watches,
    sessions,
    in_session,
    churned,
    first_session,
    last_session,
    next_return,
    seen,
    exposure,
    watch_counts,
    emb,
    quality,
    last_share,
    last_rating,
    watched,
    ratings,
    leave,
    churn,
    reward,
):
    """One page for each row's user: decide (utility model), update state, end sessions.

    Rows whose user id is below ``n_focal`` are focal: they get a reward, their
    last-page features, and, when their session ends without churn, their next
    session at once (as if the away time the world drew had passed). Outputs are written to
    ``watched``, ``ratings`` (NaN = not rated), ``leave``, ``churn``, ``reward``.
    Returns how many non-focal users churned.
    """
    b, k = slates.shape
    d = emb.shape[1]
    # Decisions read the platform as it was before this batch (as the numpy path does).
    wcmax = 1
    for j in range(watch_counts.shape[0]):
        if watch_counts[j] > wcmax:
            wcmax = watch_counts[j]
    log_top = math.log1p(wcmax)
    util = np.empty(k)
    affs = np.empty(k)
    state = np.empty(b, np.uint64)
    for r in range(b):
        i = users[r]
        s = _row_seed(rng_state)
        for j in range(k):
            it = slates[r, j]
            a = 0.0
            bo = 0.0
            for t in range(d):
                a += taste[i, t] * emb[it, t]
                bo += recent[i, t] * emb[it, t]
            a *= aff_scale
            affs[j] = a
            pop = math.log1p(watch_counts[it]) / log_top
            util[j] = (
                bp[0] * a + bp[1] * quality[it] + bp[2] * conformity[i] * pop
                - bp[3] * (0.5 + diversity[i]) * max(bo, 0.0)
                - bp[4] * math.log2(1.0 + j) - bp[5] * fatigue[i] - bp[6] * seen[i, it]
            )  # fmt: skip
        s, u0 = _uniform(s)
        g_none = -math.log(-math.log(u0))
        n_w = 0
        for j in range(k):
            s, u = _uniform(s)
            w = util[j] - math.log(-math.log(u)) > bp[7] + g_none
            watched[r, j] = w
            s, z = _normal(s)
            raw = bp[8] + rating_bias[i] + bp[11] * quality[slates[r, j]] + bp[9] * (affs[j] - bp[10]) + bp[12] * z
            s, u = _uniform(s)
            ratings[r, j] = min(max(np.rint(raw), 1.0), 5.0) if (w and u < bp[13]) else np.nan
            n_w += w
        hazard = bp[14] + bp[15] * fatigue[i] - bp[16] * patience[i] - bp[17] * (n_w / k)
        s, u = _uniform(s)
        leave[r] = u < 1.0 / (1.0 + math.exp(-hazard)) or pages[i] + 1 >= wp[0]
        state[r] = s
    # State updates, after every decision of the batch.
    wmean = np.empty(d)
    bg_churned = 0
    for r in range(b):
        i = users[r]
        s = state[r]
        n_w = 0
        n_r = 0
        r_sum = 0.0
        bonus = 0.0
        for t in range(d):
            wmean[t] = 0.0
        for j in range(k):
            it = slates[r, j]
            seen[i, it] = True
            exposure[it] += 1
            if watched[r, j]:
                watch_counts[it] += 1
                n_w += 1
                for t in range(d):
                    wmean[t] += emb[it, t]
                if not math.isnan(ratings[r, j]):
                    n_r += 1
                    r_sum += (ratings[r, j] - 1.0) / 4.0
                    bonus += (ratings[r, j] - 3.0) / 2.0
        watches[i] += n_w
        pages[i] += 1
        mean_r = r_sum / n_r if n_r > 0 else 0.5
        page_q = 0.35 + 0.25 * min(n_w / 3.0, 1.0) + 0.4 * mean_r if n_w > 0 else 0.1
        satisfaction[i] = np.float32((1.0 - wp[1]) * satisfaction[i] + wp[1] * page_q)
        fatigue[i] += np.float32(wp[2])
        if n_w > 0:
            norm = 0.0
            for t in range(d):
                m = wmean[t] / n_w
                recent[i, t] = 0.6 * recent[i, t] + 0.4 * m
                if wp[3] > 0:
                    v = taste[i, t] + wp[3] * n_w * (m - taste[i, t])
                    taste[i, t] = v
                    norm += v * v
            if wp[3] > 0:
                norm = max(math.sqrt(norm), 1e-8)
                for t in range(d):
                    taste[i, t] = taste[i, t] / norm
        churn[r] = False
        if leave[r]:
            in_session[i] = False
            sat = float(satisfaction[i])
            p_churn = min(max(wp[4] * math.exp(wp[5] * (0.5 - sat)), 0.0), 0.95)
            s, u = _uniform(s)
            churn[r] = u < p_churn
            mean_gap = wp[6] / max(activity[i], 1e-3) * math.exp(-wp[7] * (sat - 0.5))
            s, u = _uniform(s)
            gap = 1 + int(math.floor(-math.log(u) * mean_gap))
            next_return[i] = tick + gap
            if churn[r]:
                churned[i] = True
            elif i < n_focal:
                # Focal users live on a compressed clock: back at once, the drawn away time passed.
                _open_session(i, tick, gap, wp, first_session, last_session, sessions, in_session, pages, fatigue, taste, taste0)
        if churn[r] and i >= n_focal:
            bg_churned += 1
        if i < n_focal:
            last_share[i] = n_w / k
            last_rating[i] = mean_r
            reward[r] = rp[0] * n_w + rp[1] * bonus + (rp[2] if leave[r] and not churn[r] else 0.0) - (rp[3] if churn[r] else 0.0)
        else:
            reward[r] = 0.0
    return bg_churned


@njit(cache=True)
def slates_from_action(action, candidates, out):
    """Candidate indices (F, k) -> distinct item ids; a repeated or out-of-range index becomes the lowest unused one."""
    f, k = action.shape
    n = candidates.shape[1]
    used = np.zeros(n, np.bool_)
    for r in range(f):
        used[:] = False
        for j in range(k):
            c = action[r, j]
            if c < 0 or c >= n or used[c]:
                c = 0
                while used[c]:
                    c += 1
            used[c] = True
            out[r, j] = candidates[r, c]


@njit(cache=True)
def draw_and_observe(
    rows,
    rng_state,
    draw,
    n_items,
    seen,
    candidates,
    static,
    watch_counts,
    recent,
    pages,
    sessions,
    last_share,
    last_rating,
    max_pages,
    dim,
    user_out,
    cand_out,
):
    """Draw N distinct candidates per focal row (unseen ones, uniformly; seen ones only when too few are left)
    when ``draw`` is set, then write the rows' observations to ``user_out`` (B, U) and ``cand_out`` (B, N, I)."""
    n = candidates.shape[1]
    e = static.shape[1] - 1
    dd = min(e, dim)
    scale = math.sqrt(dim / dd)
    taken = np.zeros(n_items, np.bool_)
    wcmax = 1
    for j in range(n_items):
        if watch_counts[j] > wcmax:
            wcmax = watch_counts[j]
    top = np.float32(math.log1p(wcmax))
    for b in range(rows.shape[0]):
        i = rows[b]
        if draw:
            s = _row_seed(rng_state)
            got = 0
            for _ in range(2 * n + 8):
                s, u = _uniform(s)
                it = min(int(u * n_items), n_items - 1)
                if not seen[i, it] and not taken[it]:
                    taken[it] = True
                    candidates[i, got] = it
                    got += 1
                    if got == n:
                        break
            if got < n:
                # Few unseen items left: pick among all of them (partial Fisher-Yates), then seen ones.
                for j in range(got):
                    taken[candidates[i, j]] = False
                got = 0
                for want_seen in (False, True):
                    pool = np.empty(n_items, np.int64)
                    m = 0
                    for it in range(n_items):
                        if seen[i, it] == want_seen:
                            pool[m] = it
                            m += 1
                    while got < n and m > 0:
                        s, u = _uniform(s)
                        p = min(int(u * m), m - 1)
                        candidates[i, got] = pool[p]
                        taken[pool[p]] = True
                        pool[p] = pool[m - 1]
                        m -= 1
                        got += 1
            for j in range(n):
                taken[candidates[i, j]] = False
        user_out[b, 0] = min(pages[i] / max(max_pages, 1), 1.0)
        user_out[b, 1] = last_share[i]
        user_out[b, 2] = last_rating[i]
        user_out[b, 3] = min(math.log1p(sessions[i]) / _LOG101, 1.0)
        for t in range(e):
            user_out[b, 4 + t] = min(max(recent[i, t] * scale, -1.0), 1.0) if t < dd else 0.0
        for j in range(n):
            it = candidates[i, j]
            for t in range(e):
                cand_out[b, j, t] = static[it, t]
            cand_out[b, j, e] = np.float32(math.log1p(watch_counts[it])) / top
            cand_out[b, j, e + 1] = static[it, e]


def pack(params: object, names: tuple[str, ...]) -> np.ndarray:
    """A float64 vector of the named attributes of ``params``, in kernel order."""
    return np.array([float(getattr(params, n)) for n in names], np.float64)


__all__ = ["BRAIN_PARAMS", "REWARD_PARAMS", "WORLD_PARAMS", "draw_and_observe", "pack", "serve_pages", "slates_from_action", "start_sessions"]
