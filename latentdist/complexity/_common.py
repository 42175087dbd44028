"""Plumbing shared by the generator proxies: latent points, devices, and the flattened map.

Every proxy sees a generator g as a map R^d -> R^D on a batch: ``(n, d) -> (n, D)``, whatever the
module's own output shape (a conv decoder's ``(n, 1, 28, 28)`` is flattened to ``(n, 784)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from latentdist._seeding import SeedLike
from latentdist._validation import check_cast, check_device, check_int, check_samples, to_tensor

__all__ = ["is_latent", "module_device_dtype", "latent_points", "flat_map", "eval_mode", "check_module"]


def is_latent(obj: Any) -> bool:
    """True for latent objects (anything with ``.dim`` and ``.sample(n, seed)``)."""
    return hasattr(obj, "dim") and callable(getattr(obj, "sample", None))


def check_module(g: Any, name: str = "g") -> nn.Module:
    """Require a ``torch.nn.Module``."""
    if not isinstance(g, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(g).__name__}")
    return g


def module_device_dtype(g: nn.Module, device: Any = None) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype the proxies evaluate ``g`` in.

    ``device=None`` means the device of g's parameters (CPU for a parameter-free module). An explicit
    device must agree with g's: the proxies never move a caller's model.
    """
    first = next((p for p in g.parameters() if p.is_floating_point()), None)
    if first is None:
        first = next((b for b in g.buffers() if b.is_floating_point()), None)
    own = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None else torch.float32
    if device is None:
        return own, dtype
    dev = check_device(device)
    if dev.type != own.type or (dev.index is not None and own.index is not None and dev.index != own.index):
        raise ValueError(f"g lives on {own} but device={str(device)!r} was requested; move g there first")
    return own, dtype


def latent_points(
    latent: Any,
    n: int | None,
    seed: SeedLike,
    *,
    device: torch.device,
    dtype: torch.dtype,
    name: str = "latent",
    min_samples: int = 1,
) -> torch.Tensor:
    """Points z of shape (n, d): drawn from a latent object, or ``latent`` itself when it is an array.

    Arrays and tensors are used as given (``n`` is then ignored); they are detached.
    """
    if is_latent(latent):
        n = check_int(n, "n", low=min_samples)
        z = latent.sample(n, seed)
        z = torch.as_tensor(z)
        if z.ndim != 2 or z.shape[1] != latent.dim:
            raise ValueError(f"{name}.sample returned shape {tuple(z.shape)}, expected ({n}, {latent.dim})")
    else:
        z = check_samples(latent, name, min_samples=min_samples)
        z = to_tensor(z)
    # Points beyond the model's dtype (1e300 in a float32 model) would become inf and poison every proxy.
    return check_cast(z.detach(), dtype, name).to(device=device)


def flat_map(g: nn.Module, z: torch.Tensor, name: str = "latent") -> Callable[[torch.Tensor], torch.Tensor]:
    """``F(Z) = g(Z).reshape(n, -1)``, after checking g accepts ``z`` and is differentiable in it.

    Raises
    ------
    ValueError
        If g rejects points of z's dimension, returns something that is not a floating tensor with
        one row per point, or has an output that does not depend differentiably on its input.
    """
    probe = z[: min(2, z.shape[0])].detach().clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            out = g(probe)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise ValueError(
            f"g could not be applied to {name} points of shape {tuple(z.shape)} (dimension {z.shape[1]}); "
            f"is the latent dimension the one g was built for? ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        raise ValueError(f"g must return a floating-point tensor, got {type(out).__name__}")
    if out.ndim < 1 or out.shape[0] != probe.shape[0]:
        raise ValueError(
            f"g must return one output row per latent point: input batch {probe.shape[0]}, "
            f"output shape {tuple(out.shape)}"
        )
    if not out.requires_grad:
        raise ValueError(
            "g is not differentiable with respect to its input (its output carries no gradient: "
            "a detach, an integer cast or a non-torch operation in forward?)"
        )

    def F(Z: torch.Tensor) -> torch.Tensor:
        return g(Z).reshape(Z.shape[0], -1)

    return F


@contextmanager
def eval_mode(g: nn.Module) -> Iterator[nn.Module]:
    """Put g (and every submodule) in eval mode, restoring each module's own previous mode after."""
    modes = [(m, m.training) for m in g.modules()]
    g.eval()
    try:
        yield g
    finally:
        for m, was_training in modes:
            m.training = was_training
