"""Shared plumbing for the sample distances: validation, backend choice, return type.

Every distance accepts numpy arrays and torch tensors alike. When any input
requires grad the computation stays in torch and a differentiable 0-d tensor
comes back (so the distance can be a training loss); otherwise a Python float.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._validation import check_pair, check_scalar, check_weights, is_tensor, to_tensor

Array = np.ndarray | torch.Tensor

__all__ = ["Pair", "prepare_pair", "finish", "check_p", "pairwise_sq_dists", "safe_norm_from_sq", "safe_root"]


def _requires_grad(*arrays: Any) -> bool:
    return any(is_tensor(a) and a.requires_grad for a in arrays)


class Pair:
    """Validated samples as torch tensors of one dtype/device, with normalized weights.

    Attributes
    ----------
    x, y : torch.Tensor, shapes (n, D) and (m, D)
    a, b : torch.Tensor or None, shapes (n,) and (m,), each summing to one (None = uniform)
    grad : bool
        Whether any input requires grad (the result must then be a differentiable tensor).
    """

    __slots__ = ("x", "y", "a", "b", "grad")

    def __init__(self, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor | None, b: torch.Tensor | None,
                 grad: bool) -> None:
        self.x, self.y, self.a, self.b, self.grad = x, y, a, b, grad

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Explicit weight vectors (uniform when none were given)."""
        n, m = self.x.shape[0], self.y.shape[0]
        opts = {"dtype": self.x.dtype, "device": self.x.device}
        a = self.a if self.a is not None else torch.full((n,), 1.0 / n, **opts)
        b = self.b if self.b is not None else torch.full((m,), 1.0 / m, **opts)
        return a, b


def _common_dtype(*arrays: Any) -> torch.dtype:
    # A float32 tensor sets the working precision; numpy inputs alone run in float64.
    for arr in arrays:
        if is_tensor(arr) and arr.is_floating_point():
            return arr.dtype
    return torch.float64


def _common_device(*arrays: Any) -> torch.device:
    for arr in arrays:
        if is_tensor(arr):
            return arr.device
    return torch.device("cpu")


def prepare_pair(
    x: Any,
    y: Any,
    *,
    x_weights: Any = None,
    y_weights: Any = None,
    min_samples: int = 2,
    names: tuple[str, str] = ("x", "y"),
) -> Pair:
    """Validate ``x`` (n, D), ``y`` (m, D) and optional weights; return a :class:`Pair` of tensors.

    Raises ``ValueError`` for mismatched feature dimensions, NaN/inf, ``n < min_samples``, or weights
    that are negative, all zero or of the wrong length; ``TypeError`` for non-numeric input.
    """
    x, y = check_pair(x, y, names, min_samples=min_samples)
    a = check_weights(x_weights, x.shape[0], "x_weights")
    b = check_weights(y_weights, y.shape[0], "y_weights")
    grad = _requires_grad(x, y, a, b)
    dtype, device = _common_dtype(x, y), _common_device(x, y)
    xt, yt = to_tensor(x, dtype=dtype, device=device), to_tensor(y, dtype=dtype, device=device)
    at = None if a is None else to_tensor(a, dtype=dtype, device=device)
    bt = None if b is None else to_tensor(b, dtype=dtype, device=device)
    return Pair(xt, yt, at, bt, grad)


def finish(value: torch.Tensor, grad: bool) -> float | torch.Tensor:
    """A differentiable 0-d tensor when ``grad``, else a Python float."""
    if grad:
        return value.reshape(())
    return float(value.detach())


def check_p(p: Any) -> float:
    """The ground-cost exponent ``p >= 1``."""
    return check_scalar(p, "p", low=1.0)


def pairwise_sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``||x_i - y_j||^2``, shape (..., n, m), clamped at 0.

    Uses the Gram expansion (one matmul), which is what makes large blocks affordable; the clamp
    removes the tiny negative values that cancellation produces.
    """
    xx = (x * x).sum(-1, keepdim=True)
    yy = (y * y).sum(-1, keepdim=True)
    d2 = xx + yy.transpose(-1, -2) - 2.0 * x @ y.transpose(-1, -2)
    return d2.clamp_min(0.0)


def safe_norm_from_sq(d2: torch.Tensor, p: float = 1.0) -> torch.Tensor:
    """``d2 ** (p/2)`` with a finite gradient at ``d2 = 0`` (needed for the diagonal of C(x, x))."""
    if p == 2.0:
        return d2
    tiny = torch.finfo(d2.dtype).tiny
    return torch.where(d2 > 0, d2.clamp_min(tiny) ** (p / 2.0), torch.zeros_like(d2))


def safe_root(value: torch.Tensor, p: float) -> torch.Tensor:
    """``value ** (1/p)`` for ``value >= 0`` with a zero (not infinite) gradient at 0."""
    if p == 1.0:
        return value
    tiny = torch.finfo(value.dtype).tiny
    return torch.where(value > 0, value.clamp_min(tiny) ** (1.0 / p), torch.zeros_like(value))
