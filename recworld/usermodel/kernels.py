"""The user model's compiled kernels: the one implementation of how users decide and change.

Every caller — the numpy :class:`~recworld.world.World`, the envs' fast path,
distillation and validation — goes through these functions. They work on a
batch of rows in place on the world's arrays, read parameters from named
records (:mod:`recworld.usermodel.params`) and take their randomness as
uniform draws laid out by :mod:`recworld.usermodel.draws`, so the same draws
give the same decisions whoever calls.

Arguments are bundled: ``S`` is a :class:`~recworld.state.UserState` (per-user
arrays), ``IT`` an :class:`ItemTable` (the model's view of items), ``X`` a
:class:`Platform` (what was shown and watched), ``P`` a decision record and
``W`` a dynamics record.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from recworld.jit import njit
from recworld.seen import is_seen, mark


class ItemTable(NamedTuple):
    """The user model's view of the items (index = item id; rows beyond the catalog are room for posts).

    Attributes:
        factors: (cap, d) float32 item vectors in the taste space.
        appeal: (cap,) float32 how known and liked an item is, whoever looks at it (utility units).
        fame: (cap,) float32 how known an item is, in [0, 1] (log interactions / log of the most).
        rating_bias: (cap,) float32 the item's offset on the latent rating score.
    """

    factors: np.ndarray
    appeal: np.ndarray
    fame: np.ndarray
    rating_bias: np.ndarray


class Platform(NamedTuple):
    """What the platform has shown and users have watched.

    Attributes:
        seen: (n_users, ceil(cap / 8)) uint8, items shown to each user as bits
            (:class:`recworld.seen.SeenMatrix`'s ``bits``; read with :func:`recworld.seen.is_seen`).
        exposure: (cap,) int64 times each item was shown.
        watch_counts: (cap,) int64 times each item was watched.
    """

    seen: np.ndarray
    exposure: np.ndarray
    watch_counts: np.ndarray


N_CHOICE_TERMS = 10  # params.CHOICE_TERMS


@njit(cache=True, inline="always")
def _gumbel(u: float) -> float:
    return -math.log(-math.log(u))


@njit(cache=True, inline="always")
def _logit(u: float) -> float:
    return math.log(u) - math.log1p(-u)


@njit(cache=True, inline="always")
def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(cache=True)
def ndtri(p: float) -> float:
    """The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9)."""
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        return (
            ((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e00) * q - 2.549732539343734e00) * q + 4.374664141464968e00) * q
            + 2.938163982698783e00
        ) / ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e00) * q + 3.754408661907416e00) * q + 1.0)
    if p > 1.0 - 0.02425:
        q = math.sqrt(-2.0 * math.log1p(-p))
        return -(
            ((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e00) * q - 2.549732539343734e00) * q + 4.374664141464968e00) * q
            + 2.938163982698783e00
        ) / ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e00) * q + 3.754408661907416e00) * q + 1.0)
    q = p - 0.5
    r = q * q
    return (
        (
            ((((-3.969683028665376e01 * r + 2.209460984245205e02) * r - 2.759285104469687e02) * r + 1.383577518672690e02) * r - 3.066479806614716e01) * r
            + 2.506628277459239e00
        )
        * q
        / (((((-5.447609879822406e01 * r + 1.615858368580409e02) * r - 1.556989798598866e02) * r + 6.680131188771972e01) * r - 1.328068155288572e01) * r + 1.0)
    )


@njit(cache=True)
def log_popularity_top(watch_counts: np.ndarray) -> float:
    """log1p of the largest watch count (at least 1): platform popularity is log1p(count) / this."""
    top = 1
    for j in range(watch_counts.shape[0]):
        if watch_counts[j] > top:
            top = watch_counts[j]
    return math.log1p(top)


@njit(cache=True, inline="always")
def _terms(S, IT, X, i, it, j, log_top, out) -> None:
    """The choice terms of item ``it`` at position ``j`` for user ``i`` (signed as they enter the utility)."""
    d = IT.factors.shape[1]
    a = 0.0
    bo = 0.0
    nf = 0.0
    for t in range(d):
        f = IT.factors[it, t]
        a += S.taste[i, t] * f
        bo += S.recent[i, t] * f
        nf += f * f
    m = S.appetite[i]
    out[0] = a
    out[1] = a * a
    out[2] = a * m
    out[3] = IT.appeal[it]
    out[4] = IT.fame[it] * m
    out[5] = S.conformity[i] * math.log1p(X.watch_counts[it]) / log_top
    # Boredom: cosine-like similarity to what was just watched (recent is an average of unit vectors).
    out[6] = -(0.5 + S.diversity_seeking[i]) * max(bo / max(math.sqrt(nf), 1e-8), 0.0)
    out[7] = -math.log2(1.0 + j)
    out[8] = -S.fatigue[i]
    out[9] = -1.0 if is_seen(X.seen, i, it) else 0.0


@njit(cache=True, inline="always")
def _utility(P, terms) -> float:
    a, a2, am = terms[0], terms[1], terms[2]
    if P.affinity_sq < 0:
        # The fitted quadratic peaks at a_max; beyond it a better match must not look worse.
        slope = P.affinity + P.affinity_appetite * (am / a if a != 0 else 0.0)
        a_max = slope / (-2.0 * P.affinity_sq)
        if a_max > 0 and a > a_max:
            am = am * (a_max / a)
            a = a_max
            a2 = a_max * a_max
    return (
        P.affinity * a
        + P.affinity_sq * a2
        + P.affinity_appetite * am
        + P.appeal * terms[3]
        + P.fame_appetite * terms[4]
        + P.popularity * terms[5]
        + P.boredom * terms[6]
        + P.position * terms[7]
        + P.fatigue * terms[8]
        + P.seen_penalty * terms[9]
    )


@njit(cache=True)
def choice_terms(S, IT, X, users, slates, out) -> None:
    """Fill ``out`` (B, k, N_CHOICE_TERMS) with every row's choice terms (distillation fits weights on these)."""
    log_top = log_popularity_top(X.watch_counts)
    for r in range(users.shape[0]):
        for j in range(slates.shape[1]):
            _terms(S, IT, X, users[r], slates[r, j], j, log_top, out[r, j])


