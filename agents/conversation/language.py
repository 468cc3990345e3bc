"""Templated language of conversations, for both sides (zero LLM calls; LLM brains and agents write their own).

Templates are chosen with the conversation layer's generator, so a run's
transcripts are deterministic. The user's templates never take the hidden
target's title: a user names an item only after the agent has offered it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from recworld.protocols import ItemFacts

ASK = {
    "genre": ["What kind of movie are you in the mood for?", "Which genre would you like tonight?", "Any genre you fancy?"],
    "era": ["Do you prefer something recent or an older film? Which decade?", "Any particular era you like?"],
    "popularity": ["Would you like a well-known hit or a lesser-known gem?", "Something popular, or off the beaten track?"],
}
REQUEST = ["I'm looking for a movie to watch.", "Can you recommend something for tonight?", "Help me find a film?"]
REQUEST_WITH = {
    "genre": ["I'm looking for a {value} movie.", "I'd like to watch some {value}."],
    "era": ["I'd like a film from the {value}.", "Something from the {value}, please."],
    "popularity": ["I want something {value}.", "Anything {value} you'd suggest?"],
}
ANSWER = {
    "genre": ["{value}, please.", "I'm in the mood for {value}.", "Some {value} would be nice."],
    "era": ["The {value}.", "Something from the {value}."],
    "popularity": ["A {value} one.", "Preferably {value}."],
}
NO_PREFERENCE = ["No preference there.", "I don't mind."]
REJECT = {
    "genre": ["Not {got}. I'd rather have {value}.", "Hmm, I'm not after {got}; more {value}."],
    "era": ["That's from the {got}; I'd like the {value}.", "Not that era, more the {value}."],
    "popularity": ["I'd prefer something {value}.", "Too {got} for me; something {value}."],
    None: ["Not quite what I'm looking for.", "Close, but no.", "Not these, sorry."],
}
ACCEPT = ["{title} sounds great, I'll watch it.", "Oh, {title}! Perfect.", "I'll go with {title}."]
PARTIAL = ["I'll save {title} for later, but it's not what I'm after tonight."]
ASK_ABOUT = ["What is {title} about?", "Tell me more about {title}?"]
LEAVE = ["Never mind, I'll just browse.", "I'll look around myself, thanks.", "Let's stop here."]
GOODBYE = ["Enjoy your movie!", "Glad I could help. Enjoy!"]
END = ["I'm afraid I have nothing more to suggest. Enjoy your feed!"]
RECOMMEND = ["How about {titles}? {reason}", "You might like {titles}. {reason}", "Try {titles}. {reason}"]


def pick(rng: np.random.Generator, options: list[str]) -> str:
    """One of ``options`` (the layer's generator: deterministic)."""
    return options[int(rng.integers(len(options)))]


_ARTICLES = (", The", ", A", ", An", ", Les", ", La", ", Le", ", Il", ", Das", ", Die")


@lru_cache(maxsize=8192)
def display_title(title: str) -> str:
    """A catalog title as people say it (MovieLens files "Shining, The" as the article last)."""
    for art in _ARTICLES:
        if title.endswith(art):
            return f"{art[2:]} {title[: -len(art)]}"
    return title


def sentence(text: str) -> str:
    """``text`` with its first letter in upper case."""
    return text[:1].upper() + text[1:]


def titles(facts: list[ItemFacts]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    names = [display_title(f.title) for f in facts]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def describe(f: ItemFacts) -> str:
    """The item-facts answer to "what is it about?"."""
    genres = ", ".join(g.lower() for g in f.genres) or "film"
    year = f" from {f.year}" if f.year else ""
    return f"{display_title(f.title)} is a {genres} film{year}; it is {f.popularity}."


def reason_for(known: dict[str, str], expert: str, n: int = 2) -> str:
    """Why these ``n`` items (the agent's reason)."""
    they, match, them, are = ("It", "matches", "it", "is") if n == 1 else ("They", "match", "them", "are")
    if known:
        return f"{they} {match} what you asked for ({', '.join(known.values())})."
    return f"People with a taste like yours enjoyed {them}." if expert != "search" else f"{they} {are} among the best matches in the catalog."


__all__ = [
    "ACCEPT",
    "ANSWER",
    "ASK",
    "ASK_ABOUT",
    "END",
    "GOODBYE",
    "LEAVE",
    "NO_PREFERENCE",
    "PARTIAL",
    "RECOMMEND",
    "REJECT",
    "REQUEST",
    "REQUEST_WITH",
    "describe",
    "display_title",
    "sentence",
    "pick",
    "reason_for",
    "titles",
]
