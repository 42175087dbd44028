"""Seed handling: one integer seed becomes numpy and torch generators.

Every stochastic public function takes ``seed``; these helpers turn it into the
generator the code needs so the same seed gives the same numbers on CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

SeedLike = int | np.random.Generator | torch.Generator | None

__all__ = ["SeedLike", "make_rng", "make_torch_generator", "spawn_seeds", "seed_int", "seeded", "streams"]


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
    >>> bool(make_rng(0).integers(10) == make_rng(0).integers(10))
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


@contextlib.contextmanager
def seeded(seed: SeedLike | None, device: str | torch.device | None = None) -> Iterator[None]:
    """Run the block on a private global torch RNG seeded from ``seed``; the caller's state is restored.

    Code that draws from the global RNG (``nn.Linear``'s constructor, dropout) becomes reproducible and
    leaves the caller's RNG untouched. Only the CPU RNG and, for a CUDA ``device``, that device's RNG are
    forked and seeded (``torch.manual_seed`` would reseed every CUDA device). ``seed=None`` forks without
    seeding.

    Examples
    --------
    >>> with seeded(0):
    ...     a = torch.rand(1)
    >>> with seeded(0):
    ...     b = torch.rand(1)
    >>> bool(a == b)
    True
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    cuda = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        if seed is not None:
            value = seed_int(seed)
            torch.default_generator.manual_seed(value)
            if cuda:
                with torch.cuda.device(cuda[0]):
                    torch.cuda.manual_seed(value)
        yield


def streams(seed: SeedLike, names: tuple[str, ...] | list[str],
            device: str | torch.device = "cpu") -> dict[str, torch.Generator]:
    """Independent torch Generators, one per name, from the child seeds of ``seed`` (:func:`spawn_seeds`).

    Examples
    --------
    >>> g = streams(0, ["z", "x"])
    >>> sorted(g), bool(torch.rand(1, generator=g["z"]) != torch.rand(1, generator=g["x"]))
    (['x', 'z'], True)
    """
    return {name: make_torch_generator(s, device) for name, s in zip(names, spawn_seeds(seed, len(names)),
                                                                     strict=True)}
