from recworld.seeding import Seeder


def test_named_streams_are_reproducible_and_independent():
    a, b = Seeder(1), Seeder(1)
    assert a.rng("x").random() == b.rng("x").random()
    assert a.rng("x").random() != a.rng("y").random()
    assert Seeder(2).rng("x").random() != a.rng("x").random()