@njit(cache=True)
def utilities(Pa, S, IT, X, users, slates, out) -> None:
    """Fill ``out`` (B, k) with each item's utility minus the user's no-click utility.

    Shown alone (position 0), an item is watched with probability ``sigmoid(out)``.
    """
    P = Pa[0]
    log_top = log_popularity_top(X.watch_counts)
    terms = np.empty(N_CHOICE_TERMS)
    for r in range(users.shape[0]):
        i = users[r]
        for j in range(slates.shape[1]):
            _terms(S, IT, X, i, slates[r, j], j, log_top, terms)
            out[r, j] = _utility(P, terms) - P.no_click - S.threshold[i]


@njit(cache=True, inline="always")
def _rating_latent(S, IT, i, it) -> float:
    z = S.rating_bias[i] + IT.rating_bias[it]
    for t in range(IT.factors.shape[1]):
        z += S.rating_taste[i, t] * IT.factors[it, t]
    return z


@njit(cache=True, inline="always")
def _rating_from_latent(P, latent, u) -> float:
    z = latent + _logit(u)
    return 1.0 + (z > P.cut1) + (z > P.cut2) + (z > P.cut3) + (z > P.cut4)


@njit(cache=True)
def rating_distribution(Pa, S, IT, users, items, out) -> None:
    """Fill ``out`` (B, 5) with P(rating = 1..5) of ``users`` for ``items`` (both (B,)), if they rate."""
    P = Pa[0]
    for r in range(users.shape[0]):
        m = _rating_latent(S, IT, users[r], items[r])
        c1 = _sigmoid(P.cut1 - m)
        c2 = _sigmoid(P.cut2 - m)
        c3 = _sigmoid(P.cut3 - m)
        c4 = _sigmoid(P.cut4 - m)
        out[r, 0] = c1
        out[r, 1] = c2 - c1
        out[r, 2] = c3 - c2
        out[r, 3] = c4 - c3
        out[r, 4] = 1.0 - c4


@njit(cache=True, inline="always")
def _argsort_desc(x, order) -> None:
    # Insertion sort: pages are short, and ties keep their page order.
    n = x.shape[0]
    for j in range(n):
        order[j] = j
    for a in range(1, n):
        key = order[a]
        b = a - 1
        while b >= 0 and x[order[b]] < x[key]:
            order[b + 1] = order[b]
            b -= 1
        order[b + 1] = key


