"""Conversation speed in template mode: turns per second of the conversation layer in a world, and of Conversation-v0.

    python benchmarks/bench_conversation.py [--users 300] [--ticks 24] [--episodes 500]

Measures (wall clock, one process, after a warm-up that compiles the user-model kernels):
- the conversation layer: every session opens with a conversation (rate 1), the
  policy agent (templated language), users replying by templates; turns = user
  and agent turns logged (CONVERSE events); the world's own work (feed pages,
  session ends) is included in the time, so the figure is a lower bound;
- ``Conversation-v0``: env steps (agent turns, each followed by the user's reply) with a fixed policy.
Prints a table.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from recworld.agents.brains import UtilityBrain
from recworld.agents.conversation.agents import PolicyAgent
from recworld.agents.conversation.layer import ConversationConfig, ConversationLayer
from recworld.agents.population import MovieLensPopulation
from recworld.agents.recommenders import make_recommender
from recworld.envs.conversation import ConversationEnv, baseline_action
from recworld.events import EventType
from recworld.usermodel.bundled import bundled_catalog, bundled_model
from recworld.world import World


def world_turns(users: int, ticks: int, seed: int = 1) -> tuple[int, int, float]:
    cat, ml = bundled_catalog()
    model = bundled_model()
    w = World(
        copy.deepcopy(cat),
        MovieLensPopulation(ml, cat, n_users=users, seed=seed, model=model),
        UtilityBrain(model.decision),
        make_recommender("popularity"),
        seed=seed,
        items=model.item_table(),
    )
    w.add_layer(ConversationLayer(ConversationConfig(rate=1.0), PolicyAgent()))
    turns = convs = 0
    w.step()  # warm-up: kernels compiled, indexes built
    t0 = time.perf_counter()
    for _ in range(ticks):
        w.step()
        turns += int(w.last_events.of_type(EventType.CONVERSE).sum())
        convs += int(w.last_events.of_type(EventType.CONVERSATION_END).sum())
    return turns, convs, time.perf_counter() - t0


def env_steps(episodes: int, seed: int = 1) -> tuple[int, float]:
    env = ConversationEnv()
    obs, _ = env.reset(seed=seed)
    steps = 0
    t0 = time.perf_counter()
    for _ in range(episodes):
        done = False
        while not done:
            obs, _, term, trunc, _ = env.step(baseline_action("ask_then_recommend", obs, env.actions))
            steps += 1
            done = term or trunc
        obs, _ = env.reset()
    return steps, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--ticks", type=int, default=24)
    p.add_argument("--episodes", type=int, default=500)
    a = p.parse_args()
    turns, convs, dt = world_turns(a.users, a.ticks)
    steps, dt2 = env_steps(a.episodes)
    t = Table(title="conversations, template mode (policy agent)", header_style="bold")
    for col in ("what", "count", "seconds", "per second"):
        t.add_column(col, justify="right")
    t.add_row(f"layer: turns ({convs} conversations, {a.users} users x {a.ticks} ticks)", f"{turns:,}", f"{dt:.2f}", f"{turns / dt:,.0f}")
    t.add_row(f"Conversation-v0: steps ({a.episodes} episodes)", f"{steps:,}", f"{dt2:.2f}", f"{steps / dt2:,.0f}")
    Console().print(t)
    print(f"mean turns per conversation: {turns / max(convs, 1):.2f}; {np.round(dt / max(turns, 1) * 1e6)} us per turn in the layer")


if __name__ == "__main__":
    main()
