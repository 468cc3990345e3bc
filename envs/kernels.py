"""Compiled glue of the feed environments' fast path.

The feed envs spend their time in small batches (one focal user, or a
thousand focal users plus a few hundred background users), where the cost of
a page is call overhead rather than arithmetic. These kernels serve one page
for a batch of users, draw candidates and write observations in one compiled
call each. They decide and update users by calling the user model's own
kernels (:mod:`recworld.usermodel.kernels`), the same functions the numpy
:class:`~recworld.world.World` calls: only the source of the random draws
differs, and given the same draws the decisions are the same
(``tests/envs/test_kernels.py``).

Randomness comes from one SplitMix64 stream (Steele, Lea and Flood 2014)
whose state (a 1-element uint64 array) the caller seeds once and the kernels
advance, so runs are deterministic per seed and no numpy call is needed per step.
"""

from __future__ import annotations

import math

import numpy as np

from recworld.envs.features import record_pages, write_candidate_features, write_user_features
from recworld.jit import njit
from recworld.seen import is_seen
from recworld.state import UserState
from recworld.usermodel import kernels as UK
from recworld.usermodel.kernels import ItemTable, Platform

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

# The reward record's fields (a FeedConfig's), see recworld.usermodel.params.record.
REWARD_FIELDS = ("watch_reward", "rating_weight", "return_bonus", "churn_penalty")


@njit(cache=True, inline="always")
def _next(state) -> float:
    """Advance the stream ``state[0]`` and return a uniform double in the open interval (0, 1)."""
    s = state[0] + _GOLDEN
    state[0] = s
    z = s
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def fill_uniforms(state, out) -> None:
    """Fill the 2-D array ``out`` with uniforms from the stream."""
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            out[r, c] = _next(state)


@njit(cache=True)
def start_due(W, St, users, tick) -> int:
    """Open the sessions of those ``users`` who are due at ``tick`` (not churned, not in session); returns how many.

    ``St``: the users' arrays as a :class:`~recworld.state.UserState` or a plain tuple of its fields (a plain tuple types and unboxes several microseconds faster: :meth:`recworld.envs.pages.CompiledPages.bundles`).
    """
    S = UserState(*St)
    started = 0
    for i in users:
        if S.churned[i] or S.in_session[i] or S.next_return[i] > tick:
            continue
        UK.open_session(W, S, i, tick, 0 if S.first_session[i] < 0 else tick - S.last_session[i])
        started += 1
    return started


@njit(cache=True)
def serve_rows(P, W, Ra, St, ITt, Xt, users, slates, state, tick, n_focal, watched, frac, ratings, leave, churn, reward) -> int:
    """One page for each row's user: decide and apply it (the user model), end sessions, rewards.

    ``St``, ``ITt``, ``Xt``: the :class:`~recworld.state.UserState`,
    :class:`ItemTable` and :class:`Platform`, as named tuples or as plain
    tuples of their fields (a plain tuple types and unboxes several microseconds faster: :meth:`recworld.envs.pages.CompiledPages.bundles`).

    Rows whose user id is below ``n_focal`` are focal: they get a reward and,
    when their session ends without churn, their next session at once (as if
    the away time the world drew had passed). Returns how many non-focal users churned.
    """
    S, IT, X = UserState(*St), ItemTable(*ITt), Platform(*Xt)
    R = Ra[0]
    b, k = slates.shape
    draws = np.empty((b, 4 * k + 2))
    fill_uniforms(state, draws)
    UK.decide_pages(P, S, IT, X, users, slates, draws, watched, frac, ratings, leave)
    UK.apply_pages(W, S, IT, X, users, slates, watched, ratings, leave)
    n_end = 0
    for r in range(b):
        n_end += leave[r]
    ending = np.empty(n_end, np.int64)
    rows = np.empty(n_end, np.int64)
    m = 0
    for r in range(b):
        churn[r] = False
        if leave[r]:
            ending[m] = users[r]
            rows[m] = r
            m += 1
    end_draws = np.empty((n_end, 2))
    fill_uniforms(state, end_draws)
    ch = np.empty(n_end, np.bool_)
    gap = np.empty(n_end, np.int64)
    UK.end_sessions(W, S, ending, tick, end_draws, ch, gap)
    bg_churned = 0
    for m in range(n_end):
        r = rows[m]
        i = ending[m]
        churn[r] = ch[m]
        if ch[m]:
            if i >= n_focal:
                bg_churned += 1
        elif i < n_focal:
            # Focal users live on a compressed clock: back at once, the drawn away time passed.
            UK.open_session(W, S, i, tick, gap[m])
    for r in range(b):
        if users[r] >= n_focal:
            reward[r] = 0.0
            continue
        n_w = 0
        bonus = 0.0
        for j in range(k):
            if watched[r, j]:
                n_w += 1
                if not math.isnan(ratings[r, j]):
                    bonus += (ratings[r, j] - 3.0) / 2.0
        reward[r] = R.watch_reward * n_w + R.rating_weight * bonus
        if leave[r] and not churn[r]:
            reward[r] += R.return_bonus
        if churn[r]:
            reward[r] -= R.churn_penalty
    return bg_churned


