"""Uncertainty and significance for any registered distance: bootstrap intervals, the finite-sample
noise floor, and permutation two-sample tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._progress import progress_bar
from .._seeding import SeedLike, make_rng
from .._validation import (
    check_int,
    check_option,
    check_pair,
    check_samples,
    check_scalar,
    check_seed,
    to_numpy,
)
from ._common import normalize_scale, scaled_std, unscale
from .kernel import KERNEL_AT_ZERO, _scaled_bandwidth, kernel_matrix, median_bandwidth
from .registry import get_distance

__all__ = ["BootstrapResult", "NoiseFloor", "TwoSampleResult", "bootstrap", "noise_floor", "two_sample_test"]

#: Upper bound on n_boot, n_repeats and n_permutations: a p-value or quantile resolved to 1e-6 is
#: beyond any use, and larger counts only make a call run for days.
MAX_REPEATS = 10**6


def _finite(values: np.ndarray | float, what: str) -> None:
    """A NaN or inf statistic is an error, never a result (a NaN observed value used to give p < 0.05)."""
    if not np.all(np.isfinite(values)):
        raise ValueError(f"the {what} is NaN or inf, so no interval or p-value can be computed; check the "
                         "distance's arguments and the data's scale")


@dataclass(frozen=True)
class BootstrapResult:
    """Point estimate with a percentile bootstrap interval; ``float(result)`` is ``value``."""

    value: float
    low: float
    high: float
    std: float
    samples: np.ndarray = field(repr=False)

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True)
class NoiseFloor:
    """Distance between disjoint equal halves of one sample; ``float(result)`` is ``mean``."""

    mean: float
    std: float
    values: np.ndarray = field(repr=False)
    n: int

    def __float__(self) -> float:
        return float(self.mean)


@dataclass(frozen=True)
class TwoSampleResult:
    """Permutation test: observed statistic, p-value ``(1 + #{null >= stat}) / (1 + B)``, null draws."""

    statistic: float
    p_value: float
    null: np.ndarray = field(repr=False)

    def __float__(self) -> float:
        return float(self.statistic)


def _resolve(distance: str | Callable, kw: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray], float]:
    fn = get_distance(distance, **kw)

    def call(a: np.ndarray, b: np.ndarray) -> float:
        out = fn(a, b)
        return float(out.detach()) if isinstance(out, torch.Tensor) else float(out)

    return call


