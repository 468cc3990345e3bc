"""A slate policy network: one shared scorer per candidate (permutation-equivariant), Plackett-Luce slates.

Works on the observation layout of ``RecWorld/Feed-v0`` (``user`` (B, U),
``candidates`` (B, N, I)) without importing the env: the layout is described by
``embed_dims`` (the user vector ends with the recent-consumption embedding,
the item vector starts with the item embedding).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class ScorerSpec:
    """Shapes a :class:`SlateScorer` was built for."""

    user_dim: int
    item_dim: int
    embed_dims: int
    num_candidates: int
    slate_size: int
    hidden: int = 64


class SlateScorer(nn.Module):
    """Scores each candidate from (user, item, user-recent ⊙ item-embedding); a value head on the user.

    Args:
        spec: the observation layout and sizes.
    """

    def __init__(self, spec: ScorerSpec) -> None:
        super().__init__()
        self.spec = spec
        d_in = spec.user_dim + spec.item_dim + spec.embed_dims
        h = spec.hidden
        self.score = nn.Sequential(nn.Linear(d_in, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 1))
        self.value = nn.Sequential(nn.Linear(spec.user_dim + spec.item_dim, h), nn.Tanh(), nn.Linear(h, 1))

    def _x(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        b, n, _ = items.shape
        e = self.spec.embed_dims
        recent = user[:, -e:]
        inter = recent[:, None, :] * items[:, :, :e]
        return torch.cat([user[:, None, :].expand(b, n, -1), items, inter], dim=-1)

    def scores(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores (B, N) of the candidates."""
        return self.score(self._x(user, items)).squeeze(-1)

    def forward(self, user: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (B, N) and values (B,)."""
        v = self.value(torch.cat([user, items.mean(dim=1)], dim=-1)).squeeze(-1)
        return self.scores(user, items), v


def plackett_luce_logp(scores: torch.Tensor, slates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability (B,) of ordered slates (B, k) under Plackett-Luce on ``scores`` (B, N), and the first-pick entropy."""
    b, k = slates.shape
    mask = torch.zeros_like(scores, dtype=torch.bool)
    logp = torch.zeros(b, dtype=scores.dtype, device=scores.device)
    rows = torch.arange(b, device=scores.device)
    first = torch.log_softmax(scores, dim=-1)
    ent = -(first.exp() * first).sum(-1)
    for j in range(k):
        s = scores.masked_fill(mask, float("-inf"))
        logp = logp + s[rows, slates[:, j]] - torch.logsumexp(s, dim=-1)
        mask = mask.clone()
        mask[rows, slates[:, j]] = True
    return logp, ent


def sample_slates(scores: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Plackett-Luce samples without replacement via the Gumbel-top-k trick."""
    u = torch.rand(scores.shape, generator=generator, dtype=scores.dtype).clamp_(1e-9, 1 - 1e-9)
    g = -torch.log(-torch.log(u))
    return torch.topk(scores + g, k, dim=-1).indices


class SlatePolicy:
    """A trained scorer used as a policy: ``act(obs) -> (B, k)`` candidate indices (greedy top-k)."""

    def __init__(self, model: SlateScorer) -> None:
        self.model = model.eval()
        self.spec = model.spec

    @torch.no_grad()
    def scores(self, user: np.ndarray, items: np.ndarray) -> np.ndarray:
        u = torch.as_tensor(np.atleast_2d(user), dtype=torch.float32)
        it = torch.as_tensor(items if items.ndim == 3 else items[None], dtype=torch.float32)
        return self.model(u, it)[0].numpy()

    def act(self, obs: dict[str, np.ndarray], k: int | None = None) -> np.ndarray:
        s = self.scores(obs["user"], obs["candidates"])
        k = k or self.spec.slate_size
        return np.argsort(-s, axis=1, kind="stable")[:, :k]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": "recworld-slate-scorer-v1", "spec": asdict(self.spec), "state_dict": self.model.state_dict()}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SlatePolicy:
        blob: dict[str, Any] = torch.load(Path(path), map_location="cpu", weights_only=True)
        if blob.get("format") != "recworld-slate-scorer-v1":
            raise ValueError(f"{path}: expected a recworld-slate-scorer-v1 file, got format {blob.get('format')!r}")
        model = SlateScorer(ScorerSpec(**blob["spec"]))
        model.load_state_dict(blob["state_dict"])
        return cls(model)


__all__ = ["ScorerSpec", "SlatePolicy", "SlateScorer", "plackett_luce_logp", "sample_slates"]
