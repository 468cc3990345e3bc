"""What users are after, through the user model: reference sets of target-free conversations."""

import numpy as np

from recworld.agents.conversation.intent import item_utilities, top_items, top_items_of, user_model_of


def test_reference_sets_are_the_best_unseen_items_in_a_stable_order(make_world):
    w = make_world(n=40, seed=2)
    w.run(2)  # some items seen
    model = user_model_of(w.brain)
    users = np.arange(0, 40, 3)
    n = len(w.catalog)
    util = item_utilities(w, model, users, np.arange(n))
    util[w.seen[users, :n]] = -np.inf
    want = np.argsort(-util, axis=1, kind="stable")[:, :10]  # the full sort, ties by item id
    got = top_items_of(w, model, users, 10)
    assert np.array_equal(got, want)
    assert np.array_equal(top_items(w, model, int(users[1]), 10), want[1])
    assert not w.seen[users[:, None], got].any()


def test_reference_sets_break_ties_by_item_id(make_world, monkeypatch):
    """Rows with ties at the cut take the exact path, the others the all-rows one: both give the full stable sort's head."""
    from recworld.agents.conversation import intent

    w = make_world(n=40, seed=2)
    w.run(2)
    n = len(w.catalog)
    users = np.arange(0, 40, 2)
    tied = np.random.default_rng(0).integers(0, 4, (users.size, n)).astype(float)  # many ties at every cut
    tied[::3] = np.random.default_rng(1).random((len(tied[::3]), n))  # and rows without any
    monkeypatch.setattr(intent, "item_utilities", lambda world, model, us, items: tied.copy())
    util = tied.copy()
    util[w.seen[users, :n]] = -np.inf
    for k in (1, 10, n):
        assert np.array_equal(top_items_of(w, user_model_of(w.brain), users, k), np.argsort(-util, axis=1, kind="stable")[:, :k])


def test_held_out_targets_are_the_held_out_items_rated_4_or_5(ml):
    from recworld.agents.conversation.user import held_out_targets
    from recworld.usermodel.fidelity import holdout_split

    held = holdout_split(ml.rating_user, 0.2, np.random.default_rng(0))
    targets = held_out_targets(ml.rating_user, ml.rating_item, ml.rating, held, len(ml.users))
    assert len(targets) == len(ml.users)
    want = {(int(u), int(i)) for u, i, r, h in zip(ml.rating_user, ml.rating_item, ml.rating, held) if h and r >= 4}
    got = {(u, int(i)) for u, items in enumerate(targets) for i in items}
    assert got == want and len(got) > 1000
    train = {(int(u), int(i)) for u, i, h in zip(ml.rating_user, ml.rating_item, held) if not h}
    assert not got & train  # never an item the fit saw for that user