def bootstrap(
    x: Any,
    y: Any,
    distance: str | Callable = "w2",
    *,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: SeedLike = 0,
    progress: bool = True,
    **kw: Any,
) -> BootstrapResult:
    """Percentile bootstrap interval for ``distance(x, y)``.

    Each replicate resamples ``x`` and ``y`` independently with replacement at their own sizes and
    recomputes the distance. ``value`` is the estimate on the full samples, ``(low, high)`` the
    ``alpha/2`` and ``1 - alpha/2`` quantiles of the replicates, ``std`` their standard deviation
    (ddof=1). Note that resampling duplicates points, which biases OT distances downwards slightly.

    Parameters
    ----------
    x, y : array or tensor, shapes (n, D), (m, D)
    distance : registry name or callable
    n_boot : int
    alpha : float in (0, 1)
    seed : int or Generator
    progress : bool
    **kw : passed to the distance (see :func:`get_distance`)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(100, 1)), rng.normal(size=(100, 1)) + 1
    >>> r = bootstrap(x, y, "w1", n_boot=50, progress=False)
    >>> r.low <= r.value <= r.high
    True
    """
    x, y = check_pair(x, y, min_samples=2)
    n_boot = check_int(n_boot, "n_boot", low=2, high=MAX_REPEATS)
    check_seed(seed)
    alpha = check_scalar(alpha, "alpha", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    xn, yn = to_numpy(x), to_numpy(y)
    call = _resolve(distance, kw)
    rng = make_rng(seed)
    value = call(xn, yn)
    reps = np.empty(n_boot)
    for k in progress_bar(range(n_boot), progress=progress, desc="bootstrap"):
        reps[k] = call(xn[rng.integers(0, len(xn), len(xn))], yn[rng.integers(0, len(yn), len(yn))])
    _finite(value, "distance on the full samples")
    _finite(reps, "distance on a bootstrap replicate")
    low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return BootstrapResult(value, float(low), float(high), scaled_std(reps), reps)


def noise_floor(
    x: Any,
    distance: str | Callable = "w2",
    *,
    n: int | None = None,
    n_repeats: int = 5,
    seed: SeedLike = 0,
    progress: bool = True,
    **kw: Any,
) -> NoiseFloor:
    """What a perfect model scores at sample size ``n``: the distance between two random disjoint halves.

    Each repeat permutes ``x`` and compares its first ``n`` points with the next ``n`` (default
    ``n = len(x) // 2``). Report estimates against this floor ("indistinguishable from the floor"),
    and compare at the same ``n`` the estimate used.

    Examples
    --------
    >>> import numpy as np
    >>> nf = noise_floor(np.random.default_rng(0).normal(size=(200, 2)), "w2", n_repeats=3, progress=False)
    >>> nf.n, float(nf) > 0
    (100, True)
    """
    x = check_samples(x, "x", min_samples=4)
    n_half = len(x) // 2 if n is None else check_int(n, "n", low=2, high=len(x) // 2)
    n_repeats = check_int(n_repeats, "n_repeats", low=1, high=MAX_REPEATS)
    check_seed(seed)
    xn = to_numpy(x)
    call = _resolve(distance, kw)
    rng = make_rng(seed)
    vals = np.empty(n_repeats)
    for k in progress_bar(range(n_repeats), progress=progress, desc="noise floor"):
        perm = rng.permutation(len(xn))
        vals[k] = call(xn[perm[:n_half]], xn[perm[n_half:2 * n_half]])
    _finite(vals, "distance between the halves")
    std = scaled_std(vals) if n_repeats > 1 else 0.0
    return NoiseFloor(float(vals.mean()), std, vals, n_half)


def _permutation_batches(rng: np.random.Generator, size: int, count: int, batch: int = 64):
    """``count`` permutations of ``range(size)`` drawn in order from ``rng``, ``batch`` rows at a time
    (so memory is O(batch * size) however large ``count`` is)."""
    for start in range(0, count, batch):
        yield np.stack([rng.permutation(size) for _ in range(min(batch, count - start))])


def _kernel_permutation_stats(z: np.ndarray, n: int, perms, kernel: str, bandwidth: float,
                              unbiased: bool) -> np.ndarray:
    """MMD^2 for every row of the (P, N) index batches in ``perms`` (indices into the pooled ``z``; first
    ``n`` are 'x') from one pooled kernel matrix: O(N^2) once, then one (P, N) x (N, N) product per
    batch of permutations."""
    zt = torch.as_tensor(z, dtype=torch.float64)
    K = kernel_matrix(zt, zt, kernel, bandwidth)
    k0 = KERNEL_AT_ZERO[kernel]
    K.fill_diagonal_(0.0)
    total = float(K.sum())
    N, m = len(z), len(z) - n
    out = []
    for rows in perms:
        idx = torch.as_tensor(rows)
        ind = torch.zeros(len(idx), N, dtype=torch.float64)
        ind.scatter_(1, idx[:, :n], 1.0)
        A = ind @ K
        sxx = (A * ind).sum(1)
        sxy = (A * (1.0 - ind)).sum(1)
        syy = total - sxx - 2.0 * sxy
        if unbiased:
            stat = sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2.0 * sxy / (n * m)
        else:
            stat = (sxx + n * k0) / n**2 + (syy + m * k0) / m**2 - 2.0 * sxy / (n * m)
        out.append(stat.numpy())
    return np.concatenate(out)


def two_sample_test(
    x: Any,
    y: Any,
    statistic: str | Callable = "mmd",
    *,
    n_permutations: int = 200,
    seed: SeedLike = 0,
    progress: bool = True,
    **kw: Any,
) -> TwoSampleResult:
    """Permutation test of H0: P_x = P_y with any distance as the statistic (large = evidence against H0).

    The pooled sample is relabelled ``n_permutations`` times; the p-value is
    ``(1 + #{null >= observed}) / (1 + n_permutations)``, which is exact (valid at every level) under
    exchangeability. For ``'mmd'``/``'energy'`` on up to 5000 pooled points the pooled kernel matrix is
    computed once and every permutation is a matrix product (same numbers as calling ``mmd2``); the
    median bandwidth is computed once on the pooled sample, which is permutation invariant.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> res = two_sample_test(rng.normal(size=(50, 2)), rng.normal(size=(50, 2)) + 1.0, progress=False)
    >>> res.p_value < 0.05
    True
    """
    x, y = check_pair(x, y, min_samples=2)
    n_permutations = check_int(n_permutations, "n_permutations", low=1, high=MAX_REPEATS)
    check_seed(seed)
    xn, yn = to_numpy(x), to_numpy(y)
    z, n = np.concatenate([xn, yn]), len(xn)
    rng = make_rng(seed)
    # The fast path is numpy on the CPU: device= (and the weights) take the per-permutation path.
    fast = not any(k in kw for k in ("x_weights", "y_weights", "device"))
    if statistic in ("mmd", "energy") and len(z) <= 5000 and fast:
        kw = dict(kw)
        kernel = "energy" if statistic == "energy" else kw.pop("kernel", "gaussian")
        unbiased = kw.pop("unbiased", True)
        bw = kw.pop("bandwidth", "median")
        kw.pop("chunk_size", None)
        bw_seed = kw.pop("seed", 0)
        if kw:
            raise TypeError(f"unexpected arguments for statistic {statistic!r}: {sorted(kw)}")
        if kernel != "energy":
            check_option(kernel, "kernel", ("gaussian", "laplacian", "imq", "energy"))
        if not isinstance(unbiased, (bool, np.bool_)):
            raise TypeError(f"unbiased must be a bool, got {type(unbiased).__name__}")
        # As in mmd2: the pooled sample at unit scale (centred, divided by 2^e), the bandwidth with it.
        xs, ys, exponent = normalize_scale(xn, yn)
        zs = np.concatenate([xs, ys])
        if kernel == "energy":
            h = 1.0
        elif isinstance(bw, str):
            check_option(bw, "bandwidth", ["median"])
            h = median_bandwidth(xs, ys, seed=bw_seed)
        else:
            h = _scaled_bandwidth(check_scalar(bw, "bandwidth", low=0.0, low_inclusive=False), exponent)
        batches = [np.arange(len(z))[None, :], *_permutation_batches(rng, len(z), n_permutations)]
        stats = _kernel_permutation_stats(zs, n, batches, kernel, h, unbiased)
        stats = unscale(stats, exponent, 1.0 if kernel == "energy" else 0.0, f"MMD^2 ({kernel} kernel)")
        observed, null = float(stats[0]), stats[1:]
    else:
        call = _resolve(statistic, kw)
        observed = call(xn, yn)
        null = np.empty(n_permutations)
        perms = (perm for rows in _permutation_batches(rng, len(z), n_permutations) for perm in rows)
        bar = progress_bar(perms, total=n_permutations, progress=progress, desc="permutations")
        for k, perm in enumerate(bar):
            null[k] = call(z[perm[:n]], z[perm[n:]])
    _finite(observed, "observed statistic")
    _finite(null, "statistic on a permutation")
    p_value = (1.0 + np.sum(null >= observed)) / (1.0 + n_permutations)
    return TwoSampleResult(observed, float(p_value), null)
