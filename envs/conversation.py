"""``RecWorld/Conversation-v0``: the conversational agent's policy is the RL agent.

An episode is one conversation with one user of a shared world (users
sampled from the bundled fitted user model). The user, their hidden intent,
their replies and their accept/reject decisions are exactly the
conversation layer's (:class:`recworld.agents.conversation.layer.Conversation`):
the env only hands the agent's turn to the policy.

- **observation**: the dialogue state's features
  (:func:`recworld.agents.conversation.agents.features`: turn, which
  attributes are known or were rejected, items offered, the last user act,
  how many candidates fit what is known, whether anything was recommended
  yet, whether the user watched an offer and stayed, how many attributes are
  known, whether the last answer named no preference), ``Box(0, 1.5, (18,))``.
- **action**: ``Discrete``: ask about an attribute (genre, era,
  popularity) | ask the next attribute neither known nor asked yet
  (``ask_next``; with none left it recommends 5 of the platform
  recommender's) | recommend k ∈ {1, 3, 5} of an expert's candidates (search,
  or the platform's recommender; the whole catalog ranked, then filtered by
  what the user said) | end. A user's question about an offered item is
  answered by the env (item facts), not by the policy.
- **reward**: ``accept_weight`` × each accepted item's rating / 5 (0.6 when
  not rated), ``success_bonus`` when the user accepts what they were after,
  ``- turn_cost`` per turn, ``- abandon_penalty`` when the conversation ends
  without success (the user leaves, runs out of patience, or the agent ends
  it), and at the end ``return_weight`` when the user comes back to the
  platform within a day and has not churned. The defaults weigh a success
  (2.0) well above items watched on the way (0.1 each): with the earlier 1.0
  and 0.3, a target-mode user who watches three popular items they were not
  after paid about as much as finding their target, and no policy that asks
  could earn more than "always recommend".
- ``terminated`` when the conversation ends; ``truncated`` by the
  ``TimeLimit`` of the registration (20 turns).

``reset(seed=s)`` rebuilds the world from ``s`` (same seed, same episode);
``reset()`` continues in the same world with the next user, so the world's
users keep their history (what they watched in earlier conversations).

The native vector env (many conversations of one world per step) is
:class:`recworld.envs.conversation_vector.ConversationVectorEnv`; both run
:mod:`recworld.envs.conversation_slots`.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from recworld.agents.conversation.agents import N_FEATURES, Action
from recworld.agents.conversation.layer import Conversation, ConversationConfig
from recworld.envs.conversation_slots import ConversationSlots, RewardTerms, transcript
from recworld.world import World


class ConversationEnv(gym.Env):
    """``RecWorld/Conversation-v0`` (see the module docstring).

    Args:
        n_users: users of the world conversations are held with.
        mode: ``target``, ``target_free`` or ``both`` (half each).
        max_turns: agent turns the most patient user allows.
        recommender: the platform's recommender (the second ranking expert).
        ask_about_rate: chance the user asks about an offered item before deciding.
        reveal_first: chance the user's opening names one attribute.
        turn_cost, success_bonus, accept_weight, abandon_penalty, return_weight: reward terms.
        render_mode: ``"ansi"`` renders the transcript so far.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        n_users: int = 200,
        mode: Literal["target", "target_free", "both"] = "both",
        max_turns: int = 8,
        recommender: str = "popularity",
        ask_about_rate: float = 0.1,
        reveal_first: float = 0.3,
        turn_cost: float = 0.05,
        success_bonus: float = 2.0,
        accept_weight: float = 0.1,
        abandon_penalty: float = 0.5,
        return_weight: float = 0.2,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}; expected one of {self.metadata['render_modes']} or None")
        self.render_mode = render_mode
        self.n_users = int(n_users)
        self.recommender = recommender
        self.cfg = ConversationConfig(rate=0.0, mode=mode, max_turns=max_turns, ask_about_rate=ask_about_rate, reveal_first=reveal_first)
        self.rewards = RewardTerms(turn_cost, success_bonus, accept_weight, abandon_penalty, return_weight)
        self.core = ConversationSlots(1, self.n_users, self.cfg, recommender, self.rewards)
        self.experts: tuple[str, ...] = self.core.experts
        self.actions: list[Action] = self.core.actions
        self.observation_space = spaces.Box(0.0, 1.5, shape=(N_FEATURES,), dtype=np.float32)
        self.action_space = spaces.Discrete(len(self.actions))

    @property
    def world(self) -> World | None:
        """The shared world (``None`` before the first reset)."""
        return self.core.world

    @property
    def conv(self) -> Conversation | None:
        """The conversation going on (``None`` once it ended)."""
        return self.core.convs[0]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        core = self.core
        if core.world is None or seed is not None:
            core.build(int(self.np_random.integers(2**31 - 1)))
        elif core.convs[0] is not None:  # reset during a conversation (a time limit): the user leaves
            core.truncate([0])
        if not core.free_users().size:  # everybody churned: a fresh world
            core.build(int(self.np_random.integers(2**31 - 1)))
        (info,) = core.start([0], self.np_random)
        return core.observe([0])[0], info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.core.convs[0] is None:
            raise RuntimeError("call reset() before step() (the conversation has ended)")
        res = self.core.step([0], [int(action)])
        done = bool(res.done[0])
        obs = np.zeros(N_FEATURES, np.float32) if done else self.core.observe([0])[0]
        return obs, float(res.reward[0]), done, False, res.infos[0]

    def render(self) -> str | None:
        c = self.core.last[0]
        if self.render_mode != "ansi" or c is None:
            return None
        return transcript(c)


