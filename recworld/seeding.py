"""One RNG root per run: named child generators derived from a SeedSequence."""

from __future__ import annotations

import hashlib

import numpy as np


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


class Seeder:
    """Hands out independent, reproducible generators per subsystem name.

    The same (seed, name) always gives the same stream, whatever order
    subsystems ask in, so adding a subsystem never perturbs the others.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def rng(self, name: str) -> np.random.Generator:
        """A fresh generator for subsystem ``name``."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, _name_key(name)]))

    def int_seed(self, name: str) -> int:
        """A 31-bit integer seed for libraries that want an int."""
        return int(self.rng(name).integers(0, 2**31 - 1))
