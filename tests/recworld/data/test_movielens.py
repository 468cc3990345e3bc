import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests_support import fuzz_case

from recworld.data import load_movielens
from recworld.errors import DataError


def test_bundled_ml100k(ml):
    assert len(ml.items) == 1682 and len(ml.users) == 943 and ml.n_ratings == 100_000
    assert ml.users[0].age == 24 and ml.users[0].occupation == "technician"
    assert ml.rating.min() == 1 and ml.rating.max() == 5


def _grouplens(tmp_path, data="1\t1\t5\t881250949\n2\t2\t3\t881250950\n"):
    (tmp_path / "u.item").write_text(
        "1|Heat (1995)|01-Jan-1995||url|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n2|Up (2009)|01-Jan-2009||url|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
        encoding="latin-1",
    )
    (tmp_path / "u.user").write_text("1|30|F|writer|00000\n2|40|M|doctor|00000\n")
    (tmp_path / "u.data").write_text(data)
    return tmp_path


def test_grouplens_folder(tmp_path):
    ml = load_movielens(_grouplens(tmp_path))
    assert [i.title for i in ml.items] == ["Heat", "Up"]
    assert ml.items[0].year == 1995 and ml.items[0].tags == ("Action",)
    assert ml.users[1].occupation == "doctor" and ml.n_ratings == 2


def test_atomic_folder(tmp_path):
    (tmp_path / "x.item").write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n7\tBrazil\t1985\tComedy Sci-Fi\n")
    (tmp_path / "x.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t7\t4\t0\n")
    ml = load_movielens(tmp_path)
    assert ml.items[0].tags == ("Comedy", "Sci-Fi") and ml.n_ratings == 1 and ml.users[0].external_id == "1"


@pytest.mark.parametrize(
    "data,match",
    [
        ("1\t99\t5\t0\n", r"u.data:1: item_id '99' is not in the item file"),
        ("1\t1\tfive\t0\n", r"u.data:1: rating 'five' is not a number"),
        ("1\t1\t9\t0\n", r"u.data:1: rating 9.0 is out of range"),
        ("1\t1\n", r"u.data:1: expected user<TAB>item<TAB>rating"),
    ],
)
def test_bad_ratings_name_file_line_and_field(tmp_path, data, match):
    with pytest.raises(DataError, match=match):
        load_movielens(_grouplens(tmp_path, data))


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_movielens(tmp_path / "nope")
    with pytest.raises(DataError, match="holds no MovieLens ratings file"):
        load_movielens(tmp_path)
    (tmp_path / "u.data").write_text("1\t1\t5\t0\n")
    with pytest.raises(DataError, match="u.item is missing"):
        load_movielens(tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.text("0123456789x", max_size=3), st.text("0123456789", max_size=2), st.text("0123456789.-a", max_size=4)), max_size=8))
def test_fuzz_grouplens_ratings_only_raise_dataerror(tmp_path, rows):
    data = "".join(f"{u}\t{i}\t{r}\t0\n" for u, i, r in rows)
    with fuzz_case("MovieLens loader (hypothesis)"):
        try:
            ml = load_movielens(_grouplens(tmp_path, data))
        except DataError as e:
            assert "\n" not in str(e)
            return
        assert ml.n_ratings == len(rows)
