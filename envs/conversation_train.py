"""Learning the policy agent's weights on ``RecWorld/Conversation-v0``: direct policy search (``es``) or fitted Q (``fqi``).

The policy is the policy agent's linear form, ``argmax(features @ W)`` with
``W`` of shape ``(N_FEATURES, n_actions)``; both algorithms return such a
``W``, saved as ``np.savez(path, weights=W)`` and used by
``crs: {name: policy, params: {path: ...}}``.

``es`` (the default) is a (1+λ) evolution strategy over ``W``, from zero
weights (not from a hand-set policy). Each generation plays the incumbent
and λ mutants (Gaussian noise on every weight, or on one action's column) on
the same conversations of a fresh training world, and the best mutant
replaces the incumbent when it scores at least as well. Keeping ties lets
the search drift across the plateaus that matter here: asking pays only as a
sequence (a recommendation, then questions until two attributes are known,
then recommendations), so one changed action at a time earns nothing, and
value-based learners (``fqi``) and averaging searches (a cross-entropy
method whose mean is the average of its elites) stay on "always recommend"
(README). The score is what the policy is judged on: per conversation,
success minus its turns to success over the turn limit (a failure counts as
the limit), not the env's return, whose small cost per turn barely tells a
success in one turn from one in three. Model selection is on separate
validation worlds, never on the held-out evaluation seeds (``recworld train
--eval-seed-start``, 1000 by default): training worlds are seeded from
:data:`TRAIN_SEED_BASE`, validation worlds from :data:`VALIDATION_SEED_BASE`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recworld.agents.conversation.agents import N_FEATURES
from recworld.envs.conversation import ConversationEnv, run_episodes, train_policy

#: The conversation-policy learners ``recworld train --env conversation --algo`` accepts (the first is the default).
ALGOS: tuple[str, ...] = ("es", "fqi")
#: Training worlds are seeded ``TRAIN_SEED_BASE + 1000 * seed + generation``.
TRAIN_SEED_BASE = 100_000
#: Validation worlds are seeded ``VALIDATION_SEED_BASE + 100 * seed + j`` (apart from training and the held-out 1000+).
VALIDATION_SEED_BASE = 50_000


@dataclass
class SearchReport:
    """What a policy search did: per generation its training world's seed, the incumbent's and the best mutant's
    score and whether the mutant was kept; the validated candidates' scores, the chosen one; env steps played."""

    generations: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    chosen: str = ""
    train_steps: int = 0
    validation_steps: int = 0


def judged_score(episodes: list[dict[str, Any]], limit: int) -> float:
    """Mean over conversations of success (0/1) minus turns to success / ``limit`` (a failure counts ``limit`` turns)."""
    return float(np.mean([float(e["success"]) - (e["turns"] if e["success"] else limit) / limit for e in episodes]))


def play(env: ConversationEnv, w: np.ndarray, episodes: int, seed: int) -> tuple[float, int]:
    """The greedy policy ``argmax(obs @ w)`` over ``episodes`` conversations of the world seeded ``seed``: its score
    (:func:`judged_score`) and the env steps played."""
    eps = run_episodes(env, lambda o: int(np.argmax(o @ w)), episodes, seed)
    return judged_score(eps, env.cfg.max_turns), int(sum(e["steps"] for e in eps))


