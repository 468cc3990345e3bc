"""The conversational user: a hidden intent, answers consistent with it, reasons when rejecting.

Each conversation gives the user an :class:`Intent`:

- ``target`` mode (iEvaLM): a hidden target item, drawn from the user's
  taste by the user model (:func:`~recworld.agents.conversation.intent.draw_intents`),
  or in validation (``recworld validate``'s conversation protocol) a real item
  the user rated 4 or 5 among the interactions the fit held out
  (:func:`held_out_targets`). Success = the user accepts the target.
- ``target_free`` mode (PEPPER): no single target; the user's preferences
  are their top items under the user model (the reference set the recall is
  measured on) and the attribute values most common among them. Success =
  the user accepts any item.

Whether the user accepts an offered item is never decided here: the layer
asks the user model's page kernel, as for a feed page. This module says
what the user wants, how they answer a question, and why they reject. It
never puts the target's title into words: answers and reasons name only
attribute values (genre, era, popularity).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recworld.agents.conversation.intent import ATTRIBUTES, ItemAttributes

#: Size of the reference set of a target-free conversation.
REFERENCE_SIZE = 10


@dataclass
class Intent:
    """What a user is after in one conversation (hidden from the agent).

    Attributes:
        mode: ``target`` or ``target_free``.
        target: the target item (target mode).
        reference: the items recall is measured against.
        wants: attribute -> the value the user wants (``None``: no preference).
        order: the order in which rejection reasons name attributes (the user's priorities).
    """

    mode: str
    target: int | None
    reference: list[int]
    wants: dict[str, str | None]
    order: list[str] = field(default_factory=lambda: list(ATTRIBUTES))

    def reject_reason(self, offered: ItemAttributes) -> tuple[str | None, str | None, str | None]:
        """Why an offered item is not it: (attribute, wanted value, the item's value); ``(None, None, None)`` when nothing differs."""
        for a in self.order:
            want = self.wants.get(a)
            if want is not None and not offered.matches(a, want):
                return a, want, offered.value(a)
        return None, None, None


def intent_for_target(target: int, attrs: ItemAttributes, rng: np.random.Generator) -> Intent:
    """A target-mode intent: the user wants what the target is."""
    wants: dict[str, str | None] = {a: attrs.value(a) for a in ATTRIBUTES}
    if attrs.genres:
        # A user thinks of one of the target's genres, not always the first listed.
        wants["genre"] = attrs.genres[int(rng.integers(len(attrs.genres)))].lower()
    return Intent("target", int(target), [int(target)], wants, list(rng.permutation(list(ATTRIBUTES))))


def intent_target_free(reference: list[int], attrs: list[ItemAttributes], rng: np.random.Generator) -> Intent:
    """A target-free intent: the values most common among the user's top items (ties to the better-ranked item)."""
    # Votes weighted by 1 / (1 + rank); the most voted value, ties to the first counted (as Counter.most_common(1)).
    genre: dict[str, float] = {}
    era: dict[str, float] = {}
    pop: dict[str, float] = {}
    for rank, a in enumerate(attrs):
        w = 1.0 / (1 + rank)
        for g in a.genres:
            g = g.lower()
            genre[g] = genre.get(g, 0) + w
        if a.era is not None:
            era[a.era] = era.get(a.era, 0) + w
        pop[a.popularity] = pop.get(a.popularity, 0) + w
    wants: dict[str, str | None] = {
        name: max(votes, key=votes.__getitem__) if votes else None for name, votes in (("genre", genre), ("era", era), ("popularity", pop))
    }
    return Intent("target_free", None, [int(x) for x in reference], wants, list(rng.permutation(list(ATTRIBUTES))))


def held_out_targets(
    users: np.ndarray, items: np.ndarray, ratings: np.ndarray, held_out: np.ndarray, n_users: int, min_rating: float = 4.0
) -> list[np.ndarray]:
    """Per user, the real items they rated ``min_rating`` or more among the interactions held out of the fit (validation's targets).

    Args:
        users, items, ratings: the interaction log (one row per rating).
        held_out: (rows,) bool, the interactions the user model was not fitted on.
        n_users: users in the log.
    """
    keep = np.asarray(held_out, bool) & (np.asarray(ratings, np.float64) >= min_rating)
    u, it = np.asarray(users, np.int64)[keep], np.asarray(items, np.int64)[keep]
    order = np.lexsort((it, u))
    u, it = u[order], it[order]
    starts = np.searchsorted(u, np.arange(n_users + 1))
    return [np.unique(it[starts[i] : starts[i + 1]]) for i in range(n_users)]


__all__ = ["REFERENCE_SIZE", "Intent", "held_out_targets", "intent_for_target", "intent_target_free"]
