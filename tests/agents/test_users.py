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