# ------------------------------------------------------------------ policies, evaluation, training
def baseline_action(name: str, obs: np.ndarray, actions: list[Action]) -> int:
    """The action of a fixed policy: the baselines ``always_recommend`` (3 items of the platform's recommender
    every turn) and ``ask_then_recommend`` (ask the genre, then the era, then recommend 3 search results);
    and the hand-set reference ``recommend_then_ask`` (5 of the recommender's items; after a page without
    success ask the genre and the era; then 5 of the recommender's fitting items every turn), which shows
    what a policy that asks at the right time can reach."""
    idx = {(a.kind, a.attribute, a.k, a.expert): j for j, a in enumerate(actions)}
    rec = actions[-2].expert  # the last expert: the platform's recommender
    if name == "always_recommend":
        return idx[("recommend", None, 3, rec)]
    if name == "ask_then_recommend":
        if obs[2] == 0:
            return idx[("ask", "genre", 0, "")]
        if obs[3] == 0:
            return idx[("ask", "era", 0, "")]
        return idx[("recommend", None, 3, "search")]
    if name == "recommend_then_ask":
        if obs[14] == 0 or (obs[2] and obs[3]):  # nothing recommended yet, or genre and era known
            return idx[("recommend", None, 5, rec)]
        return idx[("ask", "genre" if obs[2] == 0 else "era", 0, "")]
    raise ValueError(f"unknown policy {name!r}; expected always_recommend, ask_then_recommend or recommend_then_ask")


def run_episodes(env: ConversationEnv, act: Any, episodes: int, seed: int) -> list[dict[str, Any]]:
    """Play ``episodes`` conversations with ``act(obs) -> action``; returns each episode's info plus its return and env steps."""
    out = []
    obs, _ = env.reset(seed=seed)
    for _ in range(episodes):
        total, done, info, steps = 0.0, False, {}, 0
        while not done:
            obs, r, term, trunc, info = env.step(act(obs))
            total += r
            steps += 1
            done = term or trunc
        out.append({**info, "return": total, "steps": steps})
        obs, _ = env.reset()
    return out


def summarize(episodes: list[dict[str, Any]], ks: tuple[int, ...] = (1, 3, 5)) -> dict[str, Any]:
    """Success rate, turns to success, recall@k by turn (iEvaLM) and abandonment, with 95% intervals where they are means."""
    from recworld.metrics import mean_ci

    succ = np.array([e["success"] for e in episodes], float)
    turns = np.array([e["turns"] for e in episodes if e["success"]], float)
    out: dict[str, Any] = {
        "episodes": len(episodes),
        "success": mean_ci(succ),
        "turns_to_success": mean_ci(turns) if turns.size else None,
        "abandoned": float(np.mean([e["outcome"] in ("abandoned", "left") for e in episodes])),
        "return": mean_ci(np.array([e["return"] for e in episodes])),
    }
    for mode in ("target", "target_free"):
        es = [e for e in episodes if e["mode"] == mode]
        if es:
            out[f"success_{mode}"] = float(np.mean([e["success"] for e in es]))
            out[f"recall_{mode}"] = {f"@{t}": recall_by_turn(es, t) for t in ks}
    return out


def recall_by_turn(episodes: list[dict[str, Any]], turn: int) -> float:
    """Mean share of each conversation's reference items recommended within its first ``turn`` agent turns (iEvaLM's recall@k by turn)."""
    vals = []
    for e in episodes:
        ref = set(e["reference"])
        got = {i for t in e["recommended"][:turn] for i in t}
        vals.append(len(ref & got) / max(len(ref), 1))
    return float(np.mean(vals)) if vals else 0.0


