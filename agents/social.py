"""The social layer: a follow graph, posts and shares, social feeds, chats, follow/unfollow.

A :class:`~recworld.protocols.WorldLayer` (``world.add_layer(layer)``): after
the sessions of each tick it acts and returns that tick's social events:

- **graph**: ``small_world`` (each user follows its nearest neighbours in
  taste, a homophilous ring lattice, then links are rewired at random with
  probability ``rewire``) or ``preferential`` (Barabási–Albert attachment
  weighted by ``exp(homophily × taste similarity)``); mean degree ``degree``.
- **posts** (POST): active users share an item they watched this tick to
  their followers, at a rate set by ``post_rate`` × their RecAgent role
  (poster > critic > chatter = explorer > watcher). Payload
  :class:`~recworld.payloads.PostPayload` (post id, parent post, cascade
  root, depth) so cascades can be measured from the log. A share of posts (``item_post_rate``) is original content and
  becomes a catalog item (``Catalog.add_item``; recorder ``Item`` rows).
- **diffusion** (SOCIAL_WATCH): shared items land in followers' social
  feeds; active followers watch from the feed with the utility brain's
  choice probability, and may reshare (a child post in the same cascade).
- **chats** (CHAT, value = partner id): 2–4 message exchanges between
  friends about an item; both users' tastes move ``chat_shift`` towards it.
- **follow/unfollow** (FOLLOW/UNFOLLOW, value = other user id), homophilous.

Post and chat texts are :class:`~recworld.agents.language.Utterance` jobs.
When the brain is a :class:`SocialVoice` (an LLM brain) they go to its
language pipeline (one burst per tick, written while the world runs): a post
is published, and a chat happens, when its checked text is heard
(``language_lag`` ticks later, see :mod:`recworld.agents.language`).
Otherwise (or with ``use_llm: false``) they are said at once from templates
(zero LLM calls), so social dynamics also run fast with the utility brain.
The layer changes the world only through World methods (``add_item``,
``count_social_watches``, ``shift_tastes``).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from recworld.agents.brains import llm_text as T
from recworld.agents.brains.utility import UtilityBrain
from recworld.agents.language import Said, TemplateVoice, Utterance, Voice
from recworld.agents.memory import CHAT, POST
from recworld.errors import ConfigError
from recworld.events import EventBatch, EventType
from recworld.payloads import ChatPayload, PostPayload, SocialWatchPayload

if TYPE_CHECKING:  # pragma: no cover
    from recworld.protocols import RecorderSink
    from recworld.world import World

ROLE_POST = {"poster": 4.0, "critic": 2.0, "chatter": 1.0, "explorer": 1.0, "watcher": 0.3}
ROLE_CHAT = {"chatter": 4.0, "critic": 1.5, "poster": 1.0, "explorer": 1.0, "watcher": 0.3}
ROLE_FOLLOW = {"explorer": 3.0, "chatter": 2.0, "poster": 1.5, "critic": 1.0, "watcher": 0.5}


class SocialConfig(BaseModel):
    """The scenario's ``social:`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    graph: Literal["small_world", "preferential"] = "small_world"
    degree: int = Field(8, ge=0, le=500, description="mean number of users each user follows")
    rewire: float = Field(0.1, ge=0, le=1, description="small_world: share of links rewired at random")
    homophily: float = Field(3.0, ge=0, le=50, description="weight of taste similarity in link choice")
    post_rate: float = Field(0.05, ge=0, le=1, description="chance an active user posts (times role weight)")
    reshare_rate: float = Field(0.2, ge=0, le=1, description="chance a social watch is reshared (times role weight)")
    chat_rate: float = Field(0.03, ge=0, le=1, description="chance an active user starts a chat (times role weight)")
    follow_rate: float = Field(0.02, ge=0, le=1)
    unfollow_rate: float = Field(0.01, ge=0, le=1)
    feed_size: int = Field(20, ge=1, le=10_000, description="social feed entries kept per user")
    feed_views: int = Field(5, ge=0, le=1000, description="feed entries an active user looks at per tick")
    item_post_rate: float = Field(0.1, ge=0, le=1, description="share of posts that are original content (new catalog items)")
    chat_turns: tuple[int, int] = Field((2, 4), description="min and max messages of a chat")
    chat_shift: float = Field(0.05, ge=0, le=1, description="how far a chat moves both tastes towards its item")
    use_llm: bool = Field(True, description="write post/chat text with the brain's LLM when it has one")

    @field_validator("chat_turns")
    @classmethod
    def _turns(cls, v: tuple[int, int]) -> tuple[int, int]:
        lo, hi = v
        if not 2 <= lo <= hi <= 4:
            raise ValueError("expected 2 <= min <= max <= 4")
        return v