@njit(cache=True)
def decide_pages(Pa, S, IT, X, users, slates, draws, watched, frac, ratings, leave) -> None:
    """Decide, for each row's user shown ``slates[row]``: watches, watched shares, ratings (NaN = not rated), leave.

    Reads the platform as it is (callers decide a whole batch before applying
    any of it). ``draws`` is (B, 4k + 2) laid out as :class:`~recworld.usermodel.draws.PageDraws`.
    The page limit is the world's rule, applied by :func:`apply_pages`.
    """
    P = Pa[0]
    b, k = slates.shape
    log_top = log_popularity_top(X.watch_counts)
    terms = np.empty(N_CHOICE_TERMS)
    util = np.empty(k)
    noisy = np.empty(k)
    order = np.empty(k, np.int64)
    for r in range(b):
        i = users[r]
        u = draws[r]
        cutoff = P.no_click + S.threshold[i] + _gumbel(u[k])
        for j in range(k):
            _terms(S, IT, X, i, slates[r, j], j, log_top, terms)
            util[j] = _utility(P, terms)
            noisy[j] = util[j] + _gumbel(u[j])
            watched[r, j] = False
        # Exploded logit: items are taken best first while they beat the no-click option,
        # whose bar rises by ``satiation`` with every item already taken on this page.
        _argsort_desc(noisy, order)
        n_w = 0
        for q in range(k):
            j = order[q]
            if noisy[j] <= cutoff + P.satiation * n_w:
                break
            watched[r, j] = True
            n_w += 1
        for j in range(k):
            it = slates[r, j]
            if watched[r, j]:
                f = 0.55 + 0.15 * (util[j] - P.no_click - S.threshold[i]) + 0.1 * ndtri(u[3 * k + 1 + j])
                frac[r, j] = min(max(f, 0.05), 1.0)
                if u[2 * k + 1 + j] < P.rate_probability:
                    ratings[r, j] = _rating_from_latent(P, _rating_latent(S, IT, i, it), u[k + 1 + j])
                else:
                    ratings[r, j] = np.nan
            else:
                frac[r, j] = 0.0
                ratings[r, j] = np.nan
        hazard = P.leave_base + P.leave_fatigue * S.fatigue[i] - P.leave_patience * S.patience[i] - P.leave_quality * (n_w / k)
        leave[r] = u[4 * k + 1] < _sigmoid(hazard)


@njit(cache=True, inline="always")
def _keep_norm(S, i, norm0) -> None:
    # Interests move in direction but keep their strength (the norm the data gave them).
    d = S.taste.shape[1]
    n = 0.0
    for t in range(d):
        n += S.taste[i, t] * S.taste[i, t]
    n = math.sqrt(n)
    if n > 1e-8:
        for t in range(d):
            S.taste[i, t] = S.taste[i, t] * (norm0 / n)


@njit(cache=True, inline="always")
def _norm(a, i) -> float:
    n = 0.0
    for t in range(a.shape[1]):
        n += a[i, t] * a[i, t]
    return math.sqrt(n)


@njit(cache=True, inline="always")
def _drift(S, i, direction, rate) -> None:
    # Interests turn towards ``direction`` by ``rate`` but keep their strength (the norm the data gave them).
    d = S.taste.shape[1]
    norm0 = _norm(S.taste, i)
    nd = 0.0
    for t in range(d):
        nd += direction[t] * direction[t]
    nd = max(math.sqrt(nd), 1e-8)
    for t in range(d):
        S.taste[i, t] = S.taste[i, t] + rate * (direction[t] / nd * norm0 - S.taste[i, t])
    _keep_norm(S, i, norm0)


