"""Conversation speed in template mode: turns per second of the conversation layer in a world, and of Conversation-v0.

    python benchmarks/bench_conversation.py [--users 300 943] [--ticks 24] [--episodes 500] [--vector 16 64] [--repeat 3]

Measures (one process, after a warm-up tick that compiles the user-model kernels):
- the conversation layer, per population size: every session opens with a
  conversation (rate 1), the policy agent (templated language), users
  replying by templates; the conversations of a tick advance together;
  turns = user and agent turns logged (CONVERSE events); the world's own work
  (feed pages, session ends, tick metrics) is included in the time, so the
  figure is a lower bound;
- ``Conversation-v0``: env steps (agent turns, each followed by the user's reply) with a fixed policy,
  in the single env and in its native vector env (``--vector``: conversations at
  once in one world; a step of the vector env counts as one step per conversation).

Garbage is collected before each timed run (building a world leaves enough
new objects that a full collection of the process's heap, ~0.15 s, would
otherwise fall inside the timed ticks of some runs and not others).
Each figure is the best of ``--repeat`` timed runs (same seed, same events);
wall clock and the process's CPU time are both shown, because on a shared
machine the wall clock also counts the time other processes held the core.
Prints a table.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import time

from rich.console import Console
from rich.table import Table

from recworld.agents.brains import UtilityBrain
from recworld.agents.conversation.agents import PolicyAgent
from recworld.agents.conversation.layer import ConversationConfig, ConversationLayer
from recworld.agents.population import MovieLensPopulation
from recworld.agents.recommenders import make_recommender
from recworld.envs.conversation import ConversationEnv, baseline_action
from recworld.envs.conversation_vector import ConversationVectorEnv
from recworld.events import EventType
from recworld.usermodel.bundled import bundled_catalog, bundled_model
from recworld.world import World


def world_turns(users: int, ticks: int, seed: int = 1) -> tuple[int, int, float, float]:
    """(turns, conversations, wall seconds, CPU seconds) of ``ticks`` ticks of a world where every session opens a conversation."""
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
    gc.collect()  # the garbage of building the world is not the ticks' (a full collection of the heap costs ~0.15 s here)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(ticks):
        w.step()
        turns += int(w.last_events.of_type(EventType.CONVERSE).sum())
        convs += int(w.last_events.of_type(EventType.CONVERSATION_END).sum())
    return turns, convs, time.perf_counter() - t0, time.process_time() - c0


def env_steps(episodes: int, seed: int = 1) -> tuple[int, float, float]:
    """(steps, wall seconds, CPU seconds) of ``episodes`` Conversation-v0 episodes under the ask-two-then-recommend policy."""
    env = ConversationEnv()
    obs, _ = env.reset(seed=seed)
    steps = 0
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(episodes):
        done = False
        while not done:
            obs, _, term, trunc, _ = env.step(baseline_action("ask_then_recommend", obs, env.actions))
            steps += 1
            done = term or trunc
        obs, _ = env.reset()
    return steps, time.perf_counter() - t0, time.process_time() - c0


def vector_steps(num_envs: int, episodes: int, seed: int = 1) -> tuple[int, float, float]:
    """(steps, wall seconds, CPU seconds) of the vector env until ``episodes`` conversations ended, same policy; a step per conversation."""
    env = ConversationVectorEnv(num_envs=num_envs)
    obs, _ = env.reset(seed=seed)
    steps = ended = 0
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    while ended < episodes:
        obs, _, term, trunc, _ = env.step([baseline_action("ask_then_recommend", o, env.actions) for o in obs])
        steps += num_envs
        ended += int((term | trunc).sum())
    return steps, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, nargs="+", default=[300, 943], help="population sizes (MovieLens-100k users, at most 943)")
    p.add_argument("--ticks", type=int, default=24)
    p.add_argument("--episodes", type=int, default=500)
    p.add_argument("--vector", type=int, nargs="*", default=[16, 64], help="conversations at once in the vector env (none: skip)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per figure (the best is shown)")
    a = p.parse_args()
    t = Table(title="conversations, template mode (policy agent)", header_style="bold")
    for col in ("what", "count", "wall s", "CPU s", "per second (wall)", "per CPU second"):
        t.add_column(col, justify="right")
    for users in a.users:
        turns, convs, dt, cpu = min((world_turns(users, a.ticks) for _ in range(a.repeat)), key=lambda r: r[2])
        t.add_row(
            f"layer: turns ({convs:,} conversations, {turns / max(convs, 1):.2f} turns each; {users} users x {a.ticks} ticks)",
            f"{turns:,}",
            f"{dt:.2f}",
            f"{cpu:.2f}",
            f"{turns / dt:,.0f}",
            f"{turns / cpu:,.0f}",
        )
    steps, dt2, cpu2 = min((env_steps(a.episodes) for _ in range(a.repeat)), key=lambda r: r[1])
    t.add_row(f"Conversation-v0: steps ({a.episodes} episodes)", f"{steps:,}", f"{dt2:.2f}", f"{cpu2:.2f}", f"{steps / dt2:,.0f}", f"{steps / cpu2:,.0f}")
    for n in a.vector:
        steps, dt3, cpu3 = min((vector_steps(n, a.episodes) for _ in range(a.repeat)), key=lambda r: r[1])
        t.add_row(
            f"Conversation-v0 vector env, {n} at once: steps ({a.episodes}+ episodes)",
            f"{steps:,}",
            f"{dt3:.2f}",
            f"{cpu3:.2f}",
            f"{steps / dt3:,.0f}",
            f"{steps / cpu3:,.0f}",
        )
    Console().print(t)
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} (1, 5, 15 min) on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