@njit(cache=True)
def draw_candidates(rows, state, n_items, seen, out) -> None:
    """Draw ``out.shape[1]`` distinct candidates for each user in ``rows`` into ``out[row]``.

    Unseen items uniformly at random; seen ones only when too few unseen items are left.
    ``seen`` is the world's packed seen rows (:class:`recworld.seen.SeenMatrix`'s ``bits``).
    """
    n = out.shape[1]
    taken = np.zeros(n_items, np.bool_)
    for b in range(rows.shape[0]):
        i = rows[b]
        got = 0
        for _ in range(2 * n + 8):
            it = min(int(_next(state) * n_items), n_items - 1)
            if not is_seen(seen, i, it) and not taken[it]:
                taken[it] = True
                out[b, got] = it
                got += 1
                if got == n:
                    break
        if got < n:
            # Few unseen items left: pick among all of them (partial Fisher-Yates), then seen ones.
            for j in range(got):
                taken[out[b, j]] = False
            got = 0
            for want_seen in (False, True):
                pool = np.empty(n_items, np.int64)
                m = 0
                for it in range(n_items):
                    if is_seen(seen, i, it) == want_seen:
                        pool[m] = it
                        m += 1
                while got < n and m > 0:
                    p = min(int(_next(state) * m), m - 1)
                    out[b, got] = pool[p]
                    taken[pool[p]] = True
                    pool[p] = pool[m - 1]
                    m -= 1
                    got += 1
        for j in range(n):
            taken[out[b, j]] = False


@njit(cache=True)
def dedupe_into(action, n, out) -> None:
    """Candidate indices (B, k) -> distinct indices: a repeated or out-of-range index becomes the lowest unused one."""
    used = np.zeros(n, np.bool_)
    for r in range(action.shape[0]):
        used[:] = False
        for j in range(action.shape[1]):
            c = action[r, j]
            if c < 0 or c >= n or used[c]:
                c = 0
                while used[c]:
                    c += 1
            used[c] = True
            out[r, j] = c


@njit(cache=True)
def focal_step(
    P,
    W,
    Ra,
    St,
    ITt,
    Xt,
    action,
    candidates,
    rows,
    stream,
    tick,
    n_focal,
    static,
    last_share,
    last_rating,
    recent,
    slates,
    watched,
    frac,
    ratings,
    leave,
    churn,
    reward,
) -> int:
    """A Feed env step for focal users ``rows`` in one call: the action's candidates as slates, the page, the platform's log.

    ``action`` (B, k) holds candidate indices of each row (deduplicated as
    :func:`dedupe_into`); ``candidates`` is indexed by focal user. Outputs as
    :func:`serve_rows`, plus ``slates``. Returns how many non-focal users churned.
    """
    b, k = action.shape
    idx = np.empty((b, k), np.int64)
    dedupe_into(action, candidates.shape[1], idx)
    for r in range(b):
        for j in range(k):
            slates[r, j] = candidates[rows[r], idx[r, j]]
    churned = serve_rows(P, W, Ra, St, ITt, Xt, rows, slates, stream, tick, n_focal, watched, frac, ratings, leave, churn, reward)
    record_pages(rows, slates, watched, ratings, static, last_share, last_rating, recent)
    return churned


@njit(cache=True)
def focal_step_observe(
    P, W, Ra, St, ITt, Xt, action, candidates, rows, stream, tick, n_focal, static, last_share, last_rating, recent,
    slates, watched, frac, ratings, leave, churn, reward, n_items, max_pages, user_out, cand_out,
) -> int:  # fmt: skip
    """:func:`focal_step`, then :func:`observe_rows` of every focal user (fresh candidates), in one call.

    A single env's step is mostly call overhead: one call instead of two.
    ``user_out`` and ``cand_out`` have one row per focal user.
    """
    churned = focal_step(
        P, W, Ra, St, ITt, Xt, action, candidates, rows, stream, tick, n_focal, static, last_share, last_rating, recent,
        slates, watched, frac, ratings, leave, churn, reward,
    )  # fmt: skip
    S, X = UserState(*St), Platform(*Xt)
    focal = np.arange(n_focal)
    observe_rows(
        focal, stream, True, n_items, X.seen, candidates, static, X.watch_counts, S.pages_in_session, max_pages,
        last_share, last_rating, S.sessions, recent, user_out, cand_out,
    )  # fmt: skip
    return churned


@njit(cache=True)
def observe_rows(
    rows, stream, draw, n_items, seen, candidates, static, watch_counts, pages, max_pages, last_share, last_rating, sessions, recent, user_out, cand_out
) -> None:
    """Draw fresh candidates for focal users ``rows`` (when ``draw``) and write their observations, in one call."""
    if draw:
        fresh = np.empty((rows.shape[0], candidates.shape[1]), np.int64)
        draw_candidates(rows, stream, n_items, seen, fresh)
        for r in range(rows.shape[0]):
            candidates[rows[r]] = fresh[r]
    write_user_features(rows, pages, max_pages, last_share, last_rating, sessions, recent, user_out)
    mine = np.empty((rows.shape[0], candidates.shape[1]), np.int64)
    for r in range(rows.shape[0]):
        mine[r] = candidates[rows[r]]
    write_candidate_features(mine, static, watch_counts, n_items, cand_out)


__all__ = ["REWARD_FIELDS", "dedupe_into", "draw_candidates", "fill_uniforms", "focal_step", "focal_step_observe", "observe_rows", "serve_rows", "start_due"]
