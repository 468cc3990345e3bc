"""Kernel queries on runs the simulator wrote."""

from __future__ import annotations

from collections import Counter

from recworld.events import EventType
from recworld.storage import connect, pagelog
from recworld.storage.db import dispose_all
from recworld.storage.queries import user_story


def test_user_story_holds_the_watches_and_ratings_of_the_page_log(small_scenario):
    """An interview's story: the user's best-rated items from their pages (Page rows, not only Event rows), then the latest watches."""
    from recworld.scenarios.runner import run_scenario

    s = small_scenario(ticks=12, **{"population.n_users": 40})
    out = run_scenario(s, progress=False)
    eng = connect(s.storage.url)
    with eng.connect() as con:
        log = list(pagelog.iter_log(con, out.run_id))
    rate, watch = int(EventType.RATE), int(EventType.WATCH)
    user = Counter(r[2] for r in log if r[3] == rate).most_common(1)[0][0]
    mine = [r for r in log if r[2] == user]
    best: dict[int, tuple[float, int]] = {}
    for r in mine:
        if r[3] == rate:
            v, t = best.get(r[4], (0.0, -1))
            best[r[4]] = (max(v, r[5]), max(t, r[1]))
    want = [(i, v) for i, (v, _t) in sorted(best.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))][:6]
    story = user_story(eng, out.run_id, user)
    got = [(i, r) for i, _title, _year, r in story["watched"]]
    assert len(want) >= 3 and got[: len(want)] == want
    assert all(any(r[3] == watch and r[4] == i for r in mine) for i, _ in got)  # every item is one they watched
    dispose_all()