def train_es(
    timesteps: int = 600_000,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    mutants: int = 12,
    episodes: int = 200,
    sigma: float = 0.5,
    column_share: float = 0.5,
    select_last: int = 10,
    val_seeds: int = 4,
    val_episodes: int = 200,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[np.ndarray, SearchReport]:
    """(1+λ) evolution strategy over the policy agent's weights (see the module docstring).

    Args:
        timesteps: env steps (conversation turns) to spend on training (whole generations; at least one).
        seed: the run's seed (mutations, training and validation worlds).
        env_kwargs: :class:`ConversationEnv` arguments.
        mutants: λ, mutants per generation.
        episodes: conversations the incumbent and each mutant play per generation (the same users, in the same order).
        sigma: mutation size (every weight; twice that on one column when a mutant changes one action's column).
        column_share: share of mutants that change one action's column only (a change to one decision).
        select_last: the incumbents of the last ``select_last`` generations are validated.
        val_seeds, val_episodes: validation worlds and conversations per world.
        progress: ``progress(steps, incumbent_score)`` after each generation.

    Returns:
        ``(N_FEATURES, n_actions)`` float32 weights (the validated best) and a :class:`SearchReport`.
    """
    env = ConversationEnv(**(env_kwargs or {}))
    n_a = len(env.actions)
    rng = np.random.default_rng(seed)
    # A budget below one generation's (about 4 turns a conversation) shrinks the conversations per candidate, so that
    # ``timesteps`` is honoured roughly instead of overrun a hundredfold (a smoke run, not a useful policy).
    scale = min(1.0, timesteps / ((mutants + 1) * episodes * 4.0))
    episodes, val_episodes = max(2, round(episodes * scale)), max(2, round(val_episodes * scale))
    w = np.zeros((N_FEATURES, n_a))
    report = SearchReport()
    shortlist: list[tuple[str, np.ndarray]] = []
    gen = 0
    while True:
        world_seed = TRAIN_SEED_BASE + 1000 * seed + gen
        inc, steps = play(env, w, episodes, world_seed)
        report.train_steps += steps
        best, best_w = inc, None
        for _ in range(mutants):
            m = w.copy()
            if rng.random() < column_share:
                m[:, rng.integers(n_a)] += 2 * sigma * rng.standard_normal(N_FEATURES)
            else:
                m += sigma * rng.standard_normal(m.shape)
            score, steps = play(env, m, episodes, world_seed)
            report.train_steps += steps
            if score >= best:  # ties kept: neutral drift across plateaus
                best, best_w = score, m
        if best_w is not None:
            w = best_w
        report.generations.append({"seed": world_seed, "incumbent": inc, "best": best, "kept": best_w is not None})
        shortlist = [*shortlist, (f"incumbent@{gen}", w.copy())][-max(select_last, 1) :]
        if progress is not None:
            progress(report.train_steps, best)
        gen += 1
        if report.train_steps >= timesteps:
            break
    # Model selection on validation worlds (common to every shortlisted candidate), never on the evaluation seeds.
    vseeds = [VALIDATION_SEED_BASE + 100 * seed + j for j in range(max(val_seeds, 1))]
    chosen, chosen_score = shortlist[-1][1], -np.inf
    for name, cand in shortlist:
        scores = []
        for s in vseeds:
            score, steps = play(env, cand, val_episodes, s)
            scores.append(score)
            report.validation_steps += steps
        mean = float(np.mean(scores))
        report.validation.append({"candidate": name, "score": mean})
        if mean > chosen_score:
            chosen, chosen_score, report.chosen = cand, mean, name
    return chosen.astype(np.float32), report


def train_conversation_policy(
    algo: str = "es", timesteps: int = 600_000, seed: int = 0, env_kwargs: dict[str, Any] | None = None, progress: Callable[[int, float], None] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Learn the policy agent's weights with ``algo`` (:data:`ALGOS`); returns the weights and a summary of the run.

    Raises:
        ValueError: an algorithm that does not learn a conversation policy.
    """
    if algo == "es":
        w, rep = train_es(timesteps=timesteps, seed=seed, env_kwargs=env_kwargs, progress=progress)
        return w, {
            "algo": algo,
            "train_steps": rep.train_steps,
            "validation_steps": rep.validation_steps,
            "generations": len(rep.generations),
            "kept": sum(g["kept"] for g in rep.generations),
            "chosen": rep.chosen,
            "validation": rep.validation,
        }
    if algo == "fqi":
        return train_policy(timesteps=timesteps, seed=seed, env_kwargs=env_kwargs, progress=progress), {"algo": algo, "train_steps": timesteps}
    raise ValueError(f"--algo {algo} does not train a conversation policy; use one of: {', '.join(ALGOS)}")


__all__ = ["ALGOS", "TRAIN_SEED_BASE", "VALIDATION_SEED_BASE", "SearchReport", "judged_score", "play", "train_conversation_policy", "train_es"]
