"""A slate-aware policy for Stable-Baselines3 PPO on ``RecWorld/Feed-v0``.

SB3's stock ``MultiInputPolicy`` flattens the observation into one MLP and
gives each slate position its own independent softmax, so it must learn the
value of every candidate slot separately. This policy scores candidates with
one shared :class:`~recworld.agents.rl.policy.SlateScorer` (as the slate policy
gradient does) and uses those scores, plus a learned per-position offset, as
the logits of every slate position. The value head is an MLP over the user
and the mean candidate.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from recworld.agents.rl.policy import ScorerSpec, SlateScorer
from recworld.errors import require_extra

_SB3 = "the Stable-Baselines3 slate policy"
MultiInputActorCriticPolicy = require_extra("stable_baselines3.common.policies", "rl", _SB3).MultiInputActorCriticPolicy
BaseFeaturesExtractor = require_extra("stable_baselines3.common.torch_layers", "rl", _SB3).BaseFeaturesExtractor


class CandidateScores(BaseFeaturesExtractor):
    """Features = [score of each candidate (N), user (U), mean candidate (I)]."""

    def __init__(self, observation_space: spaces.Dict, embed_dims: int, slate_size: int, hidden: int = 64) -> None:
        n, i = observation_space["candidates"].shape
        u = observation_space["user"].shape[0]
        super().__init__(observation_space, features_dim=n + u + i)
        self.scorer = SlateScorer(ScorerSpec(user_dim=u, item_dim=i, embed_dims=embed_dims, num_candidates=n, slate_size=slate_size, hidden=hidden))

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        user, items = obs["user"], obs["candidates"]
        return torch.cat([self.scorer.scores(user, items), user, items.mean(dim=1)], dim=-1)


class SlotLogits(nn.Module):
    """Logits of every slate position: the candidate scores plus a learned offset per (position, candidate)."""

    def __init__(self, num_candidates: int, slate_size: int) -> None:
        super().__init__()
        self.n = num_candidates
        self.offset = nn.Parameter(torch.zeros(slate_size, num_candidates))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        scores = latent[:, : self.n]
        return (scores[:, None, :] + self.offset[None]).reshape(latent.shape[0], -1)


class SlateActorCriticPolicy(MultiInputActorCriticPolicy):
    """``MultiInputActorCriticPolicy`` whose action logits come from :class:`CandidateScores`."""

    def __init__(self, observation_space: spaces.Dict, action_space: spaces.MultiDiscrete, lr_schedule: Any, embed_dims: int = 8, **kwargs: Any) -> None:
        self._slate = (int(action_space.nvec[0]), len(action_space.nvec))
        kwargs.setdefault("features_extractor_class", CandidateScores)
        kwargs.setdefault("features_extractor_kwargs", {"embed_dims": embed_dims, "slate_size": self._slate[1]})
        # The policy latent is the features themselves (the scores pass straight to SlotLogits).
        kwargs.setdefault("net_arch", {"pi": [], "vf": [64, 64]})
        kwargs.setdefault("share_features_extractor", True)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self.action_net = SlotLogits(*self._slate)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)


__all__ = ["CandidateScores", "SlateActorCriticPolicy", "SlotLogits"]
