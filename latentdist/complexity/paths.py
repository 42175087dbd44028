"""How much a generator stretches and folds latent paths: path length and linear regions.

* ``path_length``: the mean finite-difference stretch ||g(z + δ) - g(z)|| / ||δ|| for random unit
  directions u and δ = eps u; as eps -> 0 it is E_z E_u ||J_g(z) u||.
* ``linear_regions``: a piecewise-linear network (ReLU, LeakyReLU, Hardtanh, MaxMin) is affine on
  each region of constant activation pattern. Along a line z(t) = c + t u the number of pieces
  crossed measures how often g folds space there. Patterns are recorded with forward hooks on a fine
  grid of t; each grid cell whose end patterns differ is bisected (a midpoint whose pattern differs
  from both ends splits the cell), so that every breakpoint is found whenever breakpoints are
  further apart than the grid step. The pieces are then checked to be affine, which catches
  nonlinearities that the hooks cannot see (e.g. ``torch.tanh`` called in ``forward``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from latentdist._progress import progress_bar
from latentdist._seeding import SeedLike, make_torch_generator, spawn_seeds
from latentdist._validation import check_int, check_memory, check_scalar
from latentdist.complexity._common import (
    check_module,
    eval_mode,
    flat_map,
    is_latent,
    latent_points,
    module_device_dtype,
)

__all__ = ["path_length", "linear_regions", "LinearRegions"]


def path_length(
    g: nn.Module,
    latent: Any,
    *,
    n: int = 256,
    eps: float = 1e-2,
    seed: SeedLike = 0,
    device: Any = None,
) -> float:
    """Mean stretch of short latent steps.

    .. math:: \\mathrm{PL} = \\frac1n \\sum_i \\frac{\\|g(z_i + \\varepsilon u_i) - g(z_i)\\|}{\\varepsilon},
              \\qquad u_i \\sim \\mathrm{Unif}(S^{d-1}),

    a finite-difference estimate of E ||J_g(z) u|| (outputs flattened; g in eval mode).

    Parameters
    ----------
    g : torch.nn.Module
    latent : latent object or array-like, shape (n, d)
        Base points, or a latent from which ``n`` are drawn.
    n : int
        Points drawn from a latent object.
    eps : float > 0
        Step length in latent units.
    seed : int or Generator
        Seeds the draw of points and of directions.
    device : str or torch.device, optional

    Returns
    -------
    float

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> g = nn.Linear(1, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = g.weight.fill_(3.0)
    >>> round(path_length(g, torch.zeros(4, 1)), 4)
    3.0
    """
    g = check_module(g)
    eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
    dev, dtype = module_device_dtype(g, device)
    seeds = spawn_seeds(seed, 2)
    Z = latent_points(latent, n, seeds[0], device=dev, dtype=dtype)
    u = torch.randn(Z.shape, generator=make_torch_generator(seeds[1]), dtype=torch.float64)
    u = (u / u.norm(dim=1, keepdim=True)).to(device=dev, dtype=dtype)
    with eval_mode(g):
        F = flat_map(g, Z)
        with torch.no_grad():
            delta = (Z + eps * u) - Z  # the step actually taken after rounding z + eps u
            step = delta.double().norm(dim=1)
            if bool((step == 0).any()):
                raise ValueError(f"eps={eps:g} is below the rounding resolution of the latent points "
                                 f"(|z| up to {float(Z.abs().max()):.1e} in {Z.dtype}); raise eps")
            out = F(Z)
            change = (F(Z + delta) - out).double().norm(dim=1)
            # Output changes within a few ulps of the outputs themselves are rounding, not stretch
            # (latents near 1e30 in float32, say); a silent 0.0 would read as a constant generator.
            ulp = torch.finfo(out.dtype).eps * out.double().abs().amax(dim=1)
            if bool(((change <= 100 * ulp) & (ulp > 0)).double().mean() > 0.5):
                raise ValueError(f"eps={eps:g} is too small for the scale of the generator's outputs (up "
                                 f"to {float(out.abs().max()):.1e} in {out.dtype}): the steps are lost to "
                                 "rounding; raise eps or normalize the latent")
            stretch = change / step
    if not bool(torch.isfinite(stretch).all()):
        raise ValueError("the generator's outputs are not finite at these latent points (they overflow "
                         f"{Z.dtype} at this scale); check the latent's scale and the generator's weights")
    return float(stretch.mean())


@dataclass(frozen=True)
class LinearRegions:
    """Linear pieces crossed along random lines.

    Attributes
    ----------
    mean : float
        Mean number of pieces per line.
    per_line : numpy.ndarray of int, shape (n_lines,)
    breakpoints : list of numpy.ndarray
        Line parameters t of the breakpoints found on each line (located to within the bisection
        width ``step / 2**n_bisect``).
    length, step : float
        Line length and grid step in latent units.
    min_gap : float
        Smallest distance between consecutive breakpoints found; the counts are exact when the true
        breakpoints are separated by more than ``step``, which ``min_gap > step`` suggests but cannot
        prove.
    resolved : bool
        ``min_gap > step``. When False the grid was too coarse somewhere and ``per_line`` may be a
        lower bound.
    """

    mean: float
    per_line: np.ndarray
    breakpoints: list
    length: float
    step: float
    min_gap: float
    resolved: bool


_PL_THRESHOLDED = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.ReLU6)
_SMOOTH = (
    nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.SiLU, nn.Softplus, nn.SELU, nn.CELU, nn.Mish,
    nn.LogSigmoid, nn.Softsign, nn.Tanhshrink, nn.Hardswish,
)  # fmt: skip


def _is_maxmin(module: nn.Module) -> bool:
    name = type(module).__name__.lower()
    return "groupsort" in name or "maxmin" in name


class _PatternRecorder:
    """Forward hooks that record, per input row, which linear piece every PL activation is on."""

    def __init__(self, g: nn.Module):
        smooth = sorted({type(m).__name__ for m in g.modules() if isinstance(m, _SMOOTH)})
        if smooth:
            raise ValueError(
                f"linear_regions needs a piecewise-linear network; g contains smooth activations {smooth}"
            )
        self.modules = [m for m in g.modules() if isinstance(m, _PL_THRESHOLDED) or _is_maxmin(m)]
        self.parts: list[torch.Tensor] = []
        self._inputs: list[torch.Tensor] = []
        self.handles: list = []

    def __enter__(self) -> _PatternRecorder:
        for m in self.modules:
            self.handles.append(m.register_forward_pre_hook(self._pre))
            self.handles.append(m.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()

    def _pre(self, module, args):
        self._inputs.append(args[0].detach().clone())  # before any in-place activation overwrites it

    def _post(self, module, args, out):
        x = self._inputs.pop()
        b = x.shape[0]
        if isinstance(module, nn.Hardtanh):  # ReLU6 too: two thresholds
            pat = torch.cat([(x > module.min_val).reshape(b, -1), (x < module.max_val).reshape(b, -1)], 1)
        elif isinstance(module, _PL_THRESHOLDED):
            pat = (x > 0).reshape(b, -1)
        else:  # MaxMin pairs: which element of each pair came out on top (exact for groups of two)
            pat = (out.detach() == x).reshape(b, -1)
        self.parts.append(pat)

    def patterns(self, F, Z: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """Packed activation patterns (n, bytes) and outputs (n, D) of the points Z."""
        self.parts = []
        with torch.no_grad():
            Y = F(Z)
        if not self.parts:
            return np.zeros((Z.shape[0], 1), dtype=np.uint8), Y
        bits = torch.cat(self.parts, 1).cpu().numpy()
        return np.packbits(bits, axis=1), Y


def _rows_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a != b).any(axis=1)


def linear_regions(
    g: nn.Module,
    *,
    latent: Any = None,
    in_dim: int | None = None,
    n_lines: int = 16,
    length: float | None = None,
    resolution: int = 1024,
    n_bisect: int = 20,
    seed: SeedLike = 0,
    check_affine: bool = True,
    device: Any = None,
    progress: bool = True,
) -> LinearRegions:
    """Number of linear pieces of a piecewise-linear g crossed along random lines.

    Line i is z(t) = c_i + t u_i, t in [-length/2, length/2], with u_i uniform on the unit sphere and
    c_i a latent sample (or the rows of ``latent`` when it is an array, or the origin when it is None).
    Activation patterns of every ReLU / LeakyReLU / PReLU / Hardtanh / ReLU6 / MaxMin module are
    recorded at ``resolution + 1`` grid points; cells whose end patterns differ are bisected
    ``n_bisect`` times (never below 64 float ulps of |z|), splitting whenever the midpoint differs from
    both ends. Pieces = 1 + number of
    breakpoints: exact when breakpoints are further apart than the grid step, a lower bound otherwise.

    Parameters
    ----------
    g : torch.nn.Module
        Piecewise-linear network (smooth activation modules raise ``ValueError``).
    latent : latent object or array-like (n_lines, d), optional
        Where the lines are centred.
    in_dim : int, optional
        Latent dimension when ``latent`` is None (default: inferred from the first ``Linear``).
    n_lines : int
        Number of lines (ignored when ``latent`` is an array: one line per row).
    length : float, optional
        Line length; default 2 sqrt(d), the diameter of the typical set of a latent normalised to
        E||z||^2 = d (docs/theory.md P4).
    resolution : int
        Grid cells per line.
    n_bisect : int
        Bisection steps per changing cell.
    seed : int or Generator
    check_affine : bool
        Verify that g is affine on each constant-pattern run (raises ``ValueError`` if not).
    device : str or torch.device, optional
    progress : bool
        Show a progress bar over lines.

    Returns
    -------
    LinearRegions

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> g = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> with torch.no_grad():
    ...     _ = g[0].weight.fill_(1.0); _ = g[0].bias.copy_(torch.tensor([0.5, 0.0, -0.5]))
    >>> linear_regions(g, n_lines=2, length=4.0, progress=False).per_line.tolist()
    [4, 4]
    """
    g = check_module(g)
    n_lines = check_int(n_lines, "n_lines", low=1)
    resolution = check_int(resolution, "resolution", low=2)
    check_memory(64.0 * n_lines * (resolution + 1), f"resolution={resolution} with n_lines={n_lines}")
    n_bisect = check_int(n_bisect, "n_bisect", low=0)
    dev, dtype = module_device_dtype(g, device)
    seeds = spawn_seeds(seed, 2)
    if latent is None:
        if in_dim is None:
            from latentdist.complexity.lipschitz import _infer_in_shape

            (in_dim,) = _infer_in_shape(g, "pass in_dim=d or a latent")
        d = check_int(in_dim, "in_dim", low=1)
        centers = torch.zeros(n_lines, d, dtype=dtype, device=dev)
    else:
        centers = latent_points(latent, n_lines, seeds[0], device=dev, dtype=dtype)
        d = centers.shape[1]
        if not is_latent(latent):
            n_lines = centers.shape[0]
    if length is None:
        length = 2.0 * math.sqrt(d)
    length = check_scalar(length, "length", low=0.0, low_inclusive=False)
    u = torch.randn(n_lines, d, generator=make_torch_generator(seeds[1]), dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    t = torch.linspace(-length / 2, length / 2, resolution + 1, dtype=torch.float64)
    step = length / resolution

    # Below ~64 ulps of |z| the float grid itself makes patterns flicker: bisect no finer than that.
    floor = 64 * torch.finfo(dtype).eps * (float(centers.abs().max()) + length / 2)
    n_bisect = min(n_bisect, max(0, int(math.floor(math.log2(step / floor)))))

    def points(i: int, ts: torch.Tensor) -> torch.Tensor:
        return (centers[i].double() + ts[:, None] * u[i]).to(dtype=dtype, device=dev)

    per_line, all_breaks = [], []
    with eval_mode(g):
        F = flat_map(g, centers)
        with _PatternRecorder(g) as rec:
            for i in progress_bar(range(n_lines), progress=progress, desc="linear regions"):
                P, Y = rec.patterns(F, points(i, t))
                change = np.flatnonzero(_rows_differ(P[:-1], P[1:]))
                if check_affine:
                    _check_affine_runs(t.numpy(), Y.double().cpu().numpy(), change)
                lo, hi = t.numpy()[change], t.numpy()[change + 1]
                Plo, Phi = P[change], P[change + 1]
                for _ in range(n_bisect):
                    if lo.size == 0:
                        break
                    mid = 0.5 * (lo + hi)
                    Pm, _ = rec.patterns(F, points(i, torch.from_numpy(mid)))
                    left, right = _rows_differ(Pm, Plo), _rows_differ(Pm, Phi)
                    # keep [lo, mid] where the pattern changed there, [mid, hi] likewise; both -> split
                    lo = np.concatenate([lo[left], mid[right]])
                    hi = np.concatenate([mid[left], hi[right]])
                    Plo = np.concatenate([Plo[left], Pm[right]])
                    Phi = np.concatenate([Pm[left], Phi[right]])
                    order = np.argsort(lo, kind="stable")
                    lo, hi, Plo, Phi = lo[order], hi[order], Plo[order], Phi[order]
                breaks = np.sort(0.5 * (lo + hi))
                if breaks.size > 1:  # breakpoints within float resolution are one flickering breakpoint
                    breaks = breaks[np.concatenate([[True], np.diff(breaks) > 4 * floor])]
                all_breaks.append(breaks)
                per_line.append(1 + breaks.size)
    gaps = [np.diff(b) for b in all_breaks if b.size > 1]
    min_gap = float(min(x.min() for x in gaps)) if gaps else math.inf
    counts = np.asarray(per_line, dtype=np.int64)
    return LinearRegions(
        float(counts.mean()), counts, all_breaks, float(length), float(step), min_gap, bool(min_gap > step)
    )


def _check_affine_runs(t: np.ndarray, Y: np.ndarray, change: np.ndarray) -> None:
    """Raise if g is visibly curved on a run of constant activation pattern.

    On each run [i0, i1] of at least three grid points the output at the middle point must equal the
    linear interpolation of the run's ends, to 1e-4 of the line's largest output norm (float32
    rounding of a deep network is ~1e-6 of it; a tanh bend over a run is orders above that).
    """
    scale = float(np.linalg.norm(Y, axis=1).max()) + 1e-30
    bounds = np.concatenate([[0], change + 1, [len(t)]])
    for i0, i1 in zip(bounds[:-1], bounds[1:] - 1, strict=True):
        if i1 - i0 < 2:
            continue
        im = (i0 + i1) // 2
        w = (t[im] - t[i0]) / (t[i1] - t[i0])
        err = np.linalg.norm(Y[im] - ((1 - w) * Y[i0] + w * Y[i1]))
        if err > 1e-4 * scale:
            raise ValueError(
                "g is not affine between the activation changes that linear_regions can record "
                f"(relative deviation {err / scale:.2e} on a constant-pattern run): it is not piecewise "
                "linear, or it applies an activation outside a module (e.g. torch.relu in forward)"
            )
