"""Parameter counts and the one-row complexity report of a generator (docs/theory.md §3 proxies)."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import torch
from torch import nn

from latentdist._seeding import SeedLike, make_torch_generator, spawn_seeds
from latentdist.complexity._common import (
    check_module,
    eval_mode,
    flat_map,
    latent_points,
    module_device_dtype,
)
from latentdist.complexity.jacobian import batched_jacobian, spectrum_from_jacobian
from latentdist.complexity.lipschitz import lipschitz_upper
from latentdist.complexity.paths import linear_regions, path_length

__all__ = ["param_count", "complexity_report"]


def param_count(g: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of g (shared tensors counted once).

    Examples
    --------
    >>> param_count(nn.Linear(3, 2))
    8
    """
    g = check_module(g)
    return int(sum(p.numel() for p in g.parameters() if p.requires_grad or not trainable_only))


def complexity_report(
    g: nn.Module,
    latent: Any,
    *,
    n: int = 512,
    seed: SeedLike = 0,
    as_frame: bool = False,
    in_shape: tuple[int, ...] | None = None,
    unknown: str = "error",
    path_eps: float = 1e-2,
    local_dim_threshold: float = 1e-2,
    regions: dict | None = None,
    timings: bool = False,
    device: Any = None,
) -> dict | Any:
    """Every generator-complexity proxy of g at n latent points, as one row.

    One draw z_1..z_n of the latent serves every proxy. The full Jacobians at those points are computed
    once (see :func:`~latentdist.complexity.jacobian_spectrum`); the exact local spectral norms give
    ``lipschitz_lower`` (no power-iteration error) and the spectra give Frobenius norm, numerical rank
    and local dimension.

    Columns: ``params``, ``params_trainable``, ``in_dim``, ``out_dim``, ``n``, ``lipschitz_upper``,
    ``lipschitz_lower``, ``jacobian_frobenius``, ``jacobian_spectral_mean`` (mean of s_1),
    ``numerical_rank``, ``local_dim``, ``path_length``, ``linear_regions`` (mean pieces per line; NaN
    for smooth networks), ``linear_regions_resolved`` (False: the count is a lower bound). A proxy that
    does not apply to g (e.g. the product bound of a residual network) is NaN, with a warning saying why.

    Parameters
    ----------
    g : torch.nn.Module
    latent : latent object or array-like, shape (n, d)
    n : int
        Points drawn when ``latent`` is a latent object.
    seed : int or Generator
    as_frame : bool
        Return a one-row ``pandas.DataFrame`` instead of a dict.
    in_shape, unknown
        Passed to :func:`~latentdist.complexity.lipschitz_upper` (``in_shape`` defaults to (d,)).
    path_eps : float
        Step of :func:`~latentdist.complexity.path_length`.
    local_dim_threshold : float
        Relative singular-value cut for ``local_dim``.
    regions : dict, optional
        Keyword arguments for :func:`~latentdist.complexity.linear_regions`; the default
        ``dict(n_lines=4, resolution=256, n_bisect=0)`` keeps the report fast and may only give a lower
        bound (see ``linear_regions_resolved``).
    timings : bool
        Add ``time_<proxy>`` columns (seconds).
    device : str or torch.device, optional

    Returns
    -------
    dict or pandas.DataFrame

    Examples
    --------
    >>> g = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> row = complexity_report(g, torch.randn(64, 2, generator=torch.Generator().manual_seed(0)))
    >>> row["lipschitz_lower"] <= row["lipschitz_upper"]
    True
    """
    g = check_module(g)
    dev, dtype = module_device_dtype(g, device)
    seeds = spawn_seeds(seed, 3)
    Z = latent_points(latent, n, seeds[0], device=dev, dtype=dtype, min_samples=2)
    regions = {"n_lines": 4, "resolution": 256, "n_bisect": 0, **(regions or {})}
    row: dict[str, Any] = {
        "params": param_count(g),
        "params_trainable": param_count(g, trainable_only=True),
        "in_dim": int(Z.shape[1]),
        "n": int(Z.shape[0]),
    }
    clock: dict[str, float] = {}

    def timed(name: str, fn):
        start = time.perf_counter()
        try:
            return fn()
        except ValueError as exc:
            warnings.warn(f"complexity_report: {name} is NaN for this generator: {exc}", stacklevel=3)
            return None
        finally:
            clock[name] = time.perf_counter() - start

    with eval_mode(g):
        F = flat_map(g, Z)
        with torch.no_grad():
            row["out_dim"] = int(F(Z[:1]).shape[1])
        J = timed("jacobian", lambda: batched_jacobian(F, Z))
    eps = torch.finfo(dtype).eps
    spec = spectrum_from_jacobian(J, k=None, local_dim_threshold=local_dim_threshold, eps=eps)
    row["lipschitz_upper"] = timed(
        "lipschitz_upper", lambda: lipschitz_upper(g, in_shape=in_shape or (Z.shape[1],), unknown=unknown)
    )
    row["lipschitz_lower"] = spec.spectral_norm
    row["jacobian_frobenius"] = spec.frobenius
    row["jacobian_spectral_mean"] = float(spec.singular_values[:, 0].mean())
    row["numerical_rank"] = spec.numerical_rank
    row["local_dim"] = spec.local_dim
    row["path_length"] = timed("path_length", lambda: path_length(g, Z, eps=path_eps, seed=seeds[1]))
    centers = Z[torch.randperm(Z.shape[0], generator=make_torch_generator(seeds[2]))[: regions["n_lines"]]]
    lr = timed(
        "linear_regions",
        lambda: linear_regions(g, latent=centers, seed=seeds[2], progress=False, **regions),
    )
    row["linear_regions"] = lr.mean if lr is not None else None
    row["linear_regions_resolved"] = lr.resolved if lr is not None else None
    for key, value in row.items():
        if value is None:
            row[key] = math.nan
    if timings:
        row.update({f"time_{k}": v for k, v in clock.items()})
    if as_frame:
        import pandas as pd

        return pd.DataFrame([row])
    return row


