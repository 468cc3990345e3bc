"""Native vector env for ``RecWorld/Conversation-v0``: many conversations with users of ONE shared world, stepped as one batch."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recworld.agents.conversation.agents import N_FEATURES
from recworld.envs.conversation import ConversationEnv
from recworld.envs.conversation_slots import ConversationSlots, transcript
from recworld.errors import ConfigError


class ConversationVectorEnv(VectorEnv):
    """``num_envs`` conversations held at once in one world (``gym.make_vec("RecWorld/Conversation-v0", n)``,
    ``vectorization_mode="vector_entry_point"``, the default for this id).

    Each sub-env is the :class:`~recworld.envs.conversation.ConversationEnv` MDP
    (same observation, action and reward) with a user of the same world: a step
    is one agent turn in every conversation, and the users' decisions on all
    the items offered in it are one call of the user model's page kernel per
    slate length (:mod:`recworld.envs.conversation_slots`, the code the single
    env runs as one slot). Users of different sub-envs share the platform
    (popularity, the recommender's learning, the world's clock), so sub-envs
    are not independent and their trajectories are not those of ``num_envs``
    single envs; with ``num_envs=1`` and ``share_ranking=False`` they are the
    single env's, step for step.

    Autoreset: ``AutoresetMode.SAME_STEP``. When a conversation ends, the
    returned observation is the first of the slot's next conversation (a user
    not talking in another slot); the ended one's observation (zeros, as the
    single env returns) and its info (outcome, success, turns, mode, recall,
    recommended, reference, episode return and length) are in
    ``infos["final_obs"]`` / ``infos["final_info"]`` with the masks
    ``infos["_final_obs"]`` / ``infos["_final_info"]``. A conversation still
    open after ``max_episode_steps`` turns is truncated (the user leaves).
    When no user is left to talk (all churned or talking), the open
    conversations are truncated and a fresh world starts.

    Args:
        num_envs: conversations at once (at most ``n_users``).
        max_episode_steps: truncation per conversation (``None``: never; the
            user's patience ends every conversation within ``max_turns`` turns).
        render_mode: ``None`` or ``"ansi"`` (every slot's transcript).
        share_ranking: the platform's recommender ranks once per step for all the conversations, and a
            recommendation reuses the ranking its observation saw (3-4x faster at 16-64 conversations);
            ``False`` asks it on every request, as the single env does (its random tie-breaking is drawn
            each time), so that ``num_envs=1`` is the single env step for step.
        **kwargs: :class:`~recworld.envs.conversation.ConversationEnv` arguments.
    """

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self, num_envs: int = 1, max_episode_steps: int | None = 20, render_mode: str | None = None, share_ranking: bool = True, **kwargs: Any
    ) -> None:
        if num_envs < 1:
            raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
        if render_mode is not None and render_mode != "ansi":
            raise ConfigError(f"render_mode={render_mode!r}; expected None or 'ansi'")
        try:
            single = ConversationEnv(**kwargs)  # the same arguments and spaces as the single env
        except TypeError as e:
            raise ConfigError(f"Conversation-v0: {e}; see ConversationEnv's arguments") from None
        if single.n_users < num_envs:
            raise ConfigError(f"num_envs={num_envs} conversations need at least as many users; got n_users={single.n_users}")
        self.num_envs = int(num_envs)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.core = ConversationSlots(self.num_envs, single.n_users, single.cfg, single.recommender, single.rewards, share_ranking)
        self.actions = self.core.actions
        self.single_observation_space, self.single_action_space = single.observation_space, single.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._steps = np.zeros(self.num_envs, np.int64)
        self._returns = np.zeros(self.num_envs)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, (list, tuple)):
            seed = seed[0]
        super().reset(seed=seed)
        infos: dict[str, Any] = {}
        self._fresh_world(infos)
        return self.core.observe(list(range(self.num_envs))), infos

    def _fresh_world(self, infos: dict[str, Any]) -> None:
        self.core.build(int(self.np_random.integers(2**31 - 1)))
        for i, info in enumerate(self.core.start(list(range(self.num_envs)), self.np_random)):
            infos = self._add_info(infos, info, i)
        self._steps[:] = 0
        self._returns[:] = 0.0

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        core = self.core
        if core.world is None or any(c is None for c in core.convs):
            raise ConfigError("call reset() before step()")
        n = self.num_envs
        res = core.step(list(range(n)), np.asarray(actions, np.int64).reshape(n).tolist())
        self._steps += 1
        self._returns += res.reward
        terminated = res.done.copy()
        truncated = ~terminated & (self._steps >= self.max_episode_steps) if self.max_episode_steps else np.zeros(n, bool)
        ends = {i: res.infos[i] for i in np.flatnonzero(terminated).tolist()}
        cut = np.flatnonzero(truncated).tolist()
        if cut:
            ends.update(zip(cut, core.truncate(cut)))
        done = sorted(ends)
        fresh = len(core.free_users()) < len(done)
        if fresh:  # nobody left to talk with: the open conversations are cut and a fresh world starts
            live = [i for i in range(n) if i not in ends]
            ends.update(zip(live, core.truncate(live)))
            truncated[live] = True
            done = list(range(n))
        infos: dict[str, Any] = {}
        for i in done:
            final = {**ends[i], "episode_return": float(self._returns[i]), "episode_length": int(self._steps[i])}
            infos = self._add_info(infos, {"final_obs": np.zeros(N_FEATURES, np.float32), "final_info": final}, i)
        if fresh:
            self._fresh_world(infos)
        else:
            for i, info in zip(done, core.start(done, self.np_random)):
                infos = self._add_info(infos, info, i)
                self._steps[i] = 0
                self._returns[i] = 0.0
        return core.observe(list(range(n))), res.reward.copy(), terminated, truncated, infos

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.core.world is None:
            return None
        out = []
        for i, c in enumerate(self.core.last):
            if c is not None:
                out += [f"--- conversation {i} (user {c.user})", transcript(c)]
        return "\n".join(out) + "\n"


__all__ = ["ConversationVectorEnv"]
