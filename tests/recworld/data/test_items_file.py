import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests_support import fuzz_case

from recworld.data import load_items_file
from recworld.errors import DataError


def test_csv_and_jsonl(tmp_path):
    f = tmp_path / "items.csv"
    f.write_text("id,title,text,tags,created_at,creator\na,Alpha,first,news|tech,2024-01-01,bob\nb,Beta,,,,\n")
    items = load_items_file(f)
    assert items[0].tags == ("news", "tech") and items[0].creator == "bob" and items[1].tags == ()
    j = tmp_path / "items.jsonl"
    j.write_text(json.dumps({"id": 1, "title": "One", "tags": ["x", "y"], "year": 2001}) + "\n\n")
    assert load_items_file(j)[0].year == 2001


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("a.csv", "id,title\n,NoId\n", r"a.csv:2: required field 'id' is missing"),
        ("a.csv", "id,title\n1,A\n1,B\n", r"a.csv:3: duplicate id '1'"),
        ("a.jsonl", '{"id": 1}\n', r"a.jsonl:1: required field 'title'"),
        ("a.jsonl", '{"id": 1, "title": "x"\n', r"a.jsonl:1: invalid JSON"),
        ("a.jsonl", "[1, 2]\n", r"a.jsonl:1: expected a JSON object"),
        ("a.jsonl", '{"id": 1, "title": "x", "year": "soon"}\n', r"field 'year' must be an integer"),
        ("a.txt", "x", r"expected .csv or .jsonl"),
        ("a.csv", "id,title\n", r"holds no items"),
    ],
)
def test_errors_name_file_and_field(tmp_path, name, content, match):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(DataError, match=match):
        load_items_file(f)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_items_file(tmp_path / "none.csv")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_jsonl_never_crashes_with_anything_but_dataerror(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("fz") / "x.jsonl"
    f.write_text(text, encoding="utf-8")
    with fuzz_case("item-file loader (hypothesis)"):
        try:
            items = load_items_file(f)
        except DataError:
            return
        assert all(i.external_id and i.title for i in items)
