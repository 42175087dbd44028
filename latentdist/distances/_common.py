"""Shared plumbing for the sample distances: validation, backend choice, return type.

Every distance accepts numpy arrays and torch tensors alike. When any input
requires grad the computation stays in torch and a differentiable 0-d tensor
comes back (so the distance can be a training loss); otherwise a Python float.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._validation import check_device, check_pair, check_scalar, check_weights, is_tensor, to_tensor

Array = np.ndarray | torch.Tensor

__all__ = [
    "Pair",
    "prepare_pair",
    "finish",
    "check_p",
    "pairwise_sq_dists",
    "safe_norm_from_sq",
    "safe_root",
    "scale_exponent",
    "times_pow2",
    "normalize_scale",
    "normalize_gaussians",
    "scaled_std",
    "unscale",
]


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
    exponent : int
        The samples were divided by ``2 ** exponent`` (and centred) by :func:`normalize_scale`
        (0 when ``prepare_pair(..., rescale=False)``); :func:`unscale` undoes it on the result.
    """

    __slots__ = ("x", "y", "a", "b", "grad", "exponent")

    def __init__(self, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor | None, b: torch.Tensor | None,
                 grad: bool, exponent: int = 0) -> None:
        self.x, self.y, self.a, self.b, self.grad, self.exponent = x, y, a, b, grad, exponent

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Explicit weight vectors (uniform when none were given)."""
        n, m = self.x.shape[0], self.y.shape[0]
        opts = {"dtype": self.x.dtype, "device": self.x.device}
        a = self.a if self.a is not None else torch.full((n,), 1.0 / n, **opts)
        b = self.b if self.b is not None else torch.full((m,), 1.0 / m, **opts)
        return a, b

    def result(self, value: torch.Tensor, degree: float = 1.0, what: str = "distance") -> Any:
        """:func:`finish` after :func:`unscale`: ``value`` (computed at unit scale, homogeneous of
        ``degree`` in the data scale) back in the data's units, as a float or differentiable tensor."""
        return finish(unscale(value, self.exponent, degree, what), self.grad)


def _common_dtype(*arrays: Any) -> torch.dtype:
    # A float32 tensor sets the working precision; numpy inputs alone run in float64. Half precision
    # is upcast to float32: POT and the kernels have no float16 kernels on CPU, and its 5e4 range
    # would overflow squared distances anyway.
    for arr in arrays:
        if is_tensor(arr) and arr.is_floating_point():
            return torch.float32 if arr.dtype in (torch.float16, torch.bfloat16) else arr.dtype
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
    rescale: bool = False,
    device: Any = None,
) -> Pair:
    """Validate ``x`` (n, D), ``y`` (m, D) and optional weights; return a :class:`Pair` of tensors.

    With ``rescale`` the samples are centred and divided by a power of two (:func:`normalize_scale`),
    so the distance is computed at unit scale; the caller passes the result through :func:`unscale`.
    ``device`` (resolved by ``check_device``) moves the samples there; ``None`` keeps the device of
    the first tensor input (CPU for numpy input). Gradients flow back through the move.

    Raises ``ValueError`` for mismatched feature dimensions, NaN/inf, ``n < min_samples``, or weights
    that are negative, all zero or of the wrong length; ``TypeError`` for non-numeric input.
    """
    x, y = check_pair(x, y, names, min_samples=min_samples)
    a = check_weights(x_weights, x.shape[0], "x_weights")
    b = check_weights(y_weights, y.shape[0], "y_weights")
    grad = _requires_grad(x, y, a, b)
    dtype = _common_dtype(x, y)
    device = _common_device(x, y) if device is None else check_device(device)
    xt, yt = to_tensor(x, dtype=dtype, device=device), to_tensor(y, dtype=dtype, device=device)
    at = None if a is None else to_tensor(a, dtype=dtype, device=device)
    bt = None if b is None else to_tensor(b, dtype=dtype, device=device)
    exponent = 0
    if rescale:
        xt, yt, exponent = normalize_scale(xt, yt)
    return Pair(xt, yt, at, bt, grad, exponent)


def finish(value: torch.Tensor, grad: bool) -> float | torch.Tensor:
    """A differentiable 0-d tensor when ``grad``, else a Python float."""
    if grad:
        return value.reshape(())
    return float(value.detach())


def check_p(p: Any) -> float:
    """The ground-cost exponent ``1 <= p <= 100``: at unit scale ||x - y||^p under- or overflows for
    larger p (use a large p only as an approximation of W_inf, which 100 already is to 1%)."""
    return check_scalar(p, "p", low=1.0, high=100.0)


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


# --- Scale handling -------------------------------------------------------------------------------
# Squared distances overflow float64 beyond ~1e154 and underflow below ~1e-154 (float32: 1e19 and
# 1e-19), which used to turn distinct samples into a distance of 0.0 or NaN. The distances are
# translation invariant and homogeneous in the data scale (W_p(cX, cY) = |c| W_p(X, Y); a kernel
# whose bandwidth scales with the data is scale-free), so they are computed on centred data divided
# by a power of two and the result is multiplied back. Powers of two make both steps exact.


