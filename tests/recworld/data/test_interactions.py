"""The interaction-log CSV that goes beside an item file."""

import numpy as np
import pytest

from recworld.data import load_interactions_csv
from recworld.data.records import RawItem
from recworld.errors import DataError

ITEMS = [RawItem("a", "A"), RawItem("b", "B"), RawItem("c", "C")]


def test_reads_users_items_ratings_and_timestamps(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text("user_id,item_id,rating,timestamp\nu1,a,5,10\nu2,c,,20\nu1,b,3.5,30\n")
    log = load_interactions_csv(f, ITEMS)
    assert [u.external_id for u in log.users] == ["u1", "u2"]
    assert log.rating_user.tolist() == [0, 1, 0] and log.rating_item.tolist() == [0, 2, 1]
    assert log.rating[0] == 5 and np.isnan(log.rating[1]) and log.timestamp.tolist() == [10, 20, 30]
    only_ids = tmp_path / "ids.csv"
    only_ids.write_text("user_id,item_id\nx,a\n")
    assert np.isnan(load_interactions_csv(only_ids, ITEMS).rating).all()


@pytest.mark.parametrize(
    "body,match",
    [
        ("user_id,item_id\nu1,zz\n", r"log.csv:2: item_id 'zz' is not an id of the item file"),
        ("user_id,item_id,rating\nu1,a,nine\n", r"log.csv:2: field 'rating' must be a number"),
        ("user_id,item_id,rating\nu1,a,7\n", r"log.csv:2: field 'rating' must be in 1..5"),
        ("user_id,item_id\n,a\n", r"log.csv:2: required field 'user_id'"),
        ("user_id,item_id,timestamp\nu1,a,yesterday\n", r"log.csv:2: field 'timestamp' must be integer seconds"),
        ("user_id,item_id\n", r"holds no interactions"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, body, match):
    f = tmp_path / "log.csv"
    f.write_text(body)
    with pytest.raises(DataError, match=match):
        load_interactions_csv(f, ITEMS)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_interactions_csv(tmp_path / "nope.csv", ITEMS)