def train_policy(
    timesteps: int = 20_000,
    batch: int = 64,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    progress: Any = None,
    explore: float = 0.3,
    forget: float = 0.8,
    ridge: float = 0.1,
) -> np.ndarray:
    """Learn the policy agent's weights on ``Conversation-v0`` by fitted Monte Carlo Q iteration.

    Each round plays ``batch`` conversations ε-greedily (ε falls from ``explore`` to 0.05: random
    runs of several actions, so a question followed by a second question gets tried) and fits, per
    action, a linear model of the return-to-go on the dialogue state (ridge; earlier rounds' data
    weighted down by ``forget`` per round, as they came from an older policy). The policy is
    the greedy one, ``argmax(obs @ W)``: the policy agent's linear form, so the weights are its
    weights. It is not reliable: see the README (the gain from asking needs two questions in a row
    after a rejected first page, a plateau that one-action changes to "always recommend" do not see).

    Args:
        timesteps: conversation turns (env steps) to train on (whole rounds; at least one round).
        batch: conversations per round.
        seed: the training seed (evaluate on other seeds).
        env_kwargs: :class:`ConversationEnv` arguments.
        progress: ``progress(steps, mean_return)`` after each round.
        explore, forget, ridge: see above.

    Returns:
        ``(N_FEATURES, n_actions)`` float32 weights (save with ``np.savez(path, weights=w)``;
        ``crs: {name: policy, params: {path: ...}}`` uses them).
    """
    env = ConversationEnv(**(env_kwargs or {}))
    n_a = len(env.actions)
    w = np.zeros((N_FEATURES, n_a))
    xtx = np.zeros((n_a, N_FEATURES, N_FEATURES))
    xtg = np.zeros((n_a, N_FEATURES))
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    steps = 0
    while True:
        eps = max(0.05, explore * (1.0 - steps / max(timesteps, 1)))
        xtx *= forget
        xtg *= forget
        returns = []
        for _ in range(batch):
            traj, done = [], False
            while not done:
                a = int(rng.integers(n_a)) if rng.random() < eps else int(np.argmax(obs @ w))
                nobs, r, term, trunc, _ = env.step(a)
                traj.append((obs.astype(np.float64), a, r))
                obs, done = nobs, term or trunc
            obs, _ = env.reset()
            steps += len(traj)
            g = np.cumsum([x[2] for x in traj][::-1])[::-1]
            returns.append(float(g[0]))
            for (o, a, _), ret in zip(traj, g):
                xtx[a] += np.outer(o, o)
                xtg[a] += o * ret
        for a in range(n_a):
            w[:, a] = np.linalg.solve(xtx[a] + ridge * np.eye(N_FEATURES), xtg[a])
        if progress is not None:
            progress(steps, float(np.mean(returns)))
        if steps >= timesteps:
            return w.astype(np.float32)


def turns_to_success(episodes: list[dict[str, Any]], limit: int) -> float:
    """Mean agent turns until success, a conversation without success counting as ``limit`` turns.

    The "average turns" of multi-round conversational recommendation (Lei et al., EAR, WSDM 2020;
    SCPR; UNICORN): lower is better, and a policy cannot lower it by failing the hard conversations.
    """
    return float(np.mean([e["turns"] if e["success"] else limit for e in episodes])) if episodes else float(limit)


def compare_policies(
    weights: np.ndarray, seeds: list[int], episodes: int = 100, env_kwargs: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The trained policy against the two baselines (and the hand-set ``recommend_then_ask``) on held-out ``seeds``:
    per metric, the mean over seeds and its 95% interval.

    Each seed is a fresh world; a policy's per-seed value is the mean over ``episodes`` conversations
    (the same users in the same order for every policy). Metrics: success rate, turns to success
    (:func:`turns_to_success`, failures at the turn limit), turns of the successful conversations
    only, recall@3 by turn (target mode), abandonment. ``extra``: more policies ``name -> act(obs, actions)``.
    """
    from recworld.metrics import mean_ci

    env = ConversationEnv(**(env_kwargs or {}))
    policies: dict[str, Any] = {
        "trained": lambda o: int(np.argmax(o @ weights)),
        "always_recommend": lambda o: baseline_action("always_recommend", o, env.actions),
        "ask_then_recommend": lambda o: baseline_action("ask_then_recommend", o, env.actions),
        "recommend_then_ask": lambda o: baseline_action("recommend_then_ask", o, env.actions),
    }
    for name, f in (extra or {}).items():
        policies[name] = lambda o, f=f: f(o, env.actions)
    limit = env.cfg.max_turns
    rows = []
    for name, act in policies.items():
        per: dict[str, list[float]] = {"success": [], "turns_to_success": [], "turns_if_success": [], "recall@3": [], "abandoned": []}
        for seed in seeds:
            eps = run_episodes(env, act, episodes, seed)
            per["success"].append(float(np.mean([e["success"] for e in eps])))
            per["turns_to_success"].append(turns_to_success(eps, limit))
            t = [e["turns"] for e in eps if e["success"]]
            per["turns_if_success"].append(float(np.mean(t)) if t else float(limit))
            tgt = [e for e in eps if e["mode"] == "target"]
            per["recall@3"].append(recall_by_turn(tgt, 3) if tgt else 0.0)
            per["abandoned"].append(float(np.mean([e["outcome"] in ("abandoned", "left") for e in eps])))
        for metric, vals in per.items():
            m, lo, hi = mean_ci(vals)
            rows.append({"policy": name, "metric": metric, "mean": m, "ci_low": lo, "ci_high": hi})
    return rows


__all__ = ["ConversationEnv", "baseline_action", "compare_policies", "recall_by_turn", "run_episodes", "summarize", "train_policy", "turns_to_success"]
