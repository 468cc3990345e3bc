"""The grounding check on what a base model gets wrong (the texts seen in real runs of the embedded Gemma)."""

from __future__ import annotations

import glob

import pytest

from recworld.llm.grounding import REASONS, Grounding, TitleIndex, check, check_lines, genre_stances, normalise_title, sanitize


@pytest.fixture(scope="module")
def titles(ml):
    return TitleIndex([it.title for it in ml.items], [it.year if it.year is not None else -1 for it in ml.items])


PROMPT = 'Viewer: loves Drama, Comedy; dislikes Horror, War.\nShown: Toy Story (1995); Babe (1995); Fargo (1996).\nReaction: "'
G = Grounding(prompt=PROMPT, likes=("Drama", "Comedy"), dislikes=("Horror", "War"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("I'm a die-hard horror fan", "contradicts_persona"),  # user 771 of the issue
        ("I love war epics.", "contradicts_persona"),
        ("I hate dramas, give me something else.", "contradicts_persona"),
        ("Stop showing me kids' movies, I want scary horror films.", "contradicts_persona"),
        ("I am the girl in the picture.", "off_topic"),
        ("Love on the Beach (1960); I am the Queen (1947).", "invented_title"),
        ("Toy Story; Babe (1995).", "echo"),
        ("I want reminds: movies, movies, movies, movies.", "echo"),  # seen in a make demo run
        ("Great movie, great acting, great story.", None),
        ("Viewer: loves Drama, Comedy; dislikes Horror, War.", "empty"),
        ('"', "empty"),
        ("", "empty"),
        ("I would recommend the", "empty"),
        ("No more horror movies please.", None),
        ("Show me more Comedy movies and fewer Horror ones.", None),
        ("I am not a horror fan at all.", None),
        ("keep the war epics away from me", None),
        ("Not bad at all.", None),
        ("Toy Story (1995) was fun, and Fargo made me laugh.", None),
        ("Loved The Usual Suspects (1995)!", None),  # in the catalog as "Usual Suspects, The"
        ("Star Wars is the best movie ever.", None),
    ],
)
def test_check_reasons(titles, text, reason):
    v = check(text, G, titles)
    assert v.reason == reason, (text, v)
    assert v.ok == (reason is None)


def test_titles_on_the_page_only_where_the_text_is_about_the_page(titles, ml):
    toy, star = titles.lookup("Toy Story", 1995), titles.lookup("Star Wars", 1977)
    page = Grounding(prompt=PROMPT, allowed_items=frozenset({toy}))
    assert check("Toy Story (1995) was a delight.", page, titles).ok
    assert check("Star Wars (1977) was a delight.", page, titles).reason == "unrelated_title"
    assert check("Star Wars was a delight.", page, titles).reason == "unrelated_title"  # named without its year
    assert check("What a die hard fan of comedies I am.", page, titles).ok  # lower case: a phrase, not the film "Die Hard"
    assert ml.items[star].title == "Star Wars"


def test_title_index_reads_catalog_conventions(titles):
    assert normalise_title("Usual Suspects, The") == "the usual suspects"
    assert titles.lookup("the usual suspects", 1995) == titles.lookup("Usual Suspects", 1995) is not None
    known, invented = titles.mentions("Loved Mr. Holland's Opus (1995) and Star Trek: First Contact (1996); hated Space Cowboys (1957).")
    assert len(known) == 2 and invented == ["hated Space Cowboys (1957)"]


def test_genre_stances():
    assert genre_stances("more Comedy movies and fewer Horror ones", ["Comedy", "Horror"]) == {"Comedy": 1, "Horror": -1}
    assert genre_stances("I love action and horror", ["Action", "Horror"]) == {"Action": 1, "Horror": 1}
    assert genre_stances("no more horror", ["Horror"]) == {"Horror": -1}
    assert genre_stances("horror is the best", ["Horror"]) == {"Horror": 1}
    assert genre_stances("the westerns were boring", ["Western"]) == {"Western": -1}


def test_chat_lines_each_against_its_speaker(titles):
    a = Grounding(prompt="Movie: Fargo (1996)", likes=("Crime",), dislikes=("Horror",), topic_phrases=("fargo",))
    b = Grounding(prompt="Movie: Fargo (1996)", likes=("Horror",), topic_phrases=("fargo",))
    assert check_lines(["Seen it?", "Yes, scary horror fan here.", "Nice."], [a, b], titles).ok  # B may love horror
    assert check_lines(["I'm a horror fan.", "Me too."], [a, b], titles).reason == "contradicts_persona"
    assert check_lines(["Hello.", "The weather is cold."], [a, b], titles).reason == "off_topic"
    assert check_lines(["Fargo, right?", "Yes."], [a, b], titles).ok
    assert check_lines(None, [a, b], titles).reason == "empty"


def test_shipped_prompts_name_only_catalog_films(titles):
    """The few-shot examples are what a base model copies: they must not teach it invented films."""
    files = glob.glob("agents/brains/prompts/*.txt")
    assert files
    for f in files:
        known, invented = titles.mentions(open(f, encoding="utf-8").read())
        assert not invented, (f, invented)


def test_sanitize_keeps_one_clean_line():
    assert sanitize('  Great picks tonight." And more') == "Great picks tonight."
    assert sanitize('"Two good laughs, but keep it short."\nViewer: x') == "Two good laughs, but keep it short."
    assert set(REASONS) == {"empty", "echo", "invented_title", "unrelated_title", "contradicts_persona", "off_topic"}
