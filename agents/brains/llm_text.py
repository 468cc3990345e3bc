"""Text helpers of the LLM brains: prompt templates (files), output sanitising, template fallbacks.

Kept free of the LLM runtime so the social layer can write templated text
(utility brain, zero LLM calls) without importing a client.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from recworld.llm.grounding import Grounding, sanitize

if TYPE_CHECKING:  # pragma: no cover
    from recworld.world import World

PROMPT_NAMES = ("decide", "feeling", "instruction", "reflection", "post", "chat", "interview", "converse", "search")


@cache
def prompt_template(name: str) -> str:
    """The text of ``agents/brains/prompts/<name>.txt`` (``str.format`` fields), without the file's final newline.

    A completion prompt must end where the answer begins (``Request: "I want``):
    after a newline a base model starts a new record instead of answering.
    """
    return resources.files("recworld.agents.brains").joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8").rstrip("\n")


def primer_of(prompt: str) -> str:
    """The words a prompt puts in the speaker's mouth before the model goes on (``Request: "I want`` -> ``I want``).

    A base model continues a text it has started far more often than it opens
    one well: prompts end with the first words of the answer (or, for a chat,
    with A's first line), and the model's completion is appended to them.
    """
    last = prompt.rstrip("\n").rsplit("\n", 1)[-1]
    if last.startswith("A: "):
        return last[3:]
    return last.split('"', 1)[1] if '"' in last else ""


def parse_chat(text: str | None) -> list[str] | None:
    """Lines of a generated exchange: the text continues ``A:``; later lines start ``A:``/``B:``."""
    lines: list[str] = []
    for k, raw in enumerate((text or "").splitlines()):
        raw = raw.strip()
        if not raw:
            if lines:
                break
            continue
        if k > 0 or raw[:2] in ("A:", "B:"):
            if raw[:2] not in ("A:", "B:"):
                break
            raw = raw[2:]
        clean = sanitize(raw, 200, min_words=1)  # chat turns may be short ("Yes!")
        if clean is None:
            break
        lines.append(clean)
        if len(lines) == 4:
            break
    return lines if len(lines) >= 2 else None


# --------------------------------------------------------------- persona bits
def persona_of(world: World, user: int):
    agents = world.user_agents
    if 0 <= user < len(agents):
        return agents[user].persona
    return None


def grounding(world: World, user: int, prompt: str = "", allowed: Sequence[int] | None = None, topic: Sequence[str] = ()) -> Grounding:
    """What a text by ``user`` must agree with: the persona's liked and disliked genres, the prompt, the titles it may name."""
    p = persona_of(world, user)
    return Grounding(
        prompt=prompt,
        allowed_items=None if allowed is None else frozenset(int(i) for i in allowed),
        likes=tuple(p.liked_genres) if p is not None else (),
        dislikes=tuple(p.disliked_genres) if p is not None else (),
        topic_phrases=tuple(topic),
    )


def short_profile(world: World, user: int) -> str:
    """A few words on taste: ``loves Sci-Fi, Action; dislikes Romance``."""
    p = persona_of(world, user)
    if p is None:
        return "likes all kinds of movies"
    parts = []
    if p.liked_genres:
        parts.append("loves " + ", ".join(p.liked_genres[:3]))
    if p.disliked_genres:
        parts.append("dislikes " + ", ".join(p.disliked_genres))  # all of them: the grounding check holds texts to each
    return "; ".join(parts) or "likes all kinds of movies"


def full_profile(world: World, user: int) -> str:
    p = persona_of(world, user)
    return p.profile_text() if p is not None else "A user of a movie app."


def title(world: World, item: int) -> str:
    """An item's title as people write it: ``The Usual Suspects (1995)`` (ML-100K stores ``Usual Suspects, The``)."""
    cat = world.catalog
    y = int(cat.years[item]) if item < len(cat.years) else -1
    t = _article_first(cat.titles[item])
    return f"{t} ({y})" if y > 0 and f"({y})" not in t else t


def _article_first(t: str) -> str:
    head, sep, rest = t.partition(" (")  # "City of Lost Children, The (Cité des enfants perdus, La)"
    for art in ("The", "A", "An", "Les", "La", "Le", "Il", "El", "Das", "Der", "Die"):
        if head.endswith(f", {art}"):
            return f"{art} {head[: -len(art) - 2]}" + (sep + rest if sep else "")
    return t


def name(world: World, item: int) -> str:
    """An item's title as said in speech, without its year (``The Usual Suspects``)."""
    return _article_first(world.catalog.titles[item]).partition(" (")[0]


def titles(world: World, items: Sequence[int], limit: int = 6) -> str:
    items = list(items)[:limit]
    return "; ".join(title(world, int(i)) for i in items) if items else "nothing"


def top_tag(world: World, items: Sequence[int], exclude: set[str] | frozenset[str] = frozenset()) -> str | None:
    counts: dict[str, int] = {}
    for i in items:
        for t in world.catalog.tags[int(i)]:
            if t not in exclude:
                counts[t] = counts.get(t, 0) + 1
    return max(sorted(counts), key=counts.__getitem__) if counts else None


# ---------------------------------------------------------------- templates
def template_feeling(share: float) -> str:
    if share >= 0.5:
        return "Lots here I wanted to watch."
    if share > 0:
        return "A couple of good picks, the rest was not for me."
    return "Nothing on this page was for me."


def template_instruction(world: World, user: int, shown: Sequence[int]) -> str:
    p = persona_of(world, user)
    want = p.liked_genres[0] if (p is not None and p.liked_genres) else None
    liked = set(p.liked_genres) if p is not None else set()
    # What to ask for less of: a genre of the page the user does not love (a template must not contradict its persona either).
    avoid = top_tag(world, shown, exclude=liked)
    if want and avoid and avoid != want:
        return f"Show me more {want} movies and fewer {avoid} ones."
    if want:
        return f"Show me more {want} movies."
    return f"Show me something other than {avoid} movies." if avoid else "Show me something different."


def template_reflection(world: World, user: int, items: Sequence[int]) -> str:
    tag = top_tag(world, items)
    return f"Lately I have mostly enjoyed {tag} movies." if tag else "Lately nothing has stood out."


def template_post(world: World, user: int, item: int, rating: float | None = None) -> str:
    t = title(world, item)
    if rating is not None and rating == rating and rating <= 2:
        return f"Just watched {t}. Not for me, honestly."
    return f"Just watched {t}. Worth your time!"


def template_chat(world: World, a: int, b: int, item: int, turns: int, rng: np.random.Generator | None = None) -> list[str]:
    t = title(world, item)
    lines = [
        f"Have you seen {t}?",
        "Not yet. Is it good?",
        "I liked it, you should give it a try.",
        "Okay, I'll add it to my list.",
    ]
    return lines[: max(2, min(4, turns))]


__all__ = [
    "PROMPT_NAMES",
    "full_profile",
    "grounding",
    "name",
    "parse_chat",
    "primer_of",
    "prompt_template",
    "sanitize",
    "short_profile",
    "template_chat",
    "template_feeling",
    "template_instruction",
    "template_post",
    "template_reflection",
    "title",
    "titles",
    "top_tag",
]
