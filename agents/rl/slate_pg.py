"""Slate policy gradient (PPO-lite with a Plackett-Luce slate policy) on the RecWorld/Feed-v0 vector env.

CleanRL-style single file: ``python -m agents.rl.slate_pg --total-timesteps 100000``.
The policy scores every candidate with one shared network; a slate is a
Plackett-Luce sample (Gumbel-top-k) during training and the top-k at test
time. Advantages by GAE with a learned value baseline, clipped PPO updates.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from recworld.agents.rl.policy import ScorerSpec, SlatePolicy, SlateScorer, plackett_luce_logp, sample_slates


@dataclass
class Args:
    # "module:id" makes Gymnasium import `envs` (which registers the ids) without a static import.
    env_id: str = "recworld.envs.registration:RecWorld/Feed-v0"
    seed: int = 0
    total_timesteps: int = 100_000
    num_envs: int = 64
    num_steps: int = 32
    learning_rate: float = 3e-3
    gamma: float = 0.95
    gae_lambda: float = 0.9
    update_epochs: int = 4
    num_minibatches: int = 4
    clip_coef: float = 0.2
    ent_coef: float = 0.003
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: int = 64
    n_background: int = 100
    num_candidates: int = 10
    slate_size: int = 2
    out_path: str = "runs/slate_pg.pt"
    torch_threads: int = 1


def train(args: Args, progress: Callable[[int, dict[str, float]], None] | None = None) -> SlatePolicy:
    """Train a slate policy; returns it (also saved to ``args.out_path`` when set)."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.torch_threads)
    gen = torch.Generator().manual_seed(args.seed)
    envs = gym.make_vec(
        args.env_id,
        num_envs=args.num_envs,
        vectorization_mode="vector_entry_point",
        n_background=args.n_background,
        num_candidates=args.num_candidates,
        slate_size=args.slate_size,
    )
    so = envs.single_observation_space
    n_cand, i_dim = so["candidates"].shape
    embed_dims = i_dim - 2
    spec = ScorerSpec(
        user_dim=so["user"].shape[0], item_dim=i_dim, embed_dims=embed_dims, num_candidates=n_cand, slate_size=args.slate_size, hidden=args.hidden
    )
    model = SlateScorer(spec)
    opt = torch.optim.Adam(model.parameters(), lr=args.learning_rate, eps=1e-5)

    T, B, K = args.num_steps, args.num_envs, args.slate_size
    obs_u = torch.zeros((T, B, spec.user_dim))
    obs_i = torch.zeros((T, B, n_cand, i_dim))
    acts = torch.zeros((T, B, K), dtype=torch.long)
    logps = torch.zeros((T, B))
    rews = torch.zeros((T, B))
    dones = torch.zeros((T, B))
    vals = torch.zeros((T, B))

    obs, _ = envs.reset(seed=args.seed)
    n_updates = max(1, args.total_timesteps // (T * B))
    ep_returns: list[float] = []
    global_step = 0
    start = time.time()
    for update in range(n_updates):
        for t in range(T):
            u = torch.as_tensor(obs["user"])
            it = torch.as_tensor(obs["candidates"])
            with torch.no_grad():
                s, v = model(u, it)
                a = sample_slates(s, K, gen)
                lp, _ = plackett_luce_logp(s, a)
            obs_u[t], obs_i[t], acts[t], logps[t], vals[t] = u, it, a, lp, v
            obs, r, term, trunc, info = envs.step(a.numpy())
            rews[t] = torch.as_tensor(r, dtype=torch.float32)
            dones[t] = torch.as_tensor(term | trunc, dtype=torch.float32)
            if "final_info" in info:
                m = info["_final_info"]
                ep_returns += info["final_info"]["episode_return"][m].tolist()
            global_step += B
        with torch.no_grad():
            _, next_v = model(torch.as_tensor(obs["user"]), torch.as_tensor(obs["candidates"]))
            adv = torch.zeros((T, B))
            last = torch.zeros(B)
            for t in reversed(range(T)):
                nv = next_v if t == T - 1 else vals[t + 1]
                nonterm = 1.0 - dones[t]  # SAME_STEP autoreset: the next obs belongs to a new episode
                delta = rews[t] + args.gamma * nv * nonterm - vals[t]
                last = delta + args.gamma * args.gae_lambda * nonterm * last
                adv[t] = last
            ret = adv + vals
        fu, fi, fa, flp = obs_u.reshape(T * B, -1), obs_i.reshape(T * B, n_cand, i_dim), acts.reshape(T * B, K), logps.reshape(-1)
        fadv, fret = adv.reshape(-1), ret.reshape(-1)
        mb = max(1, (T * B) // args.num_minibatches)
        for _ in range(args.update_epochs):
            perm = torch.randperm(T * B, generator=gen)
            for s0 in range(0, T * B, mb):
                idx = perm[s0 : s0 + mb]
                s, v = model(fu[idx], fi[idx])
                lp, ent = plackett_luce_logp(s, fa[idx])
                ratio = (lp - flp[idx]).exp()
                a_ = fadv[idx]
                a_ = (a_ - a_.mean()) / (a_.std() + 1e-8)
                pg = torch.max(-a_ * ratio, -a_ * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
                vl = 0.5 * ((v - fret[idx]) ** 2).mean()
                loss = pg + args.vf_coef * vl - args.ent_coef * ent.mean()
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                opt.step()
        if progress is not None:
            recent = ep_returns[-100:]
            progress(
                global_step,
                {
                    "episode_return": float(np.mean(recent)) if recent else float("nan"),
                    "sps": global_step / (time.time() - start),
                    "update": update + 1,
                    "updates": n_updates,
                },
            )
    envs.close()
    policy = SlatePolicy(model)
    if args.out_path:
        policy.save(args.out_path)
    return policy


def _parse() -> Args:
    p = argparse.ArgumentParser(description=__doc__)
    for f in fields(Args):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    return Args(**vars(p.parse_args()))


if __name__ == "__main__":
    a = _parse()

    def _print(step: int, m: dict[str, float]) -> None:
        print(f"step {step:>8d}  episode_return {m['episode_return']:7.2f}  sps {m['sps']:7.0f}")

    train(a, _print)
    print(f"saved {Path(a.out_path)}")