@njit(cache=True)
def apply_pages(Wa, S, IT, X, users, slates, watched, ratings, leave) -> None:
    """Apply each row's page to the world: exposure, watches, satisfaction, fatigue, recent consumption, interest drift.

    ``leave`` (in/out) gains the page limit: a user who has seen ``max_pages`` pages leaves.
    """
    W = Wa[0]
    b, k = slates.shape
    d = IT.factors.shape[1]
    wmean = np.empty(d)
    for r in range(b):
        i = users[r]
        n_w = 0
        n_r = 0
        r_sum = 0.0
        for t in range(d):
            wmean[t] = 0.0
        for j in range(k):
            it = slates[r, j]
            mark(X.seen, i, it)
            X.exposure[it] += 1
            if watched[r, j]:
                X.watch_counts[it] += 1
                n_w += 1
                nf = max(_norm(IT.factors, it), 1e-8)
                for t in range(d):
                    wmean[t] += IT.factors[it, t] / nf
                if not math.isnan(ratings[r, j]):
                    n_r += 1
                    r_sum += (ratings[r, j] - 1.0) / 4.0
        S.watches[i] += n_w
        S.pages_in_session[i] += 1
        mean_r = r_sum / n_r if n_r > 0 else 0.5
        # Page quality: how much of the page was worth watching, and how good it was.
        quality = 0.35 + 0.25 * min(n_w / 3.0, 1.0) + 0.4 * mean_r if n_w > 0 else 0.1
        S.satisfaction[i] = np.float32((1.0 - W.satisfaction_rate) * S.satisfaction[i] + W.satisfaction_rate * quality)
        S.fatigue[i] += np.float32(W.fatigue_per_page)
        if n_w > 0:
            for t in range(d):
                wmean[t] /= n_w
                S.recent[i, t] = 0.6 * S.recent[i, t] + 0.4 * wmean[t]
            if W.drift_rate > 0:
                _drift(S, i, wmean, min(W.drift_rate * n_w, 1.0))
        if S.pages_in_session[i] >= W.max_pages:
            leave[r] = True


@njit(cache=True, inline="always")
def _return_gap(W, S, i, u) -> int:
    # KuaiSim-style: exponential time away, shorter for active and satisfied users.
    mean_gap = W.mean_return_ticks / max(S.activity[i], 1e-3) * math.exp(-W.return_sensitivity * (float(S.satisfaction[i]) - 0.5))
    return 1 + int(math.floor(-math.log(u) * mean_gap))


@njit(cache=True)
def schedule_returns(Wa, S, users, tick, draws) -> None:
    """Set ``users``' next visit after a fresh time away from ``tick`` (``draws``: (B,) uniforms)."""
    W = Wa[0]
    for r in range(users.shape[0]):
        S.next_return[users[r]] = tick + _return_gap(W, S, users[r], draws[r])


@njit(cache=True)
def end_sessions(Wa, S, users, tick, draws, churn, gap) -> None:
    """End the sessions of ``users``: churn by satisfaction, and the time away before the next visit.

    ``draws`` is (B, 2): churn coin, away-time draw (exponential by inversion).
    Writes ``churn`` (B,) and ``gap`` (B,) and sets ``next_return`` (churned users are marked).
    """
    W = Wa[0]
    for r in range(users.shape[0]):
        i = users[r]
        S.in_session[i] = False
        s = float(S.satisfaction[i])
        p_churn = min(max(W.churn_base * math.exp(W.churn_sensitivity * (0.5 - s)), 0.0), 0.95)
        churn[r] = draws[r, 0] < p_churn
        gap[r] = _return_gap(W, S, i, draws[r, 1])
        S.next_return[i] = tick + gap[r]
        if churn[r]:
            S.churned[i] = True


@njit(cache=True)
def open_session(Wa, S, i, tick, away) -> None:
    """Open user ``i``'s session at ``tick`` after ``away`` ticks away (fatigue recovers; interests drift back towards the core taste)."""
    W = Wa[0]
    S.fatigue[i] = S.fatigue[i] * np.float32(math.exp(-max(away, 1) / W.fatigue_recovery_ticks))
    if S.first_session[i] < 0:
        S.first_session[i] = tick
    S.last_session[i] = tick
    S.sessions[i] += 1
    S.in_session[i] = True
    S.pages_in_session[i] = 0
    if W.anchor_rate > 0:
        _drift(S, i, S.taste0[i], W.anchor_rate)


@njit(cache=True)
def start_sessions(Wa, S, users, tick) -> None:
    """Open the sessions of ``users`` at ``tick`` (time away = since their last session; 0 for a first visit)."""
    for i in users:
        away = 0 if S.first_session[i] < 0 else tick - S.last_session[i]
        open_session(Wa, S, i, tick, away)


@njit(cache=True)
def shift_tastes(S, IT, users, item, strength) -> None:
    """Move ``users``' interests a share ``strength`` towards ``item`` (e.g. after talking about it), keeping their strength."""
    for i in users:
        _drift(S, i, IT.factors[item], strength)


__all__ = [
    "N_CHOICE_TERMS",
    "ItemTable",
    "Platform",
    "apply_pages",
    "choice_terms",
    "decide_pages",
    "end_sessions",
    "log_popularity_top",
    "ndtri",
    "open_session",
    "rating_distribution",
    "schedule_returns",
    "shift_tastes",
    "start_sessions",
    "utilities",
]
