"""Lipschitz constant of a generator, bracketed from both sides.

For g: R^d -> R^D (outputs flattened) and the Euclidean norms on both sides,

    lipschitz_lower(g, z)  <=  Lip(g)  <=  lipschitz_upper(g).

* **Upper bound.** For a chain g = f_k o ... o f_1, Lip(g) <= prod_i Lip(f_i). Affine layers
  contribute the operator norm of their linear part (exact sigma_max for ``nn.Linear``; for
  convolutions, upsampling and pooling the norm of the operator at the input size the layer actually
  sees), activations their scalar Lipschitz constant. A product is only valid for a chain, so the walk
  records every layer call with forward hooks and *replays* the chain: if applying the recorded layers
  one after another does not reproduce g's output (a residual connection, a branch, or a functional
  operation outside any submodule), the bound is refused. A module that knows its own bound exposes
  ``lipschitz_bound() -> float``; that method takes precedence over walking inside it.
* **Lower bound.** Lip(g) >= ||J_g(z)||_2 at every z, so the maximum local Jacobian spectral norm over
  sample points is a lower bound, and stays one for any number of iterations of the (block-Krylov)
  power method that estimates it, because every Rayleigh-Ritz value is at most the true sigma_max.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from latentdist._seeding import SeedLike, make_torch_generator, spawn_seeds
from latentdist._validation import check_int, check_option, check_scalar
from latentdist.complexity._common import (
    check_module,
    eval_mode,
    flat_map,
    latent_points,
    module_device_dtype,
)
from latentdist.complexity._operator_norm import affine_operator_norm, scalar_lipschitz

__all__ = ["lipschitz_upper", "lipschitz_lower", "LayerFactor", "local_spectral_norm"]

UNKNOWN_POLICIES = ("error", "ignore", "probe")

_LINEAR_OPERATOR_TYPES = (
    nn.modules.conv._ConvNd,  # Conv1d/2d/3d and ConvTranspose1d/2d/3d
    nn.Upsample,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.PixelShuffle,
    nn.PixelUnshuffle,
    nn.modules.padding._ConstantPadNd,
    nn.modules.padding._ReflectionPadNd,
    nn.modules.padding._ReplicationPadNd,
    nn.ZeroPad2d,
)
_NORM_ONE_TYPES = (nn.Identity, nn.Flatten, nn.Unflatten, nn.modules.dropout._DropoutNd, nn.AlphaDropout)


@dataclass(frozen=True)
class LayerFactor:
    """One factor of the product bound: the layer call, its type and its Lipschitz constant."""

    name: str
    type: str
    factor: float
    how: str


def _declared_bound(module: nn.Module) -> float | None:
    fn = getattr(module, "lipschitz_bound", None)
    if not callable(fn):
        return None
    value = fn()
    return check_scalar(float(value), f"{type(module).__name__}.lipschitz_bound()", low=0.0)


def _is_groupsort(module: nn.Module) -> bool:
    # GroupSort / MaxMin activations permute their input within groups: 1-Lipschitz in l2.
    name = type(module).__name__.lower()
    return "groupsort" in name or "maxmin" in name


def _is_atomic(module: nn.Module, use_declared: bool) -> bool:
    return (
        (use_declared and callable(getattr(module, "lipschitz_bound", None)))
        or isinstance(module, (nn.Linear, nn.modules.batchnorm._BatchNorm, *_LINEAR_OPERATOR_TYPES))
        or _is_groupsort(module)
        or next(module.children(), None) is None
    )


def _atomic_units(g: nn.Module, use_declared: bool) -> list[tuple[str, nn.Module]]:
    units: list[tuple[str, nn.Module]] = []

    def walk(prefix: str, m: nn.Module) -> None:
        if _is_atomic(m, use_declared):
            units.append((prefix or type(m).__name__, m))
            return
        for name, child in m.named_children():
            walk(f"{prefix}.{name}" if prefix else name, child)

    walk("", g)
    return units


@dataclass
class _Call:
    name: str
    module: nn.Module
    in_shape: tuple[int, ...]
    pure_reshape: bool


def _trace_chain(g: nn.Module, x: torch.Tensor, use_declared: bool) -> tuple[list[_Call], torch.Tensor]:
    """Record the sequence of atomic layer calls of g on x (in eval mode, no grad)."""
    calls: list[_Call] = []
    pending: dict[int, list[torch.Tensor]] = {}
    handles = []

    def pre_hook(module, args):
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        pending.setdefault(id(module), []).append(tensors[0].detach().clone() if len(tensors) == 1 else None)

    def make_hook(name):
        def hook(module, args, out):
            before = pending[id(module)].pop()
            if before is None or len(args) != 1 or not isinstance(out, torch.Tensor):
                raise ValueError(
                    f"layer {name} ({type(module).__name__}) takes or returns something other than one "
                    "tensor; a product of layer norms cannot bound g. Give g a lipschitz_bound() method."
                )
            pure = (
                next(module.parameters(), None) is None
                and out.numel() == before.numel()
                and out.untyped_storage().data_ptr() == args[0].untyped_storage().data_ptr()
                and torch.equal(out.reshape(-1), before.reshape(-1))
            )
            calls.append(_Call(name, module, tuple(before.shape), pure))

        return hook

    try:
        for name, m in _atomic_units(g, use_declared):
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(make_hook(name)))
        with torch.no_grad():
            out = g(x)
    finally:
        for h in handles:
            h.remove()
    return calls, out


def _replay_matches(calls: list[_Call], x: torch.Tensor, out: torch.Tensor) -> bool:
    y = x
    with torch.no_grad():
        for c in calls:
            y = c.module(y.reshape(c.in_shape))
    if y.numel() != out.numel():
        return False
    scale = float(out.abs().max()) if out.numel() else 0.0
    return bool(torch.allclose(y.reshape(out.shape), out, rtol=1e-5, atol=1e-6 * max(scale, 1e-30)))


def _probe_affine(
    module: nn.Module, in_shape: tuple[int, ...], gen: torch.Generator, like: torch.Tensor
) -> bool:
    """Randomised check that ``module`` is affine near inputs of the recorded scale."""
    shape = (2, *in_shape[1:])
    scale = float(like.abs().max()) + 1e-12
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(like) * scale
    y = torch.randn(shape, generator=gen, dtype=torch.float64).to(like) * scale
    a, b = 0.7, -1.3
    with torch.no_grad():
        zero = module(torch.zeros_like(x))
        lhs = module(a * x + b * y) - zero
        rhs = a * (module(x) - zero) + b * (module(y) - zero)
    tol = 1e-4 * (float(rhs.abs().max()) + float(lhs.abs().max()) + 1e-12)
    return bool((lhs - rhs).abs().max() <= tol)


def _layer_factor(
    call: _Call, unknown: str, dtype: torch.dtype, device: torch.device, gen: torch.Generator, x_like
) -> LayerFactor:
    m, name, kind = call.module, call.name, type(call.module).__name__
    one_shape = call.in_shape[1:]
    declared = _declared_bound(m) if callable(getattr(m, "lipschitz_bound", None)) else None
    if declared is not None:
        return LayerFactor(name, kind, declared, "declared lipschitz_bound()")
    if isinstance(m, nn.Linear):
        # ``m.weight`` is the effective weight under spectral-norm parametrizations and hooks alike.
        sigma = torch.linalg.matrix_norm(m.weight.detach().double(), ord=2)
        return LayerFactor(name, kind, float(sigma), "exact sigma_max(W)")
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        if m.running_var is None:
            raise ValueError(
                f"layer {name} ({kind}) normalises with batch statistics even in eval mode "
                "(track_running_stats=False); its Lipschitz constant depends on the batch"
            )
        gain = 1.0 / torch.sqrt(m.running_var.detach().double() + m.eps)
        if m.weight is not None:
            gain = gain * m.weight.detach().double().abs()
        return LayerFactor(name, kind, float(gain.max()), "max |gamma| / sqrt(var + eps)")
    if isinstance(m, _LINEAR_OPERATOR_TYPES):
        norm = affine_operator_norm(m, one_shape, dtype=dtype, device=device)
        return LayerFactor(name, kind, norm, f"operator norm at input shape {one_shape}")
    if isinstance(m, _NORM_ONE_TYPES) or call.pure_reshape:
        return LayerFactor(name, kind, 1.0, "reshape / identity / dropout (eval)")
    if _is_groupsort(m):
        return LayerFactor(name, kind, 1.0, "GroupSort/MaxMin permutation")
    scalar = scalar_lipschitz(m)
    if scalar is not None:
        return LayerFactor(name, kind, scalar, "sup |activation'|")
    if unknown == "probe" and _probe_affine(m, call.in_shape, gen, x_like):
        norm = affine_operator_norm(m, one_shape, dtype=dtype, device=device)
        return LayerFactor(name, kind, norm, f"probed affine; operator norm at input shape {one_shape}")
    if unknown == "ignore":
        warnings.warn(
            f"lipschitz_upper: layer {name} ({kind}) is unknown and was counted with factor 1; "
            "the result is not a guaranteed bound",
            stacklevel=3,
        )
        return LayerFactor(name, kind, 1.0, "unknown, ignored")
    raise ValueError(
        f"lipschitz_upper does not know the Lipschitz constant of layer {name} ({kind}); give it a "
        "lipschitz_bound() method, or pass unknown='probe' (accept it if it is affine on random probes) "
        "or unknown='ignore' (count it as 1)"
    )


def _infer_in_shape(g: nn.Module, hint: str = "pass in_shape=(d,)") -> tuple[int, ...]:
    for attr in ("in_dim", "in_features"):
        value = getattr(g, attr, None)
        if isinstance(value, int):
            return (value,)
    for m in g.modules():
        value = getattr(m, "in_features", None)
        if isinstance(value, int):
            return (value,)
        weight = getattr(m, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.ndim == 2:  # a custom dense layer (out, in)
            return (int(weight.shape[1]),)
    raise ValueError(f"the input size could not be inferred from g (no Linear layer found); {hint}")


def lipschitz_upper(
    g: nn.Module,
    *,
    in_shape: tuple[int, ...] | int | None = None,
    unknown: str = "error",
    use_declared: bool = True,
    details: bool = False,
    device: Any = None,
) -> float | tuple[float, list[LayerFactor]]:
    """Upper bound on the Lipschitz constant of g (Euclidean norms; outputs flattened).

    .. math:: \\mathrm{Lip}(g) \\le \\prod_i \\mathrm{Lip}(f_i), \\qquad g = f_k \\circ \\cdots \\circ f_1 .

    Factors: ``nn.Linear`` -> sigma_max(W) (exact, via ``torch.linalg.matrix_norm(W, 2)``, reading
    the effective weight of spectral-norm parametrizations); convolutions, transposed convolutions,
    upsampling, average pooling and padding -> the operator norm of the layer's linear part at the input
    shape it sees (dense SVD when small, ARPACK Lanczos otherwise); BatchNorm (eval) ->
    max |gamma / sqrt(var + eps)|; ReLU, LeakyReLU(a) -> max(1, |a|), Tanh 1, Sigmoid 1/4,
    ELU(a) -> max(1, a), GELU 1.1289, SiLU 1.0998, GroupSort/MaxMin 1; Dropout (eval), Flatten,
    Unflatten and pure reshapes 1. g is evaluated in eval mode (each module's mode is restored).

    Parameters
    ----------
    g : torch.nn.Module
        The generator. It must be a chain of its submodules (checked by replay); a module with a
        ``lipschitz_bound()`` method is not entered and its method's value is used.
    in_shape : tuple of int or int, optional
        Shape of one input (e.g. ``(d,)``); inferred from the first ``Linear`` layer when omitted.
    unknown : {'error', 'ignore', 'probe'}
        What to do with a layer of unknown type: raise; count it as 1 with a warning (then the result
        is no longer a guaranteed bound); or accept it when it is affine on random probes, using the
        operator norm of its linear part.
    use_declared : bool
        Use ``lipschitz_bound()`` methods where modules provide them (default). ``False`` walks inside.
    details : bool
        Also return the list of :class:`LayerFactor`.
    device : str or torch.device, optional
        Must agree with g's device (default: g's device).

    Returns
    -------
    float, or (float, list of LayerFactor) when ``details``.

    Raises
    ------
    ValueError
        For residual / branching modules without ``lipschitz_bound()``, unknown layers under
        ``unknown='error'``, or BatchNorm without running statistics.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> g = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> bound = lipschitz_upper(g)
    >>> s = [torch.linalg.matrix_norm(m.weight, 2).item() for m in (g[0], g[2])]
    >>> abs(bound - s[0] * s[1]) < 1e-5 * bound
    True
    """
    g = check_module(g)
    check_option(unknown, "unknown", UNKNOWN_POLICIES)
    dev, dtype = module_device_dtype(g, device)
    if use_declared:
        declared = _declared_bound(g)
        if declared is not None:
            factor = LayerFactor(type(g).__name__, type(g).__name__, declared, "declared lipschitz_bound()")
            return (declared, [factor]) if details else declared
    if in_shape is None:
        in_shape = _infer_in_shape(g)
    if isinstance(in_shape, int):
        in_shape = (in_shape,)
    in_shape = tuple(check_int(s, "in_shape", low=1) for s in in_shape)
    gen = make_torch_generator(0)  # fixed probe inputs: the bound is a deterministic function of g
    x = torch.randn((4, *in_shape), generator=gen, dtype=torch.float64).to(device=dev, dtype=dtype)
    with eval_mode(g):
        try:
            calls, out = _trace_chain(g, x, use_declared)
        except RuntimeError as exc:
            raise ValueError(f"g could not be applied to inputs of shape {in_shape}: {exc}") from exc
        if not calls or not _replay_matches(calls, x, out):
            raise ValueError(
                "g is not a plain chain of its submodules (a residual connection, a branch, or a "
                "functional operation such as torch.tanh outside any submodule), so a product of "
                "layer norms does not bound it; give g a lipschitz_bound() method or wrap such "
                "operations in modules"
            )
        factors = [_layer_factor(c, unknown, dtype, dev, gen, x) for c in calls]
    bound = math.prod(f.factor for f in factors)
    return (bound, factors) if details else bound


def local_spectral_norm(
    F, Z: torch.Tensor, *, n_iter: int, gen: torch.Generator, v0: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top singular value and right singular vector of J_F(z_i) for every row z_i of Z.

    Block-Krylov (Lanczos with full re-orthogonalisation), batched over points: the Krylov space
    span{v, (J^T J) v, ..., (J^T J)^{k-1} v} is built with one ``jvp`` and one ``vjp`` per step and
    sigma_max is read off by Rayleigh-Ritz on it. Every Ritz value is <= the true sigma_max, and after
    min(n_iter, d) steps the space is all of R^d, so the value is exact up to rounding. F must process
    rows independently (true in eval mode), which makes one batched jvp the vmapped per-point jvp.

    Returns
    -------
    sigma : torch.Tensor, shape (n,), float64
    v : torch.Tensor, shape (n, d), float64, unit rows
    """
    n, d = Z.shape
    k = min(n_iter, d)
    dtype = Z.dtype
    v = torch.randn(n, d, generator=gen, dtype=torch.float64, device="cpu").to(Z.device) if v0 is None else v0
    v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-300)
    _, vjp_fn = torch.func.vjp(F, Z)
    basis, images = [v], []
    for step in range(k):
        _, w = torch.func.jvp(F, (Z,), (basis[-1].to(dtype),))
        s = vjp_fn(w.detach())[0].detach().double()  # J^T J b_step
        images.append(s)
        if step == k - 1:
            break
        B = torch.stack(basis, dim=-1)
        r = s
        for _ in range(2):  # twice is enough for orthogonality to working precision
            r = r - (B @ (B.transpose(1, 2) @ r.unsqueeze(-1))).squeeze(-1)
        fresh = torch.randn(n, d, generator=gen, dtype=torch.float64).to(Z.device)
        for _ in range(2):
            fresh = fresh - (B @ (B.transpose(1, 2) @ fresh.unsqueeze(-1))).squeeze(-1)
        # An exhausted Krylov space (e.g. a zero Jacobian) continues with a fresh orthogonal direction.
        stuck = r.norm(dim=1, keepdim=True) <= 1e-6 * s.norm(dim=1, keepdim=True).clamp_min(1e-300)
        r = torch.where(stuck, fresh, r)
        basis.append(r / r.norm(dim=1, keepdim=True).clamp_min(1e-300))
    B = torch.stack(basis, dim=-1)  # (n, d, k)
    S = torch.stack(images, dim=-1)  # (n, d, k)
    T = B.transpose(1, 2) @ S
    T = 0.5 * (T + T.transpose(1, 2))
    evals, evecs = torch.linalg.eigh(T)
    sigma = evals[:, -1].clamp_min(0.0).sqrt()
    v_top = (B @ evecs[:, :, -1:]).squeeze(-1)
    return sigma, v_top / v_top.norm(dim=1, keepdim=True).clamp_min(1e-300)


