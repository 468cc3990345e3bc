"""Grounding checks for model-written text: is it speech, about movies, true to the catalog and the persona?

A small base model (the embedded Gemma 3 270M) writes fluent text that is
often wrong: it invents films ("Love on the Beach (1960)"), copies its prompt,
drifts off topic ("I am the girl in the picture.") or contradicts the user it
speaks for ("I'm a die-hard horror fan" from a user who dislikes Horror).
Every text a brain or the social layer takes from a model goes through
:func:`check` first; a rejected text is replaced by a template by the caller
and the reason is counted (``LLMCall.rejected``).

Reasons, in the order they are tested (:data:`REASONS`):

- ``empty``: nothing usable (no line, a fragment, a label, an unfinished clause).
- ``echo``: mostly a copy of the prompt (its examples, its item list), or of itself (a phrase said three
  times, a word three times in a row).
- ``invented_title``: names a film with a year, ``Title (1999)``, that is not in the catalog.
- ``unrelated_title``: names a catalog title it may not name here (a feeling about a page
  naming a film that was not on the page).
- ``contradicts_persona``: speaks warmly of a genre the persona dislikes, or against one it loves.
- ``off_topic``: says nothing about films, the app, watching, or how something was liked.

The checks are rules over words, cheap enough to run on every text of a
run; they are tuned to catch what a base model gets wrong, not to judge style.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["REASONS", "Grounding", "TitleIndex", "Verdict", "check", "check_lines", "genre_stances", "sanitize", "says_any"]

REASONS = ("empty", "echo", "invented_title", "unrelated_title", "contradicts_persona", "off_topic")

# ---------------------------------------------------------------- sanitising
_LABELS = re.compile(r"^(viewer|shown|watched|request|reaction|post|summary|movie|note|notes|question|answer|friends|assistant|draft|reply)\s*:", re.I)
_CTRL = re.compile(r"[\x00-\x1f\x7f]")
_DANGLING = {"the", "a", "an", "of", "to", "and", "or", "but", "with", "for", "in", "on", "at", "my", "your", "this", "that", "is", "was"}


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
    line = re.sub(r"</?[a-zA-Z][^>]{0,20}>", "", line)  # stray markup ("<i>...")
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
    elif line[-1] not in ".!?…)\"'" and len(line.split()) > 8:
        line = line.rstrip(",;: ") + "…"  # cut off at max_tokens mid-clause: say so
    # Fragments ("not me.", "I would recommend the") say nothing: the template is better.
    words = line.split()
    # Echoes of the prompt's item list ("(1995) — a take by user 7, ...") are not speech either.
    if line[0] in "([" or line[0].isdigit() or "a take by user" in line or line[-1] in ";,":
        return None
    if len(words) < min_words or line.endswith(":") or words[-1].lower().strip(".,…") in _DANGLING:
        return None
    return line


# ------------------------------------------------------------------- titles
_ARTICLES = ("the", "a", "an", "la", "le", "les", "il", "el", "das", "der", "die")
_MINOR = {"of", "the", "and", "a", "an", "in", "on", "to", "for", "with", "at", "by", "from", "or", "vs", "de", "la", "le"}
_YEAR = re.compile(r"\((?P<year>1[89]\d\d|20\d\d)\)")


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFKD", s)
    return "".join(ch for ch in s if not unicodedata.combining(ch)).lower()


def _words(s: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", _fold(s))


def normalise_title(title: str) -> str:
    """Lower-case words of a title with a trailing article moved to the front (``"Usual Suspects, The"`` -> ``"the usual suspects"``)."""
    t = title.strip()
    t = re.sub(r"\s*\((19|20)\d\d\)\s*$", "", t)
    m = re.match(r"^(.*),\s*(" + "|".join(_ARTICLES) + r")$", t, re.I)
    if m:
        t = f"{m.group(2)} {m.group(1)}"
    return " ".join(_words(t))


class TitleIndex:
    """Normalised catalog titles -> item ids, for finding titles a text names.

    Args:
        titles: one title per item (ML-100K style ``"Usual Suspects, The"`` is understood).
        years: release year per item (``-1`` when unknown).
    """

    def __init__(self, titles: Sequence[str], years: Sequence[int] | None = None) -> None:
        self.by_name: dict[str, list[int]] = {}
        self.years: list[int] = [int(y) for y in years] if years is not None else [-1] * len(titles)
        for i, t in enumerate(titles):
            for name in self._names(t):
                self.by_name.setdefault(name, []).append(i)
        self._longest = max((len(n.split()) for n in self.by_name), default=0)
        self.size = len(titles)

    @staticmethod
    def _names(title: str) -> set[str]:
        names = {normalise_title(title)}
        # "City of Lost Children, The (Cité des enfants perdus, La)": the part before the alternate title too.
        head = re.split(r"\s+\(", title, maxsplit=1)[0]
        names.add(normalise_title(head))
        words = normalise_title(head).split()
        if len(words) > 1 and words[0] in _ARTICLES:
            names.add(" ".join(words[1:]))
        return {n for n in names if n}

    def extend(self, titles: Sequence[str], years: Sequence[int]) -> None:
        """Index items added after construction (ids continue from the current size)."""
        new = list(titles)[self.size :]
        if not new:
            return
        start = self.size
        self.years.extend(int(y) for y in list(years)[start:])
        for i, t in enumerate(new, start):
            for name in self._names(t):
                self.by_name.setdefault(name, []).append(i)
        self._longest = max((len(n.split()) for n in self.by_name), default=0)
        self.size = len(titles)

    def lookup(self, span: str, year: int | None = None) -> int | None:
        """The item a title span names (the longest matching word suffix), or None."""
        words = _words(span)
        for k in range(len(words)):
            ids = self.by_name.get(" ".join(words[k:]))
            if ids:
                if year is not None:
                    exact = [i for i in ids if self.years[i] == year]
                    return exact[0] if exact else ids[0]
                return ids[0]
        return None

    def mentions(self, text: str) -> tuple[list[int], list[str]]:
        """Catalog items a text names, and the year-tagged titles it names that are not in the catalog.

        A title with a year (``Airplane! (1980)``) is looked up by the words
        before the year (the longest run that is a catalog title); several-word
        catalog titles are also found without a year ("Star Wars").
        """
        known: list[int] = []
        invented: list[str] = []
        last = 0
        for m in _YEAR.finditer(text):
            # The title is in the words before the year, back to the previous year, list separator or quote.
            head = re.split(r"[;\n\"“”()\[\]]", text[last : m.start()])[-1]
            last = m.end()
            words = _words(head)[-12:]
            item = self.lookup(" ".join(words), int(m.group("year")))
            if item is None:
                invented.append(f"{' '.join(head.split()[-6:])} ({m.group('year')})".strip())
            else:
                known.append(item)
        known.extend(self._title_case_mentions(text))
        return list(dict.fromkeys(known)), invented

    def _title_case_mentions(self, text: str) -> list[int]:
        # Titles of several words written as titles ("Star Wars", "The Usual Suspects"): single
        # words ("Heat", "Speed") and lower-case phrases ("a die-hard fan") are ordinary speech.
        raw = re.findall(r"[A-Za-z0-9]+(?:'[a-z]+)?", unicodedata.normalize("NFKD", text))
        found: list[int] = []
        p = 0
        while p < len(raw):
            hit = 0
            if raw[p][:1].isupper():
                for n in range(min(self._longest, len(raw) - p), 1, -1):
                    span = raw[p : p + n]
                    if not all(w[:1].isupper() or w[:1].isdigit() or w.lower() in _MINOR for w in span[1:]):
                        continue
                    ids = self.by_name.get(" ".join(w.lower() for w in span))
                    if ids:
                        found.append(ids[0])
                        hit = n
                        break
            p += max(hit, 1)
        return found


# ------------------------------------------------------------------- genres
# Words that name a genre in speech (ML-100K genres; other tags match their own name).
_GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "action": ("action",),
    "adventure": ("adventure", "adventures"),
    "animation": ("animation", "animated", "cartoon", "cartoons", "anime"),
    "children's": ("children's", "childrens", "children", "kids", "kid's", "kid", "family"),
    "comedy": ("comedy", "comedies", "comedic", "funny"),
    "crime": ("crime", "gangster", "gangsters", "heist", "heists"),
    "documentary": ("documentary", "documentaries", "docs"),
    "drama": ("drama", "dramas", "dramatic"),
    "fantasy": ("fantasy", "fantasies"),
    "film-noir": ("noir", "film-noir"),
    "horror": ("horror", "horrors", "scary", "slasher", "slashers", "gore"),
    "musical": ("musical", "musicals"),
    "mystery": ("mystery", "mysteries", "whodunit", "whodunits"),
    "romance": ("romance", "romances", "romantic", "rom-com", "rom-coms", "romcom", "romcoms", "love stories"),
    "sci-fi": ("sci-fi", "scifi", "science fiction", "space"),
    "thriller": ("thriller", "thrillers", "suspense"),
    "war": ("war",),
    "western": ("western", "westerns", "cowboy", "cowboys"),
}
_POS = {
    "love", "loves", "loved", "loving", "adore", "adores", "enjoy", "enjoys", "enjoyed", "like", "likes", "liked", "favorite",
    "favourite", "favorites", "favourites", "more", "want", "wants", "crave", "craving", "best", "great", "into", "die-hard",
    "diehard", "hooked", "obsessed", "need", "give", "good", "fun", "awesome", "amazing", "brilliant",
}  # fmt: skip
_NEG = {
    "hate", "hates", "hated", "dislike", "dislikes", "disliked", "fewer", "less", "stop", "enough", "tired", "sick", "avoid",
    "away", "instead", "skip", "bored", "boring", "worst", "awful", "terrible", "bad", "dull", "hate's", "annoying",
}  # fmt: skip
_NEGATORS = {"not", "no", "never", "don't", "dont", "didn't", "isn't", "aren't", "wasn't", "can't", "cannot", "won't", "nothing", "nor", "without"}
_FAN = {"fan", "fans", "lover", "lovers", "buff", "buffs", "junkie", "addict", "nut"}
_CLAUSE_STOP = {"but", "though", "although", "while", "whereas", "yet", "however"}
_COORD = {"and", "or", "&"}
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*'?|[,&]")


def _genre_patterns(genres: Iterable[str]) -> list[tuple[str, tuple[tuple[str, ...], ...]]]:
    out = []
    for g in genres:
        key = _fold(g).strip()
        words = _GENRE_WORDS.get(key, (key,))
        out.append((g, tuple(tuple(w.split()) for w in words)))
    return out


def genre_stances(text: str, genres: Iterable[str]) -> dict[str, int]:
    """For each of ``genres`` the text mentions: +1 if it speaks for it, -1 against it, 0 if neutral.

    The nearest cue before a mention decides ("more horror", "fewer horror",
    "I love horror"); a negator further back flips it ("no more horror");
    "fan"/"lover" right after a mention speaks for it ("horror fan"), cues
    after the mention count when none come before ("horror is the best").
    A mention joined by "and"/"or" to the previous one inherits its stance
    ("I love action and horror").
    """
    pats = _genre_patterns(genres)
    out: dict[str, int] = {}
    for sentence in re.split(r"[.!?;:\n]+", _fold(text)):
        toks = _TOKEN.findall(sentence.replace("’", "'"))
        prev: int | None = None
        for p in range(len(toks)):
            hit = None
            for g, forms in pats:
                if any(tuple(toks[p : p + len(f)]) == f for f in forms):
                    hit = g
                    break
            if hit is None:
                continue
            stance, coord = _stance_before(toks, p)
            if stance == 0:
                stance = _stance_after(toks, p)
            if stance == 0 and coord and prev is not None:
                stance = prev
            prev = stance
            # The strongest statement about a genre wins (a contradiction anywhere counts).
            if hit not in out or (stance != 0 and out[hit] == 0):
                out[hit] = stance
            elif stance != 0 and out[hit] != stance:
                out[hit] = stance if abs(stance) >= abs(out[hit]) else out[hit]
    return out


def _stance_before(toks: list[str], p: int, window: int = 6) -> tuple[int, bool]:
    stance = 0
    for q in range(p - 1, max(-1, p - 1 - window), -1):
        t = toks[q]
        if t in _CLAUSE_STOP or t == ",":
            return stance, stance == 0 and t == ","
        if t in _COORD:
            return stance, stance == 0
        if stance == 0:
            if t in _NEGATORS:
                return -1, False
            if t in _POS:
                stance = 1
            elif t in _NEG:
                stance = -1
        elif t in _NEGATORS:
            return -stance, False
    return stance, False


def _stance_after(toks: list[str], p: int, window: int = 5) -> int:
    neg = any(t in _NEGATORS for t in toks[max(0, p - 4) : p])
    for q in range(p + 1, min(len(toks), p + 1 + window)):
        t = toks[q]
        if t in _CLAUSE_STOP or t in _COORD or t == ",":
            break
        if t in _FAN or t in _POS:
            return -1 if neg else 1
        if t in _NEG:
            return 1 if neg else -1
        if t in _NEGATORS:
            neg = not neg
    return 0


# -------------------------------------------------------------------- topic
_TOPIC = {
    "movie", "movies", "film", "films", "flick", "flicks", "cinema", "watch", "watched", "watching", "watches", "rewatch", "seen",
    "see", "saw", "show", "shows", "showing", "page", "pages", "recommend", "recommended", "recommendation", "recommendations",
    "pick", "picks", "title", "titles", "genre", "genres", "story", "stories", "plot", "script", "actor", "actors", "actress",
    "cast", "director", "directed", "scene", "scenes", "ending", "endings", "character", "characters", "sequel", "sequels",
    "classic", "classics", "rating", "rated", "rate", "stars", "laugh", "laughs", "laughed", "cry", "cried", "tears", "thrilling",
    "boring", "episode", "series", "trailer", "screen", "theater", "theatre", "soundtrack", "performance", "masterpiece", "epic",
    "epics", "dialogue", "acting", "twist", "twists", "feed", "app", "list", "queue", "tonight", "binge", "hero", "villain",
}  # fmt: skip
# Words that judge what was seen: a reaction to a page ("Not bad at all.") is on topic without naming a film.
_VERDICT = {
    "good", "bad", "great", "nice", "fine", "okay", "ok", "meh", "awesome", "love", "loved", "like", "liked", "enjoy", "enjoyed",
    "hate", "hated", "fun", "dull", "interesting", "worth", "special", "favorite", "favourite", "best", "worst", "perfect",
    "amazing", "terrible", "awful", "excellent", "brilliant", "decent", "solid", "disappointing", "disappointed", "wow", "gem",
    "overrated", "underrated", "fantastic", "wonderful", "beautiful", "loud", "slow", "silly", "smart", "clever", "moving",
}  # fmt: skip
_ALL_GENRE_WORDS = {w for forms in _GENRE_WORDS.values() for f in forms for w in f.split()}


def says_any(text: str, phrases: Iterable[str]) -> bool:
    """Whether ``text`` holds one of ``phrases`` as whole words (case and punctuation aside)."""
    return _says_any(_words(text), phrases)


def _says_any(words: list[str], phrases: Iterable[str]) -> bool:
    joined = f" {' '.join(words)} "
    return any(f" {' '.join(_words(p))} " in joined for p in phrases if _words(p))


def _on_topic(words: list[str], phrases: Iterable[str] = ()) -> bool:
    vocab = _TOPIC | _VERDICT | _ALL_GENRE_WORDS
    if _says_any(words, phrases):
        return True
    joined = f" {' '.join(words)} "
    return any(w in vocab for w in words) or bool(re.search(r"\b[1-5]\s*/\s*5\b", joined))


# --------------------------------------------------------------------- echo
def _grams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _repeats(words: list[str]) -> bool:
    """The text repeats itself: a phrase three times ("I want action. I want action. I want action.")
    or a word three times in a row ("movies, movies, movies"), loops a base model falls into."""
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return any(a == b == c for a, b, c in grams) or any(n >= 3 for n in Counter(grams).values())


def _is_echo(words: list[str], prompt_words: list[str], short_lines: bool = True) -> bool:
    if _repeats(words):
        return True
    if len(words) < 3 or not prompt_words:
        return False
    if f" {' '.join(words)} " in f" {' '.join(prompt_words)} ":
        return True
    # A short line made only of the prompt's own words, saying nothing of its own ("Toy Story; Babe (1995).")
    # restates it; with a stance or a verdict ("More horror movies, please.") it is an answer.
    said = _POS | _NEG | _NEGATORS | _VERDICT
    if short_lines and len(words) <= 8 and set(words) <= set(prompt_words) and not any(w in said for w in words):
        return True
    n = 4 if len(words) >= 6 else 3
    grams = _grams(words, n)
    if not grams:
        return False
    shared = len(grams & _grams(prompt_words, n)) / len(grams)
    return shared >= 0.5


# -------------------------------------------------------------------- check
@dataclass(frozen=True)
class Grounding:
    """What a text must agree with.

    Attributes:
        prompt: the prompt the text answers (a copy of it is an echo).
        allowed_items: catalog items the text may name (the page, the post's item);
            None allows any catalog title.
        likes: genres the persona loves (speaking against one contradicts it).
        dislikes: genres the persona dislikes (speaking for one contradicts it).
        topic_phrases: more phrases that count as on topic (e.g. the title of the item a post is about).
    """

    prompt: str = ""
    allowed_items: frozenset[int] | None = None
    likes: tuple[str, ...] = ()
    dislikes: tuple[str, ...] = ()
    topic_phrases: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`check`: the cleaned text when kept, else the reason it was rejected."""

    text: str | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """The text may be used."""
        return self.reason is None and self.text is not None


def check(
    text: str | None,
    ground: Grounding,
    titles: TitleIndex | None,
    *,
    min_words: int = 3,
    max_chars: int = 220,
    clean: bool = True,
    short_echo: bool = True,
    primer: str = "",
) -> Verdict:
    """Clean ``text`` (see :func:`sanitize`) and test it against ``ground``.

    Args:
        text: the raw model output (or an already clean line with ``clean=False``).
        ground: what the text must agree with.
        titles: the catalog's titles; None skips the title checks.
        min_words: fewer words than this is a fragment (``empty``).
        max_chars: the kept text is shortened to this.
        clean: run :func:`sanitize` first.
        short_echo: a short line made mostly of the prompt's words is an echo (off for chat turns: "Yes, what a movie.").
        primer: the words the prompt started the text with ("This page"): they do not make the text on topic, the model's words must.

    Returns:
        A :class:`Verdict` with the clean text, or the first failing reason of :data:`REASONS`.
    """
    line = sanitize(text, max_chars, min_words) if clean else (text.strip() if text and text.strip() else None)
    if line is None:
        return Verdict(None, "empty")
    words = _words(line)
    if _is_echo(words, _words(ground.prompt), short_echo):
        return Verdict(None, "echo")
    if titles is not None:
        known, invented = titles.mentions(line)
        if invented:
            return Verdict(None, "invented_title")
        if ground.allowed_items is not None and any(i not in ground.allowed_items for i in known):
            return Verdict(None, "unrelated_title")
    else:
        known = []
    if _contradicts(line, ground):
        return Verdict(None, "contradicts_persona")
    given = _words(primer)
    own = words[len(given) :] if given and words[: len(given)] == given else words
    if not known and not _on_topic(own, ground.topic_phrases):
        return Verdict(None, "off_topic")
    return Verdict(line)


def _contradicts(line: str, ground: Grounding) -> bool:
    if not (ground.likes or ground.dislikes):
        return False
    stances = genre_stances(line, [*ground.likes, *ground.dislikes])
    liked = {_fold(g) for g in ground.likes}
    disliked = {_fold(g) for g in ground.dislikes} - liked
    for g, s in stances.items():
        k = _fold(g)
        if (s > 0 and k in disliked) or (s < 0 and k in liked and k not in disliked):
            return True
    return False


def check_lines(lines: Sequence[str] | None, grounds: Sequence[Grounding], titles: TitleIndex | None, given: int = 0) -> Verdict:
    """Check a multi-speaker exchange: each line against its speaker's grounding, the whole for topic.

    Args:
        lines: the clean lines (already split and sanitised), or None.
        grounds: one grounding per speaker, used in turn (A, B, A, ...).
        titles: the catalog's titles.
        given: leading lines the prompt wrote (a primed first line): not judged, and the exchange needs a line more.

    Returns:
        A verdict whose ``text`` is the lines joined by newlines when kept.
    """
    if not lines or len(lines) <= given:
        return Verdict(None, "empty")
    known_any = False
    for j, line in enumerate(lines):
        if j < given:
            continue
        g = grounds[j % len(grounds)]
        v = check(line, g, titles, min_words=1, clean=False, short_echo=False)
        if v.reason not in (None, "off_topic"):
            return Verdict(None, v.reason)
        if titles is not None:
            known_any = known_any or bool(titles.mentions(line)[0])
    words = _words(" ".join(lines[given:]))
    if not known_any and not _on_topic(words, grounds[0].topic_phrases if grounds else ()):
        return Verdict(None, "off_topic")
    return Verdict("\n".join(lines))
