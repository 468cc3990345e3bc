"""User agents: mesa agents that carry a persona (identity, demographics, taste profile, traits)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from recworld.gcpause import paused_gc

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


def _mesa_registries(model: Any) -> bool:
    """Whether ``model`` registers agents as mesa 3.1-3.3 does (the registries :meth:`UserAgent.make_all` fills in bulk)."""
    return (
        type(model).register_agent is mesa.Model.register_agent
        and isinstance(getattr(mesa.Agent, "_ids", None), defaultdict)
        and isinstance(getattr(model, "_agents", None), dict)
        and isinstance(getattr(model, "_agents_by_type", None), dict)
        and isinstance(getattr(model, "_all_agents", None), mesa.agent.AgentSet)
        and all(isinstance(s, mesa.agent.AgentSet) for s in model._agents_by_type.values())
    )


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
    def make_all(cls, model: World, personas: Sequence[Persona]) -> list[UserAgent]:
        """One agent per persona, in user order (registered with ``model`` in that order: ids 1, 2, ...).

        What ``mesa.Agent.__init__`` and ``Model.register_agent`` do for one agent is done here for all at once
        (a million agents: 3.1 s instead of 5.0 s) where the model's registries are mesa's own (mesa 3.x: checked,
        else the agents are made one by one).
        """
        with paused_gc():
            if not _mesa_registries(model) or cls.__init__ is not UserAgent.__init__:
                return [cls(model, i, personas) for i in range(len(personas))]
            ids, new = mesa.Agent._ids[model], object.__new__
            agents = []
            for i in range(len(personas)):
                a = new(cls)
                a.__dict__.update({"model": model, "unique_id": next(ids), "pos": None, "index": i, "_personas": personas, "memory": None})
                agents.append(a)
            model._agents.update(dict.fromkeys(agents))
            if cls in model._agents_by_type:
                model._agents_by_type[cls]._agents.update(dict.fromkeys(agents))
            else:
                model._agents_by_type[cls] = mesa.agent.AgentSet(agents, random=model.random)
            model._all_agents._agents.update(dict.fromkeys(agents))
            return agents

    @classmethod
    def personas_of(cls, agents: Sequence[UserAgent]) -> list[Persona]:
        """The personas of ``agents``: built together when they share a table that builds in batches (a sampled
        population's, see ``SampledPersonas.build``), else one by one."""
        table = agents[0]._personas if agents else None
        if hasattr(table, "build") and all(a._personas is table for a in agents):
            return table.build(np.fromiter((a.index for a in agents), np.int64, len(agents)))
        return [a.persona for a in agents]

    @classmethod
    def pack_agents(cls, agents: Sequence[UserAgent]) -> dict[str, Any] | None:
        """What a checkpoint keeps of the world's user agents (in user order): the one persona table they share and
        the memories set on them; ``None`` when they are not that simple (then they are pickled one by one): all of
        this class, ids in user order (made again in that order, they get the same ids), nothing else set."""
        personas = agents[0]._personas
        n = len(agents)
        if len(personas) != n:
            return None
        # Checked column by column over the agents' dicts (a million agents: 0.7 s, 4x faster than agent by agent).
        # Another class, model, id or persona table, a position, an attribute set from outside (the count of
        # attributes with every expected one present): keep everything as it is.
        attrs = list(map(vars, agents))
        try:
            simple = (
                set(map(type, agents)) == {cls}
                and set(map(len, attrs)) == {len(_AGENT_FIELDS)}
                and set(map(id, map(itemgetter("model"), attrs))) == {id(agents[0].model)}
                and list(map(itemgetter("unique_id"), attrs)) == list(range(1, n + 1))
                and list(map(itemgetter("index"), attrs)) == list(range(n))
                and set(map(id, map(itemgetter("_personas"), attrs))) == {id(personas)}
                and set(map(itemgetter("pos"), attrs)) == {None}
            )
            memories = list(map(itemgetter("memory"), attrs))
        except KeyError:
            return None
        if not simple:
            return None
        return {"personas": personas, "memory": {} if memories.count(None) == n else {i: m for i, m in enumerate(memories) if m is not None}}

    @classmethod
    def unpack_agents(cls, model: World, state: dict[str, Any]) -> list[UserAgent]:
        """The user agents of :meth:`pack_agents`, made again in ``model`` (registered with it in the same order, so same ids)."""
        agents = cls.make_all(model, state["personas"])
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
