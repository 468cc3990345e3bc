"""User agents: mesa agents that carry a persona (identity, demographics, taste profile, traits)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mesa

if TYPE_CHECKING:  # pragma: no cover
    from recworld.world import World

ROLES = ("watcher", "explorer", "critic", "chatter", "poster")


@dataclass
class Persona:
    """Who a user is, in words and numbers.

    Attributes:
        external_id: id in the source data (ML-100K user id) or ``s<N>`` if sampled.
        age, gender, occupation: demographics when known.
        liked_genres, disliked_genres: top and bottom genres of the user's taste.
        liked_titles, disliked_titles: example titles.
        traits: activity, patience, conformity, diversity_seeking (0..1 except activity).
        role: a RecAgent-style role (watcher, explorer, critic, chatter, poster).
    """

    external_id: str
    age: int | None = None
    gender: str | None = None
    occupation: str | None = None
    liked_genres: list[str] = field(default_factory=list)
    disliked_genres: list[str] = field(default_factory=list)
    liked_titles: list[str] = field(default_factory=list)
    disliked_titles: list[str] = field(default_factory=list)
    traits: dict[str, float] = field(default_factory=dict)
    role: str = "watcher"

    def profile_text(self) -> str:
        """A natural-language taste profile (used in prompts and on the dashboard)."""
        who = []
        if self.age is not None:
            who.append(f"{self.age}-year-old")
        if self.gender:
            who.append({"M": "man", "F": "woman"}.get(self.gender, self.gender))
        else:
            who.append("person")
        head = "A " + " ".join(who)
        if self.occupation and self.occupation not in ("none", "other"):
            head += f" who works as {'an' if self.occupation[0] in 'aeiou' else 'a'} {self.occupation}"
        parts = [head + "."]
        if self.liked_genres:
            likes = f"Loves {', '.join(self.liked_genres)} movies"
            if self.liked_titles:
                likes += f" (for example {', '.join(self.liked_titles)})"
            parts.append(likes + ".")
        if self.disliked_genres:
            dis = f"Dislikes {', '.join(self.disliked_genres)}"
            if self.disliked_titles:
                dis += f" (for example {', '.join(self.disliked_titles)})"
            parts.append(dis + ".")
        t = self.traits
        if t:
            act = t.get("activity", 1.0)
            parts.append(
                ("Opens the app often" if act > 1.5 else "Opens the app now and then" if act > 0.6 else "Rarely opens the app")
                + (", is patient" if t.get("patience", 0.5) > 0.6 else ", is impatient" if t.get("patience", 0.5) < 0.4 else "")
                + (", follows the crowd" if t.get("conformity", 0.5) > 0.6 else "")
                + (", and seeks variety." if t.get("diversity_seeking", 0.5) > 0.6 else ".")
            )
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "age": self.age,
            "gender": self.gender,
            "occupation": self.occupation,
            "liked_genres": self.liked_genres,
            "disliked_genres": self.disliked_genres,
            "liked_titles": self.liked_titles,
            "disliked_titles": self.disliked_titles,
            "traits": self.traits,
            "role": self.role,
        }


#: What a UserAgent holds (mesa's fields and its own): anything else was set from outside and is kept by pickling.
_AGENT_FIELDS = frozenset({"model", "unique_id", "pos", "index", "_personas", "memory"})


class UserAgent(mesa.Agent):
    """A user of the platform: a handle with identity, persona and memory.

    The user's numeric state lives in ``world.users`` at index ``index`` so
    that brains can work on all users at once. The persona comes from the
    population's persona table, which may build it when asked (a million
    users' personas are not all made up front).
    """

    def __init__(self, model: World, index: int, personas: Sequence[Persona]) -> None:
        super().__init__(model)
        self.index = index
        self._personas = personas
        self.memory: Any = None  # set by the LLM layer when users have memory

    @classmethod
    def pack_agents(cls, agents: Sequence[UserAgent]) -> dict[str, Any] | None:
        """What a checkpoint keeps of the world's user agents (in user order): the one persona table they share and
        the memories set on them; ``None`` when they are not that simple (then they are pickled one by one): all of
        this class, ids in user order (made again in that order, they get the same ids), nothing else set."""
        personas = agents[0]._personas
        if len(personas) != len(agents):
            return None
        for i, a in enumerate(agents):
            # Another class, another id or persona table, a position, an attribute set from outside: keep everything as it is.
            if (
                type(a) is not cls
                or a.unique_id != i + 1
                or a.index != i
                or a._personas is not personas
                or a.pos is not None
                or not a.__dict__.keys() <= _AGENT_FIELDS
            ):
                return None
        return {"personas": personas, "memory": {a.index: a.memory for a in agents if a.memory is not None}}

    @classmethod
    def unpack_agents(cls, model: World, state: dict[str, Any]) -> list[UserAgent]:
        """The user agents of :meth:`pack_agents`, made again in ``model`` (registered with it in the same order, so same ids)."""
        personas = state["personas"]
        agents = [cls(model, i, personas) for i in range(len(personas))]
        for i, memory in state["memory"].items():
            agents[i].memory = memory
        return agents

    @property
    def persona(self) -> Persona:
        """Who this user is (see :class:`Persona`)."""
        return self._personas[self.index]

    @property
    def satisfaction(self) -> float:
        return float(self.model.users.satisfaction[self.index])

    @property
    def churned(self) -> bool:
        return bool(self.model.users.churned[self.index])
