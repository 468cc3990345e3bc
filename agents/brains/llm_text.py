"""Text helpers of the LLM brains: prompt templates (files), output sanitising, template fallbacks.

Kept free of the LLM runtime so the social layer can write templated text
(utility brain, zero LLM calls) without importing a client.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from recworld.world import World

PROMPT_NAMES = ("decide", "feeling", "instruction", "reflection", "post", "chat", "converse")
_LABELS = re.compile(r"^(viewer|shown|watched|request|reaction|post|summary|movie|note|notes|assistant|draft|reply)\s*:", re.I)
_CTRL = re.compile(r"[\x00-\x1f\x7f]")


@cache
def prompt_template(name: str) -> str:
    """The text of ``agents/brains/prompts/<name>.txt`` (``str.format`` fields)."""
    return resources.files("recworld.agents.brains").joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8")


def sanitize(text: str | None, max_chars: int = 220, min_words: int = 3) -> str | None:
    """One clean line of model output, or None when nothing usable came back.

    Takes the first non-empty line, cuts it at a closing quote, strips
    quotes and control characters, collapses spaces and shortens it on a word
    boundary. Rejects lines without three letters and lines that restart
    the prompt's own labels (a base model continuing the few-shot pattern).
    """
    if not text:
        return None
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = _CTRL.sub(" ", line).strip().lstrip("\"'“ ").strip()
    if '"' in line:
        line = line.split('"', 1)[0]
    line = line.replace("“", "").replace("”", "")
    line = re.sub(r"\s+", " ", line).strip(" -'")
    if _LABELS.match(line) or re.match(r"^[AB]\s*:", line):
        return None
    # A base model sometimes opens with a label of its own ("View: ..."): drop it.
    line = re.sub(r"^[A-Z][a-z]{1,12}:\s*", "", line).strip(" \"'")
    if sum(ch.isalpha() for ch in line) < 3:
        return None
    # Cut off at max_tokens mid-sentence: keep the complete sentences, if any.
    if line[-1] not in ".!?…)" and ". " in line:
        line = line[: line.rindex(". ") + 1]
    if len(line) > max_chars:
        cut = line[:max_chars].rsplit(" ", 1)[0]
        line = (cut or line[:max_chars]).rstrip(",;:") + "…"
    # Fragments ("not me.", "I would recommend the") say nothing: the template is better.
    words = line.split()
    # Echoes of the prompt's item list ("(1995) — a take by user 7, ...") are not speech either.
    if line[0] in "([" or line[0].isdigit() or "a take by user" in line or line[-1] in ";,":
        return None
    if len(words) < min_words or line.endswith(":") or words[-1].lower().strip(".,") in _DANGLING:
        return None
    return line


_DANGLING = {"the", "a", "an", "of", "to", "and", "or", "but", "with", "for", "in", "on", "at", "my", "your", "this", "that", "is", "was"}


# --------------------------------------------------------------- persona bits
def persona_of(world: World, user: int):
    agents = world.user_agents
    if 0 <= user < len(agents):
        return agents[user].persona
    return None


def short_profile(world: World, user: int) -> str:
    """A few words on taste: ``loves Sci-Fi, Action; dislikes Romance``."""
    p = persona_of(world, user)
    if p is None:
        return "likes all kinds of movies"
    parts = []
    if p.liked_genres:
        parts.append("loves " + ", ".join(p.liked_genres[:3]))
    if p.disliked_genres:
        parts.append("dislikes " + ", ".join(p.disliked_genres[:2]))
    return "; ".join(parts) or "likes all kinds of movies"


def full_profile(world: World, user: int) -> str:
    p = persona_of(world, user)
    return p.profile_text() if p is not None else "A user of a movie app."


def title(world: World, item: int) -> str:
    cat = world.catalog
    y = int(cat.years[item]) if item < len(cat.years) else -1
    t = cat.titles[item]
    return f"{t} ({y})" if y > 0 and f"({y})" not in t else t


def titles(world: World, items: Sequence[int], limit: int = 6) -> str:
    items = list(items)[:limit]
    return "; ".join(title(world, int(i)) for i in items) if items else "nothing"


def top_tag(world: World, items: Sequence[int]) -> str | None:
    counts: dict[str, int] = {}
    for i in items:
        for t in world.catalog.tags[int(i)]:
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
    avoid = top_tag(world, shown)
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