def scale_exponent(*arrays: Any) -> int:
    """The ``e`` with ``max |entry| / 2**e`` in [0.5, 1) over all ``arrays`` (0 when they are all 0)."""
    peak = 0.0
    for arr in arrays:
        if np.size(arr) == 0:
            continue
        m = float(arr.detach().abs().max()) if is_tensor(arr) else float(np.max(np.abs(arr)))
        peak = max(peak, m)
    return math.frexp(peak)[1] if peak > 0 else 0


def times_pow2(x: Any, e: int) -> Any:
    """``x * 2**e`` exactly (barring under/overflow of the result), for tensors, arrays and floats.

    The factor is applied in steps of at most 2**60 so that no factor is out of range of the dtype
    (float32 data at 1e-40 needs 2**132, which float32 cannot hold); the intermediate results move
    monotonically towards the final one, so they overflow only when it does.
    """
    step = 60 if e > 0 else -60
    while e != 0:
        k = step if abs(e) > 60 else e
        x = x * (2.0 ** k)
        e -= k
    return x


def normalize_scale(x: Any, y: Any) -> tuple[Any, Any, int]:
    """Centre the pooled sample and divide by a power of two so the largest entry is in [0.5, 1).

    Returns ``(x', y', e)`` with ``x' = (x - c) / 2**e`` (same for ``y``), ``c`` the pooled mean (no
    gradient flows through it or through ``e``). Tensors or numpy arrays alike, shapes (n, D) or
    (B, n, D) (each of the B problems centred on its own mean, one ``e`` for all).
    """
    e1 = scale_exponent(x, y)
    x, y = times_pow2(x, -e1), times_pow2(y, -e1)
    # The mean is taken after the first scaling: summing n entries of 1e300 would overflow.
    # Centred along the sample axis (-2), so batched (B, n, D) problems are centred one by one.
    if is_tensor(x):
        centre = torch.cat([x.detach(), y.detach()], dim=-2).mean(-2, keepdim=True)
    else:
        centre = np.concatenate([x, y], axis=-2).mean(-2, keepdims=True)
    x, y = x - centre, y - centre
    e2 = scale_exponent(x, y)
    return times_pow2(x, -e2), times_pow2(y, -e2), e1 + e2


def scaled_std(values: np.ndarray, ddof: int = 1) -> float:
    """Standard deviation computed at unit scale: squaring values near 1e300 would overflow to inf."""
    e = scale_exponent(values)
    return float(times_pow2(np.std(times_pow2(np.asarray(values, dtype=np.float64), -e), ddof=ddof), e))


def normalize_gaussians(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray):
    """The Gaussian counterpart of :func:`normalize_scale`: means centred and divided by ``2**e``,
    covariances divided by ``2**(2e)``; returns ``(m1, s1, m2, s2, e)``. W_2 is then homogeneous of
    degree 1 in ``2**e``."""
    # Halve before adding: (m1 + m2) overflows when both are near 1e308.
    centre = m1 / 2 + m2 / 2
    m1, m2 = m1 - centre, m2 - centre
    e = max(scale_exponent(m1, m2), (scale_exponent(s1, s2) + 1) // 2)
    return (np.ldexp(m1, -e), np.ldexp(s1, -2 * e), np.ldexp(m2, -e), np.ldexp(s2, -2 * e), e)


def unscale(value: Any, exponent: int, degree: float, what: str = "distance") -> Any:
    """Undo :func:`normalize_scale` on a result homogeneous of ``degree`` in the data scale.

    ``value * 2**(exponent * degree)``, for floats, arrays or tensors. A non-zero value that the
    factor pushes beyond the dtype's range (inf) or to 0 raises ``ValueError`` naming the scale:
    the distance exists but is not representable, and returning inf or 0.0 would mislead.
    """
    if degree == 0 or exponent == 0:
        return value
    shift = exponent * degree
    if float(shift).is_integer():
        out = times_pow2(value, int(shift))
    else:  # a fractional degree (p-th roots): the factor itself may be out of range, go through logs
        out = value * math.exp(shift * math.log(2.0)) if abs(shift) < 1000 else value * float("inf")
    raw = value.detach() if is_tensor(value) else np.asarray(value)
    res = out.detach() if is_tensor(out) else np.asarray(out)
    lost = (raw != 0) & ((res == 0) | ~(res == res) | (abs(res) == float("inf")))
    if bool(lost.any()):
        raise ValueError(
            f"the {what} at this data scale (about 2**{exponent} = 1e{exponent * math.log10(2):.0f}) is "
            f"outside the floating-point range of its dtype; rescale the data (e.g. divide by its "
            f"standard deviation) before computing it"
        )
    return out
