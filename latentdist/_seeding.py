"""Seed handling: one integer seed becomes numpy and torch generators.

Every stochastic public function takes ``seed``; these helpers turn it into the
generator the code needs so the same seed gives the same numbers on CPU.
"""

from __future__ import annotations

import numpy as np
import torch

SeedLike = int | np.random.Generator | torch.Generator | None

__all__ = ["SeedLike", "make_rng", "make_torch_generator", "spawn_seeds", "seed_int"]


def seed_int(seed: SeedLike) -> int:
    """Reduce any accepted seed to a Python int (drawn from the generator if one is given)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(seed, bool):
        raise TypeError("seed must be an int, numpy Generator, torch Generator or None, got bool")
    if isinstance(seed, (int, np.integer)):
        if not 0 <= seed < 2**64:  # torch.manual_seed takes 64-bit seeds at most
            raise ValueError(f"seed must be non-negative and below 2**64, got {seed}")
        return int(seed)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63 - 1))
    if isinstance(seed, torch.Generator):
        return int(torch.randint(0, 2**62, (1,), generator=seed).item())
    raise TypeError(
        f"seed must be an int, numpy Generator, torch Generator or None, got {type(seed).__name__}"
    )


def make_rng(seed: SeedLike = 0) -> np.random.Generator:
    """Return a numpy ``Generator``; a Generator passed in is returned unchanged.

    Examples
    --------
    >>> make_rng(0).integers(10) == make_rng(0).integers(10)
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed_int(seed))


def make_torch_generator(seed: SeedLike = 0, device: str | torch.device = "cpu") -> torch.Generator:
    """Return a ``torch.Generator`` on ``device``; a Generator passed in is returned unchanged."""
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator(device=device)
    g.manual_seed(seed_int(seed))
    return g


def spawn_seeds(seed: SeedLike, n: int) -> list[int]:
    """``n`` independent child seeds derived deterministically from ``seed``."""
    ss = np.random.SeedSequence(seed_int(seed))
    return [int(c.generate_state(1, dtype=np.uint64)[0] % (2**63)) for c in ss.spawn(n)]
