from recworld.agents.users import Persona


def test_profile_text_mentions_traits():
    p = Persona(
        "x",
        age=30,
        gender="F",
        occupation="artist",
        liked_genres=["Drama"],
        traits={"activity": 2.0, "patience": 0.9, "conformity": 0.1, "diversity_seeking": 0.8},
    )
    t = p.profile_text()
    assert "30-year-old woman" in t and "an artist" in t and "Loves Drama" in t and "often" in t and "variety" in t


def test_user_agents_expose_state(make_world):
    w = make_world(n=5)
    agent = w.user_agents[2]
    assert agent.index == 2 and 0 <= agent.satisfaction <= 1 and agent.churned is False


def test_agents_made_in_bulk_are_registered_as_mesa_registers_them_one_by_one():
    """UserAgent.make_all fills mesa's registries at once: the same ids, agent sets and later ids as agents made one by one."""
    import mesa

    from recworld.agents.users import UserAgent

    class Plain(mesa.Model):
        pass

    personas = [None] * 50
    bulk, single = Plain(seed=1), Plain(seed=1)
    other = mesa.Agent(bulk), mesa.Agent(single)  # a model may hold other agents already
    made = UserAgent.make_all(bulk, personas)
    one_by_one = [UserAgent(single, i, personas) for i in range(50)]
    assert [a.unique_id for a in made] == [a.unique_id for a in one_by_one] == list(range(2, 52))
    assert [vars(a).keys() for a in made] == [vars(a).keys() for a in one_by_one]
    assert all(a.model is bulk and a.index == i and a.pos is None and a.memory is None for i, a in enumerate(made))
    assert list(bulk.agents) == [other[0], *made] and len(single.agents) == 51
    assert list(bulk.agents_by_type[UserAgent]) == made and list(bulk.agents_by_type[mesa.Agent]) == [other[0]]
    assert UserAgent(bulk, 50, personas).unique_id == UserAgent(single, 50, personas).unique_id == 52
    more = UserAgent.make_all(bulk, personas[:3])  # the class's set exists already: extended
    assert len(bulk.agents_by_type[UserAgent]) == 54 and more[0].unique_id == 53
    made[0].remove()  # mesa's own removal still works on agents registered in bulk
    assert made[0] not in bulk.agents and len(bulk.agents_by_type[UserAgent]) == 53