def lipschitz_lower(
    g: nn.Module,
    z: Any,
    *,
    n_iter: int = 20,
    refine_steps: int = 0,
    step_size: float | None = None,
    n: int = 512,
    seed: SeedLike = 0,
    return_argmax: bool = False,
    device: Any = None,
) -> float | tuple[float, torch.Tensor]:
    """Lower bound on Lip(g): the largest local Jacobian spectral norm over sample points.

    .. math:: \\mathrm{Lip}(g) \\ge \\max_i \\|J_g(z_i)\\|_2 .

    Each ||J_g(z_i)||_2 is estimated by batched block-Krylov power iteration (``torch.func.jvp`` and
    ``vjp``, see :func:`local_spectral_norm`): never above the truth, exact once ``n_iter >= d``.
    With ``refine_steps > 0`` every point then climbs ||J_g(z) v|| by normalised gradient ascent in z
    (v the current top singular vector); the best value seen is kept, so refinement can only raise the
    bound. For piecewise-linear networks the Jacobian is locally constant and refinement stops at once.

    Parameters
    ----------
    g : torch.nn.Module
        Generator R^d -> R^D (any output shape; flattened). Evaluated in eval mode.
    z : latent object or array-like, shape (n, d)
        Points, or a latent with ``.dim`` and ``.sample`` from which ``n`` points are drawn.
    n_iter : int
        Krylov steps per point (one jvp + one vjp each).
    refine_steps : int
        Gradient-ascent steps over z.
    step_size : float, optional
        Ascent step length in latent units; default 0.1 * RMS norm of the points / sqrt(d).
    n : int
        Number of points drawn when ``z`` is a latent object.
    seed : int or Generator
        Seeds the latent draw and the random start vectors.
    return_argmax : bool
        Also return the point (shape (d,)) where the maximum was attained.
    device : str or torch.device, optional
        Must agree with g's device.

    Returns
    -------
    float, or (float, torch.Tensor) when ``return_argmax``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> g = nn.Linear(3, 2)
    >>> low = lipschitz_lower(g, torch.randn(8, 3, generator=torch.Generator().manual_seed(0)))
    >>> abs(low - torch.linalg.matrix_norm(g.weight, 2).item()) < 1e-4 * low
    True
    """
    g = check_module(g)
    n_iter = check_int(n_iter, "n_iter", low=1)
    refine_steps = check_int(refine_steps, "refine_steps", low=0)
    dev, dtype = module_device_dtype(g, device)
    seeds = spawn_seeds(seed, 2)
    Z = latent_points(z, n, seeds[0], device=dev, dtype=dtype, name="z")
    gen = make_torch_generator(seeds[1])
    with eval_mode(g):
        F = flat_map(g, Z, name="z")
        sigma, v = local_spectral_norm(F, Z, n_iter=n_iter, gen=gen)
        best, best_z = sigma.clone(), Z.detach().clone()
        if refine_steps:
            if step_size is None:
                rms = float(Z.double().pow(2).sum(1).mean().sqrt())
                step_size = 0.1 * max(rms, 1e-12) / math.sqrt(Z.shape[1])
            step_size = check_scalar(step_size, "step_size", low=0.0, low_inclusive=False)

            def objective(Zc: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
                return torch.func.jvp(F, (Zc,), (V,))[1].pow(2).sum()

            Zc = Z.detach().clone()
            for _ in range(refine_steps):
                grad = torch.func.grad(objective)(Zc, v.to(dtype)).detach()
                gnorm = grad.norm(dim=1, keepdim=True)
                if float(gnorm.max()) == 0.0:
                    break
                Zc = Zc + step_size * grad / gnorm.clamp_min(1e-30)
                sigma, v = local_spectral_norm(F, Zc, n_iter=n_iter, gen=gen, v0=v)
                improved = sigma > best
                best = torch.where(improved, sigma, best)
                best_z = torch.where(improved.unsqueeze(1), Zc.detach(), best_z)
    i = int(torch.argmax(best))
    value = float(best[i])
    return (value, best_z[i]) if return_argmax else value
