"""Operator norms of linear (or affine) layers and Lipschitz constants of scalar activations.

The spectral norm of a convolution depends on the input's spatial size (zero padding and strides
cut the operator differently at every size), so it is computed for the operator at the size the
layer actually sees: densely (exact) when the operator is small, by ARPACK Lanczos (scipy ``svds``)
otherwise. Lanczos converges to sigma_max from below; its tolerance is ``_ARPACK_TOL`` relative.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["affine_operator_norm", "scalar_lipschitz"]

_DENSE_MAX_ENTRIES = 4_000_000  # dense matrices up to 32 MB in float64: exact and still fast
_ARPACK_TOL = 1e-6  # svds squares it: eigsh runs at 1e-12 on sigma^2


def affine_operator_norm(
    apply: Callable[[torch.Tensor], torch.Tensor],
    in_shape: tuple[int, ...],
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> float:
    """sigma_max of the linear part x -> apply(x) - apply(0) of an affine map on inputs of ``in_shape``.

    Parameters
    ----------
    apply : callable
        Affine map on batches, ``(b, *in_shape) -> (b, *out_shape)``, processing rows independently.
    in_shape : tuple of int
        Shape of one input (no batch dimension).

    Returns
    -------
    float
        ||A||_2 = max_{||x||=1} ||A x||: exact (dense SVD) for operators with at most 4e6 entries,
        ARPACK Lanczos (relative tolerance 1e-12 on sigma_max^2) otherwise.
    """
    zero = torch.zeros((1, *in_shape), dtype=dtype, device=device)
    with torch.no_grad():
        offset = apply(zero)
    n_in = int(np.prod(in_shape))
    out_shape = tuple(offset.shape[1:])
    n_out = int(offset.numel())
    if n_in * n_out <= _DENSE_MAX_ENTRIES:
        rows = []
        with torch.no_grad():
            eye = torch.eye(n_in, dtype=dtype, device=device)
            for chunk in eye.split(max(1, 2048 * 64 // max(n_out, 1))):
                rows.append((apply(chunk.reshape(-1, *in_shape)) - offset).reshape(chunk.shape[0], -1))
        mat = torch.cat(rows).double()  # (n_in, n_out) = A^T
        small = mat @ mat.T if n_in <= n_out else mat.T @ mat
        return math.sqrt(max(float(torch.linalg.eigvalsh(small)[-1]), 0.0))

    from scipy.sparse.linalg import LinearOperator, svds

    def linear(x: torch.Tensor) -> torch.Tensor:
        return apply(x) - offset

    _, vjp_fn = torch.func.vjp(linear, zero)  # A is linear, so its adjoint is this vjp everywhere

    def matvec(v: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.ascontiguousarray(v).reshape(1, *in_shape), dtype=dtype, device=device)
        with torch.no_grad():
            return linear(x).reshape(-1).double().cpu().numpy()

    def rmatvec(u: np.ndarray) -> np.ndarray:
        y = torch.as_tensor(np.ascontiguousarray(u).reshape(1, *out_shape), dtype=dtype, device=device)
        return vjp_fn(y)[0].detach().reshape(-1).double().cpu().numpy()

    op = LinearOperator((n_out, n_in), matvec=matvec, rmatvec=rmatvec, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(min(n_in, n_out))  # fixed start: reproducible
    s = svds(op, k=1, tol=_ARPACK_TOL, v0=v0, return_singular_vectors=False, solver="arpack")
    return float(np.max(s))


def _sup_abs_derivative(fn: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """sup_x |f'(x)| for a smooth scalar activation, by a fine grid then a bounded 1-D refinement."""
    from scipy.optimize import minimize_scalar

    def deriv(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(fn(x).sum(), x)
        return grad.abs()

    grid = torch.linspace(-20.0, 20.0, 400_001, dtype=torch.float64)
    vals = deriv(grid)
    i = int(torch.argmax(vals))
    lo, hi = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, len(grid) - 1)])
    res = minimize_scalar(
        lambda t: -float(deriv(torch.tensor([t], dtype=torch.float64))[0]),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return max(float(vals[i]), -float(res.fun))


_SCALAR_CACHE: dict[tuple, float] = {}


def scalar_lipschitz(module: torch.nn.Module) -> float | None:
    """Lipschitz constant of a known elementwise activation module, or None if it is not one."""
    from torch import nn

    exact_one = (nn.ReLU, nn.ReLU6, nn.Tanh, nn.Softsign, nn.LogSigmoid, nn.Softplus, nn.CELU, nn.Tanhshrink)
    if isinstance(module, exact_one):
        return 1.0  # |f'| <= 1 everywhere (Softplus: sigmoid(beta x); CELU: exp(x/alpha) on x < 0)
    if isinstance(module, nn.Hardtanh):  # ReLU6 is a Hardtanh subclass but handled above
        return 1.0
    if isinstance(module, nn.Sigmoid):
        return 0.25
    if isinstance(module, nn.Hardsigmoid):
        return 1.0 / 6.0
    if isinstance(module, nn.Hardswish):
        return 1.5  # f'(x) = (2x + 3) / 6 on [-3, 3]
    if isinstance(module, nn.LeakyReLU):
        return max(1.0, abs(float(module.negative_slope)))
    if isinstance(module, nn.ELU):
        return max(1.0, abs(float(module.alpha)))
    if isinstance(module, nn.SELU):
        return 1.0507009873554805 * 1.6732632423543772  # scale * alpha bounds the slope on x < 0
    if isinstance(module, nn.PReLU):
        return max(1.0, float(module.weight.detach().abs().max()))
    if isinstance(module, nn.GELU):
        if module.approximate == "none":
            # d/dx [x Phi(x)] = Phi(x) + x phi(x) peaks at x = sqrt(2)
            r2 = math.sqrt(2.0)
            return 0.5 * (1 + math.erf(1.0)) + r2 * math.exp(-1.0) / math.sqrt(2 * math.pi)
        key = ("gelu", module.approximate)
    elif isinstance(module, nn.SiLU):
        key = ("silu",)
    elif isinstance(module, nn.Mish):
        key = ("mish",)
    else:
        return None
    if key not in _SCALAR_CACHE:
        _SCALAR_CACHE[key] = _sup_abs_derivative(module)
    return _SCALAR_CACHE[key]