@runtime_checkable
class SocialVoice(Protocol):
    """A brain that speaks for its users in the social layer (the LLM brains).

    Attributes:
        utility: the choice model that decides social watches.
    """

    utility: UtilityBrain

    @property
    def language(self) -> Voice:
        """Where the users' texts go (the brain's language pipeline)."""
        ...

    def remember(self, user: int, tick: int, kind: int, importance: float, vector: np.ndarray, text: str) -> None:
        """Store a social event in the user's memory (a no-op without memory)."""
        ...


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)).astype(np.float32)


class SocialLayer:
    """Social graph and social actions of a world (see module docstring).

    Args:
        world: the world (its users must exist).
        config: a :class:`SocialConfig`.
        brain: the world's brain; when it is a :class:`SocialVoice` its language
            pipeline writes the texts and its users remember; its utility model
            (or the brain itself, a utility brain) decides social watches.
        seed: the scenario seed.
    """

    name = "social"

    def __init__(self, world: World, config: SocialConfig | None = None, brain: Any = None, seed: int = 0) -> None:
        self.config = config or SocialConfig()
        self.voice: SocialVoice | None = brain if isinstance(brain, SocialVoice) else None
        if isinstance(brain, UtilityBrain):
            self.utility = brain
        elif self.voice is not None:
            self.utility = self.voice.utility
        else:
            self.utility = UtilityBrain()
        self.rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x50C1A1]))
        n = world.n_users
        self.n_users = n
        self.following: list[set[int]] = [set() for _ in range(n)]
        self.followers: list[set[int]] = [set() for _ in range(n)]
        self.feeds: list[deque] = [deque(maxlen=self.config.feed_size) for _ in range(n)]
        # Posts: id -> (author, item, parent, root, tick, depth)
        self.posts: list[tuple[int, int, int, int, int, int]] = []
        self.cascade_posts: dict[int, int] = {}
        self.cascade_reach: dict[int, int] = {}
        self.cascade_depth: dict[int, int] = {}
        self.item_posts: dict[int, int] = {}
        self.item_social_watches: dict[int, int] = {}
        self.chats = 0
        self.recorder: RecorderSink | None = None
        self._edges_written = False
        self._build_graph(world)

    @classmethod
    def from_config(cls, world: World, config: dict[str, Any] | None, brain: Any = None, seed: int = 0) -> SocialLayer:
        """Build from the scenario's ``social:`` dict (then ``world.add_layer(layer)``).

        Raises:
            ConfigError: an unknown key or a bad value, named ``social.<key>``.
        """
        try:
            cfg = SocialConfig(**dict(config or {}))
        except ValidationError as exc:
            e = exc.errors()[0]
            loc = ".".join(str(p) for p in e["loc"] if not isinstance(p, int)) or "(section)"
            if e["type"] == "extra_forbidden":
                raise ConfigError(f"unknown key 'social.{loc}'; expected one of: {', '.join(SocialConfig.model_fields)}") from None
            msg = e["msg"].removeprefix("Value error, ")
            raise ConfigError(f"field 'social.{loc}': {msg} (got {e.get('input')!r})") from None
        return cls(world, cfg, brain=brain, seed=seed)

    # ------------------------------------------------------------- graph
    def _build_graph(self, world: World) -> None:
        n, c = self.n_users, self.config
        m = min(c.degree, n - 1)
        if m <= 0:
            return
        taste = _unit(world.users.taste.astype(np.float32))
        rng = self.rng
        if c.graph == "small_world":
            # Homophilous lattice: follow the m most similar users (chunked: no n x n matrix).
            for start in range(0, n, 1024):
                sims = taste[start : start + 1024] @ taste.T
                rows = np.arange(sims.shape[0])
                sims[rows, start + rows] = -np.inf
                nn = np.argpartition(-sims, m - 1, axis=1)[:, :m]
                for r, u in enumerate(range(start, start + sims.shape[0])):
                    for v in nn[r].tolist():
                        if rng.random() < c.rewire:
                            v = int(rng.integers(n))
                            if v == u:
                                continue
                        self._link(u, int(v))
        else:
            # Preferential attachment with homophily: newcomers follow popular, similar users.
            order = rng.permutation(n)
            indeg = np.zeros(n)
            for pos, u in enumerate(order.tolist()):
                if pos == 0:
                    continue
                prev = order[:pos]
                w = (indeg[prev] + 1.0) * np.exp(c.homophily * (taste[prev] @ taste[u]))
                k = min(m, pos)
                chosen = rng.choice(prev, size=k, replace=False, p=w / w.sum())
                for v in chosen.tolist():
                    self._link(u, v)
                    indeg[v] += 1
                    if rng.random() < 0.5:  # about half the links are mutual
                        self._link(v, u)

    def _link(self, src: int, dst: int) -> bool:
        if src == dst or dst in self.following[src]:
            return False
        self.following[src].add(dst)
        self.followers[dst].add(src)
        return True

    def _unlink(self, src: int, dst: int) -> bool:
        if dst not in self.following[src]:
            return False
        self.following[src].discard(dst)
        self.followers[dst].discard(src)
        return True

    def edges(self) -> list[tuple[int, int]]:
        """Current follow edges (src follows dst)."""
        return [(u, v) for u in range(self.n_users) for v in sorted(self.following[u])]

    def mean_degree(self) -> float:
        return sum(len(f) for f in self.following) / max(self.n_users, 1)

    # ------------------------------------------------ WorldLayer lifecycle
    def attach(self, world: World) -> None:
        """The graph was built from the world's users at construction; nothing more to set up."""
        if world.n_users != self.n_users:
            raise ConfigError(f"social layer built for {self.n_users} users attached to a world of {world.n_users}; build it from this world")

    def attach_recorder(self, recorder: RecorderSink) -> None:
        """Write the initial graph (once) and report new edges and items later."""
        self.recorder = recorder
        if not self._edges_written:
            recorder.add_edges((u, v, 0) for u, v in self.edges())
            self._edges_written = True

    def reattach(self, world: World) -> None:
        """Nothing to restore: the layer's state is pickled whole; the recorder is attached again by the run."""

    def close(self) -> None:
        """Nothing to release."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["recorder"] = None
        return state

    # -------------------------------------------------------------- tick
    def on_tick_start(self, world: World, tick: int) -> EventBatch:
        """Nothing happens before the sessions: the social layer acts after them."""
        return EventBatch.empty()

    def on_tick(self, world: World, tick: int) -> EventBatch:
        """Social actions of tick ``tick`` (after its sessions)."""
        c = self.config
        rng = self.rng
        u = world.users
        active = np.flatnonzero((u.last_session == tick) & ~u.churned)
        if active.size == 0:
            return EventBatch.empty()
        roles = self._roles(world, active)
        watched_now = self._watched_this_tick(world, tick)
        rows: list[tuple[int, int, int, float, str | None, dict | None]] = []  # user, type, item, value, text, payload

        # 1) posts: share something watched this tick.
        draws = rng.random((active.size, 4))
        want_post = [i for i, a in enumerate(active.tolist()) if a in watched_now and draws[i, 0] < c.post_rate * ROLE_POST.get(roles[i], 1.0)]
        posts = []
        for i in want_post:
            a = int(active[i])
            items = watched_now[a]
            item, rating = items[int(rng.integers(len(items)))]
            posts.append((a, item, rating))

        # 3) chats: with a friend, about something the initiator watched (or saw in the feed).
        chats = []
        for i, a in enumerate(active.tolist()):
            if draws[i, 1] >= c.chat_rate * ROLE_CHAT.get(roles[i], 1.0):
                continue
            friends = sorted(self.following[a] | self.followers[a])
            if not friends:
                continue
            b = int(friends[int(rng.integers(len(friends)))])
            if a in watched_now:
                item = watched_now[a][int(rng.integers(len(watched_now[a])))][0]
            elif self.feeds[a]:
                item = int(self.feeds[a][-1][1])
            else:
                continue
            turns = int(rng.integers(c.chat_turns[0], c.chat_turns[1] + 1))
            chats.append((a, b, int(item), turns))

        voice = self._voice()
        n_posts = voice.take_budget(tick, len(posts), "social")
        n_chats = voice.take_budget(tick, len(chats), "social")
        post_jobs = [
            Utterance(
                "post", a, tick, T.template_post(world, a, item, rating), self._hear_post, (a, item, rating), {"item": item, "rating": rating}, j < n_posts
            )
            for j, (a, item, rating) in enumerate(posts)
        ]
        chat_jobs = [
            Utterance(
                "chat", a, tick, T.template_chat(world, a, b, item, turns), self._hear_chat, (a, b, item, turns), {"partner": b, "item": item}, j < n_chats
            )
            for j, (a, b, item, turns) in enumerate(chats)
        ]
        # Posts said now are in followers' feeds before they look (2); texts still being written are heard later.
        batches = [voice.say(world, tick, post_jobs)]

        # 2) diffusion: active users look at their social feed.
        rows.extend(self._consume_feeds(world, tick, active, roles))
        batches.append(self._batch(tick, rows))
        batches.append(voice.say(world, tick, chat_jobs))
        rows = []

        # 4) follow / unfollow (homophily on the direction of tastes: cosine similarity).
        taste = _unit(world.users.taste.astype(np.float32))
        new_edges, gone_edges = [], []
        for i, a in enumerate(active.tolist()):
            if draws[i, 2] < c.follow_rate * ROLE_FOLLOW.get(roles[i], 1.0):
                cand = self._follow_candidates(a)
                if cand.size:
                    w = np.exp(c.homophily * (taste[cand] @ taste[a]))
                    v = int(rng.choice(cand, p=w / w.sum()))
                    if self._link(a, v):
                        rows.append((a, int(EventType.FOLLOW), -1, float(v), None, None))
                        new_edges.append((a, v, tick))
            if draws[i, 3] < c.unfollow_rate and self.following[a]:
                fol = np.array(sorted(self.following[a]))
                v = int(fol[np.argmin(taste[fol] @ taste[a])])
                if self._unlink(a, v):
                    rows.append((a, int(EventType.UNFOLLOW), -1, float(v), None, None))
                    gone_edges.append((a, v, tick))
        if self.recorder is not None:
            self.recorder.add_edges(new_edges)
            self.recorder.remove_edges(gone_edges)
        batches.append(self._batch(tick, rows))
        return EventBatch.concat(batches)

    # ------------------------------------------------------------ pieces
    @staticmethod
    def _roles(world: World, users: np.ndarray) -> list[str]:
        agents = world.user_agents
        if not agents:
            return ["watcher"] * users.size
        return [agents[int(x)].persona.role for x in users]

    @staticmethod
    def _watched_this_tick(world: World, tick: int) -> dict[int, list[tuple[int, float]]]:
        """user -> [(item, rating or NaN)] watched in this tick's sessions."""
        ev = world.tick_events()
        if not len(ev):
            return {}
        out: dict[int, list[tuple[int, float]]] = {}
        rates = {}
        rm = (ev.type == int(EventType.RATE)) & (ev.tick == tick)
        for uu, it, v in zip(ev.user[rm].tolist(), ev.item[rm].tolist(), ev.value[rm].tolist()):
            rates[(uu, it)] = v
        wm = (ev.type == int(EventType.WATCH)) & (ev.tick == tick)
        for uu, it in zip(ev.user[wm].tolist(), ev.item[wm].tolist()):
            out.setdefault(uu, []).append((it, rates.get((uu, it), float("nan"))))
        return out

    def _voice(self) -> Voice:
        """Where users' texts go: the brain's language pipeline (a model writes them), else templates said at once."""
        if self.config.use_llm and self.voice is not None:
            return self.voice.language
        return TemplateVoice()

    # What saying a post or a chat does (now, or when the model's text arrives).
    def _hear_post(self, world: World, tick: int, said: Said, author: int, item: int, rating: float) -> EventBatch:
        return self._batch(tick, self._publish(world, tick, author, item, said.text, parent=None, rating=rating, by=said.by))

    def _hear_chat(self, world: World, tick: int, said: Said, a: int, b: int, item: int, turns: int) -> EventBatch:
        lines = list(said.text)[: max(2, min(4, turns))]
        cid = self.chats
        self.chats += 1
        rows = []
        for j, line in enumerate(lines):
            speaker, partner = (a, b) if j % 2 == 0 else (b, a)
            rows.append((speaker, int(EventType.CHAT), item, float(partner), line, ChatPayload(conversation=cid, turn=j, by=said.by).dump()))
        if self.config.chat_shift > 0:
            world.shift_tastes(np.array([a, b]), item, self.config.chat_shift)
        if self.voice is not None:
            for x, y in ((a, b), (b, a)):
                self.voice.remember(x, tick, CHAT, 0.5, world.catalog.embeddings[item], f"Chatted with user {y} about {T.title(world, item)}: {lines[0]}")
        return self._batch(tick, rows)

    def _publish(
        self, world: World, tick: int, author: int, item: int, text: str, parent: int | None, rating: float = float("nan"), by: str = "template"
    ) -> list[tuple]:
        pid = len(self.posts)
        if parent is None:
            root, depth = pid, 0
        else:
            root, depth = self.posts[parent][3], self.posts[parent][5] + 1
        shared = item
        if parent is None and self.rng.random() < self.config.item_post_rate:
            shared = self._new_item(world, tick, author, item, text)
        self.posts.append((author, shared, -1 if parent is None else parent, root, tick, depth))
        self.cascade_posts[root] = self.cascade_posts.get(root, 0) + 1
        self.cascade_depth[root] = max(self.cascade_depth.get(root, 0), depth)
        self.item_posts[shared] = self.item_posts.get(shared, 0) + 1
        for f in sorted(self.followers[author]):
            self.feeds[f].append((pid, shared, author, tick))
        if self.voice is not None:
            self.voice.remember(author, tick, POST, 0.55, world.catalog.embeddings[shared], f"Posted about {T.title(world, shared)}: {text}")
        payload = PostPayload(post=pid, parent_post=parent, cascade=root, depth=depth, by=by, about_item=None if shared == item else int(item))
        return [(author, int(EventType.POST), shared, float(pid), text, payload.dump())]

    def _new_item(self, world: World, tick: int, author: int, item: int, text: str) -> int:
        """User-created content: a new catalog item near the item it is about."""
        cat = world.catalog
        noise = self.rng.standard_normal(cat.dim).astype(np.float32) * 0.3 / np.sqrt(cat.dim)
        emb = cat.embeddings[item] + noise
        title = f"{T.title(world, item)} — a take by user {author}"
        idx = world.add_item(title, text, emb, tags=cat.tags[item], creator=author, like=item)
        if self.recorder is not None:
            self.recorder.add_items(
                [
                    {
                        "item_id": idx,
                        "external_id": cat.external_ids[idx],
                        "title": title,
                        "tags": "|".join(cat.tags[idx]),
                        "creator": author,
                        "created_tick": tick,
                    }
                ]
            )
        return idx

    def _consume_feeds(self, world: World, tick: int, active: np.ndarray, roles: list[str]) -> list[tuple]:
        c = self.config
        if c.feed_views <= 0:
            return []
        users, entries = [], []
        for a in active.tolist():
            feed = [e for e in reversed(self.feeds[a]) if not world.seen[a, e[1]]][: c.feed_views]
            if feed:
                users.append(a)
                entries.append(feed)
        if not users:
            return []
        k = max(len(e) for e in entries)
        slates = np.zeros((len(users), k), np.int64)
        mask = np.zeros((len(users), k), bool)
        for r, feed in enumerate(entries):
            slates[r, : len(feed)] = [e[1] for e in feed]
            mask[r, : len(feed)] = True
        ua = np.asarray(users, np.int64)
        logits = self.utility.watch_logits(world.page_context(ua, slates, page=0, draws=np.zeros((ua.size, 0))))
        # Friends' recommendations: no position penalty, and a small trust bonus.
        pos = self.utility.params.position * np.log2(1.0 + np.arange(k, dtype=np.float32))
        p_watch = 1.0 / (1.0 + np.exp(-(logits + pos[None, :] + 0.3)))
        draws = self.rng.random(slates.shape)
        reshare_draw = self.rng.random(slates.shape)
        watch = mask & (draws < p_watch)
        rows = []
        watchers, watched = [], []
        role_of = dict(zip(active.tolist(), roles))
        for r, a in enumerate(users):
            for j in np.flatnonzero(watch[r]).tolist():
                pid, item, author, _t = entries[r][j]
                root = self.posts[pid][3]
                watchers.append(a)
                watched.append(item)
                self.cascade_reach[root] = self.cascade_reach.get(root, 0) + 1
                self.item_social_watches[item] = self.item_social_watches.get(item, 0) + 1
                rows.append((a, int(EventType.SOCIAL_WATCH), item, float(author), None, SocialWatchPayload(post=pid, cascade=root).dump()))
                if reshare_draw[r, j] < c.reshare_rate * ROLE_POST.get(role_of[a], 1.0) / 2.0:
                    text = T.template_post(world, a, item)
                    rows.extend(self._publish(world, tick, a, item, f"Reshared: {text}", parent=pid))
        # Nothing above reads these counters: account the tick's social watches in one call.
        world.count_social_watches(np.array(watchers, np.int64), np.array(watched, np.int64))
        return rows

    def _follow_candidates(self, a: int) -> np.ndarray:
        # Friends of friends first (triadic closure), else a random sample.
        fof = set()
        for v in self.following[a]:
            fof |= self.following[v]
        fof -= self.following[a]
        fof.discard(a)
        if len(fof) < 3:
            extra = self.rng.choice(self.n_users, size=min(20, self.n_users), replace=False).tolist()
            fof |= {int(x) for x in extra if x != a and x not in self.following[a]}
        return np.array(sorted(fof), dtype=np.int64)

    @staticmethod
    def _batch(tick: int, rows: list[tuple]) -> EventBatch:
        if not rows:
            return EventBatch.empty()
        users, types, items, values, texts, payloads = zip(*rows)
        return EventBatch.build(tick, np.array(users), np.array(types), np.array(items), np.array(values, np.float64), list(texts), list(payloads))

    # ------------------------------------------------------------ metrics
    def cascade_stats(self) -> dict[str, Any]:
        """Cascade sizes (posts per root), reach (social watches), depth and item virality."""
        sizes = np.array(list(self.cascade_posts.values()), np.int64)
        roots = list(self.cascade_posts)
        reach = np.array([self.cascade_reach.get(r, 0) for r in roots], np.int64)
        depth = np.array([self.cascade_depth.get(r, 0) for r in roots], np.int64)
        items = sorted(set(self.item_posts) | set(self.item_social_watches))
        vir = sorted(
            (
                {
                    "item": i,
                    "posts": self.item_posts.get(i, 0),
                    "social_watches": self.item_social_watches.get(i, 0),
                    "virality": self.item_social_watches.get(i, 0) / max(self.item_posts.get(i, 0), 1),
                }
                for i in items
            ),
            key=lambda d: (-d["social_watches"], d["item"]),
        )
        return {
            "posts": len(self.posts),
            "cascades": int(sizes.size),
            "mean_cascade_size": float(sizes.mean()) if sizes.size else 0.0,
            "max_cascade_size": int(sizes.max()) if sizes.size else 0,
            "share_spreading": float((sizes > 1).mean()) if sizes.size else 0.0,
            "mean_reach": float(reach.mean()) if reach.size else 0.0,
            "max_reach": int(reach.max()) if reach.size else 0,
            "max_depth": int(depth.max()) if depth.size else 0,
            "size_distribution": {int(s): int(n) for s, n in zip(*np.unique(sizes, return_counts=True))} if sizes.size else {},
            "top_items": vir[:10],
            "chats": self.chats,
            "mean_degree": self.mean_degree(),
        }


__all__ = ["SocialConfig", "SocialLayer", "SocialVoice"]
