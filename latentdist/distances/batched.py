"""Batched (B, n, D) forms of the kernel and sliced distances, for B members' equal-size minibatches.

Each form returns the registry function's value for every member at once (to float round-off): (B, n, n)
kernel matrices for MMD and energy, one projection matrix for all members for the sliced distance. The
registry (:mod:`latentdist.distances.registry`) stores them as the ``batched`` form of its entries; a form
returns None for options it does not cover (sample weights), and the per-member path is used instead.

Example
-------
>>> import torch
>>> loss = batched_mmd(bandwidth=1.0)
>>> loss(torch.zeros(3, 4, 2), torch.zeros(3, 4, 2)).shape
torch.Size([3])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from latentdist._seeding import SeedLike

from .minibatch import sorted_rows

__all__ = ["batched_mmd", "batched_energy", "batched_sliced"]

BatchLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_KERNEL_OPTIONS = {"kernel", "bandwidth", "unbiased", "chunk_size", "seed"}


def _batched_mmd2(kernel: str, bandwidth: float | str, unbiased: bool, seed: SeedLike) -> Callable:
    """:func:`latentdist.distances.mmd2` (unweighted) for (B, n, D) batches: (B, n, n) kernel matrices
    from the module's own ``kernel_matrix``, the same centring, U- or V-statistic; shape (B,). The
    median-heuristic bandwidth is the registry's own :func:`median_bandwidth` of each member (a median
    over the pooled pairs is a partition, which batching would not make cheaper)."""
    from .kernel import kernel_matrix, median_bandwidth

    def loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        n, m = y.shape[1], x.shape[1]
        if kernel == "energy":
            h: Any = 1.0
        elif isinstance(bandwidth, str):
            h = torch.tensor([median_bandwidth(yb, xb, seed=seed) for yb, xb in zip(y, x, strict=True)],
                             dtype=y.dtype, device=y.device)[:, None, None]
        else:
            h = float(bandwidth)
        centre = torch.cat([y, x], dim=1).detach().mean(1, keepdim=True)
        y, x = y - centre, x - centre
        kyy, kxx = kernel_matrix(y, y, kernel, h), kernel_matrix(x, x, kernel, h)
        kxy = kernel_matrix(y, x, kernel, h)
        if unbiased:
            syy = (kyy.sum((1, 2)) - kyy.diagonal(dim1=1, dim2=2).sum(1)) / (n * (n - 1))
            sxx = (kxx.sum((1, 2)) - kxx.diagonal(dim1=1, dim2=2).sum(1)) / (m * (m - 1))
        else:
            syy, sxx = kyy.mean((1, 2)), kxx.mean((1, 2))
        return syy + sxx - 2.0 * kxy.mean((1, 2))

    return loss


def _batched_sliced(p: float, n_projections: int, seed: SeedLike) -> Callable:
    """:func:`latentdist.distances.sliced_wasserstein` (unweighted, equal sizes) for (B, n, D) batches:
    the same directions (POT's generator, ``seed``) applied to all members at once; each 1-D W_p^p is
    the sorted coupling, which is what ``ot.wasserstein_1d`` computes for equal uniform weights."""
    import ot

    from latentdist._seeding import seed_int

    from ._common import safe_root

    directions: dict[tuple, torch.Tensor] = {}  # the same every step: drawn once per shape and device

    def loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        key = (y.shape[2], y.dtype, y.device)
        if key not in directions:
            theta = ot.sliced.get_random_projections(y.shape[2], n_projections, seed_int(seed))
            directions[key] = torch.as_tensor(theta, dtype=y.dtype, device=y.device)
        theta = directions[key]
        ys, xs = sorted_rows(y @ theta), sorted_rows(x @ theta)
        wpp = ((ys - xs).abs() ** p).mean(1).mean(1)
        return safe_root(wpp.clamp_min(0.0), p)

    return loss


def _batched_loss(distance: Any, kwargs: dict[str, Any]) -> Callable | None:
    """The batched form of a registry distance with these keyword arguments, or None when only the
    per-member loop computes it."""
    if not isinstance(distance, str):
        return None
    if distance in ("mmd", "energy"):
        if set(kwargs) - {"kernel", "bandwidth", "unbiased", "chunk_size", "seed"}:
            return None  # weights or unknown options: the registry function decides
        kernel = "energy" if distance == "energy" else kwargs.get("kernel", "gaussian")
        return _batched_mmd2(kernel, kwargs.get("bandwidth", "median"), bool(kwargs.get("unbiased", True)),
                             kwargs.get("seed", 0))
    if distance == "sliced" and not set(kwargs) - {"p", "n_projections", "seed", "chunk_size"}:
        return _batched_sliced(float(kwargs.get("p", 2)), int(kwargs.get("n_projections", 128)),
                               kwargs.get("seed", 0))
    return None


def batched_mmd(**kwargs: Any) -> BatchLoss | None:
    """Batched :func:`~latentdist.distances.mmd2` with these options, or None when they need the per-member
    function (weights or options it does not know)."""
    if set(kwargs) - _KERNEL_OPTIONS:
        return None
    return _batched_mmd2(kwargs.get("kernel", "gaussian"), kwargs.get("bandwidth", "median"),
                         bool(kwargs.get("unbiased", True)), kwargs.get("seed", 0))


def batched_energy(**kwargs: Any) -> BatchLoss | None:
    """Batched :func:`~latentdist.distances.energy_distance` (the MMD of the energy kernel), or None."""
    if set(kwargs) - _KERNEL_OPTIONS:
        return None
    return _batched_mmd2("energy", "median", bool(kwargs.get("unbiased", True)), kwargs.get("seed", 0))


def batched_sliced(**kwargs: Any) -> BatchLoss | None:
    """Batched :func:`~latentdist.distances.sliced_wasserstein` with these options, or None."""
    if set(kwargs) - {"p", "n_projections", "seed", "chunk_size"}:
        return None
    return _batched_sliced(float(kwargs.get("p", 2)), int(kwargs.get("n_projections", 128)),
                           kwargs.get("seed", 0))
