import numpy as np
import pytest

from recworld.events import INT_NONE, EventBatch, EventType


def test_build_and_rows_roundtrip():
    b = EventBatch.build(3, np.array([1, 2]), EventType.WATCH, np.array([10, 11]), np.array([0.5, np.nan]), texts=["hi", None])
    rows = list(b.rows())
    assert rows[0] == (3, 1, int(EventType.WATCH), 10, 0.5, "hi", None)
    assert rows[1][4] is None and rows[1][5] is None


def test_concat_keeps_order_and_sparse_text_offsets():
    a = EventBatch.build(0, np.array([1]), EventType.POST, texts=["a"])
    b = EventBatch.build(0, np.array([2, 3]), EventType.CHAT, texts=[None, "c"], payloads=[{"x": 1}, None])
    c = EventBatch.concat([a, EventBatch.empty(), b])
    assert list(c.user) == [1, 2, 3]
    assert c.text == {0: "a", 2: "c"}
    assert c.payload == {1: {"x": 1}}
    assert c.item[0] == INT_NONE


def test_digest_changes_with_content():
    a = EventBatch.build(0, np.array([1]), EventType.WATCH, np.array([5]))
    b = EventBatch.build(0, np.array([1]), EventType.SKIP, np.array([5]))
    assert a.digest() != b.digest()
    assert a.digest() == EventBatch.build(0, np.array([1]), EventType.WATCH, np.array([5])).digest()


def test_parse_event_type():
    assert EventType.parse("watch") is EventType.WATCH
    with pytest.raises(ValueError, match="unknown event type"):
        EventType.parse("teleport")
