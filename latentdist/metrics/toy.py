"""Metrics for generated samples of toy distributions with known ground truth.

- :func:`manifold_error`: how far samples lie from the noise-free support.
- :func:`mode_coverage`: how many mixture modes are hit, and how many samples land on a mode.
- :func:`distribution_distances`: sample distances to held-out data, each with its noise floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from latentdist._seeding import SeedLike, spawn_seeds
from latentdist._validation import (
    ArrayLike,
    check_array,
    check_int,
    check_pair,
    check_samples,
    check_scalar,
    to_numpy,
)

__all__ = ["manifold_error", "mode_coverage", "distribution_distances"]


def manifold_error(samples: ArrayLike, dataset: Any) -> dict[str, float]:
    """Distance of generated samples to the dataset's noise-free support.

    Uses ``dataset.manifold_distance`` (exact where a formula exists, see
    :class:`latentdist.data.ToyDataset`).

    Parameters
    ----------
    samples : array-like or torch.Tensor, shape (m, D)
        ``D`` must equal ``dataset.dim``.
    dataset : ToyDataset
        Anything with a ``manifold_distance(y) -> (m,)`` method.

    Returns
    -------
    dict
        ``mean``, ``median``, ``q90`` (90th percentile) and ``max`` of the distances.

    Examples
    --------
    >>> from latentdist.data import make_dataset
    >>> ds = make_dataset("circles", 200, seed=0)
    >>> manifold_error(ds.x, ds)["max"] < 1e-9
    True
    """
    if not callable(getattr(dataset, "manifold_distance", None)):
        raise TypeError(f"dataset must have a manifold_distance method, got {type(dataset).__name__}")
    ref = getattr(dataset, "x", None)
    samples = check_samples(samples, "samples", dim=None if ref is None else np.shape(ref)[1])
    dist = np.asarray(dataset.manifold_distance(to_numpy(samples)), dtype=np.float64)
    if not np.isfinite(dist).all():
        peak = float(np.abs(to_numpy(samples)).max())
        raise ValueError("the distances of samples to the manifold overflow float64 at this scale "
                         f"(|samples| up to {peak:.1e}); rescale the samples")
    return {
        "mean": float(dist.mean()),
        "median": float(np.median(dist)),
        "q90": float(np.quantile(dist, 0.9)),
        "max": float(dist.max()),
    }


def mode_coverage(
    samples: ArrayLike,
    modes: ArrayLike,
    std: float | ArrayLike,
    *,
    n_sigma: float = 3.0,
    min_fraction: float = 0.01,
) -> dict[str, float]:
    r"""Mode coverage and sample quality for a Gaussian mixture with known centres.

    Each sample is assigned to its nearest mode centre :math:`\mu_j`; it is *on a mode* ("high
    quality") when :math:`\|x - \mu_j\| \le n_\sigma \sigma_j`. A mode is *hit* when at least
    :math:`\max(1, \lceil \text{min\_fraction} \cdot m\rceil)` of the ``m`` samples are on it. This is
    the rule of the mixture-GAN literature (VEEGAN, PacGAN: 3 standard deviations); note that in ``D``
    dimensions the radius :math:`n_\sigma\sigma` is compared with a norm, so for ``D = 2`` it holds
    :math:`1 - e^{-n_\sigma^2/2}` (98.9% at 3σ) of a true mode's mass.

    Parameters
    ----------
    samples : array-like or torch.Tensor, shape (m, D)
    modes : array-like, shape (k, D)
        Mode centres (``dataset.modes``).
    std : float or array-like of shape (k,)
        Per-coordinate standard deviation of each mode (``dataset.mode_std``); > 0.
    n_sigma : float
        Radius in standard deviations (> 0).
    min_fraction : float
        Fraction of all samples a mode must receive to count as hit, in [0, 1).

    Returns
    -------
    dict
        ``coverage`` (fraction of modes hit), ``quality`` (fraction of samples on a mode),
        ``n_modes_hit`` and ``n_modes``.

    Examples
    --------
    >>> import numpy as np
    >>> modes = np.array([[0.0, 0.0], [10.0, 0.0]])
    >>> mode_coverage(np.zeros((50, 2)), modes, 0.1)["coverage"]
    0.5
    """
    samples, modes = check_pair(samples, modes, ("samples", "modes"))
    x, mu = to_numpy(samples), to_numpy(modes)
    k = len(mu)
    if np.ndim(std) == 0:
        sig = np.full(k, check_scalar(std, "std", low=0.0, low_inclusive=False))
    else:
        sig = to_numpy(check_array(std, "std", ndim=1))
        if sig.shape != (k,):
            raise ValueError(f"std must be a scalar or have one entry per mode ({k}), got shape {sig.shape}")
        if (sig <= 0).any():
            raise ValueError("std must be > 0 for every mode")
    n_sigma = check_scalar(n_sigma, "n_sigma", low=0.0, low_inclusive=False)
    min_fraction = check_scalar(min_fraction, "min_fraction", low=0.0, high=1.0, high_inclusive=False)

    sq = ((x[:, None, :] - mu[None, :, :]) ** 2).sum(-1) if k * len(x) * x.shape[1] < 2**26 else None
    if sq is None:  # large inputs: avoid the (m, k, D) intermediate
        sq = np.maximum((x * x).sum(1)[:, None] + (mu * mu).sum(1)[None, :] - 2 * x @ mu.T, 0.0)
    nearest = sq.argmin(1)
    on_mode = np.sqrt(sq[np.arange(len(x)), nearest]) <= n_sigma * sig[nearest]
    per_mode = np.bincount(nearest[on_mode], minlength=k)
    threshold = max(1, math.ceil(min_fraction * len(x)))
    hit = int((per_mode >= threshold).sum())
    return {
        "coverage": hit / k,
        "quality": float(on_mode.mean()),
        "n_modes_hit": hit,
        "n_modes": k,
    }


def distribution_distances(
    samples: ArrayLike,
    data: ArrayLike,
    distances: Sequence[str] = ("w2", "sinkhorn", "mmd"),
    *,
    n: int | None = None,
    n_repeats: int = 5,
    seed: SeedLike = 0,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Sample distances between generated samples and data, each next to its noise floor.

    For every name, the value is ``d(x_n, y_n)`` for random size-``n`` subsets of ``samples`` and
    ``data``, and the floor is :func:`latentdist.distances.noise_floor` of ``data`` at the same ``n``:
    the same distance between two disjoint size-``n`` draws of the data (mean and std over
    ``n_repeats`` splits). A value within a few floor standard deviations of the floor mean is
    indistinguishable from a perfect generator at this sample size. Distances that take a ``seed``
    (sliced, critic) get one derived from ``seed``.

    Parameters
    ----------
    samples : array-like or torch.Tensor, shape (m, D)
    data : array-like or torch.Tensor, shape (N, D)
        Held-out data (not the training set); needs ``N >= 2 n``.
    distances : sequence of str
        Names known to :func:`latentdist.distances.get_distance`.
    n : int, optional
        Sample size of both the value and the floor; default ``min(m, N // 2)``.
    n_repeats : int
        Data splits for the floor.
    seed : int or Generator
        Seeds the subsets, the floor's splits and stochastic distances.
    progress : bool

    Returns
    -------
    dict
        ``{name: {"value", "floor_mean", "floor_std", "n"}}``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> res = distribution_distances(rng.normal(size=(200, 2)), rng.normal(size=(400, 2)), ("mmd",),
    ...                              progress=False)
    >>> sorted(res["mmd"])
    ['floor_mean', 'floor_std', 'n', 'value']
    """
    import inspect

    from latentdist.distances import get_distance, noise_floor

    samples, data = check_pair(samples, data, ("samples", "data"), min_samples=2)
    if isinstance(distances, str):
        distances = (distances,)
    names = list(distances)
    if not names:
        raise ValueError("distances must name at least one distance")
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"distances must hold distance names (str), got {type(name).__name__}")
    x, y = to_numpy(samples), to_numpy(data)
    if len(y) < 4:
        raise ValueError(f"data needs at least 4 samples to measure a noise floor, got {len(y)}")
    n_max = min(len(x), len(y) // 2)
    n = n_max if n is None else check_int(n, "n", low=2, high=n_max)
    sub_seed, *dist_seeds = spawn_seeds(seed, len(names) + 1)
    rng = np.random.default_rng(sub_seed)
    xs = x[rng.choice(len(x), n, replace=False)]
    ys = y[rng.choice(len(y), n, replace=False)]
    out: dict[str, dict[str, float]] = {}
    for name, dseed in zip(names, dist_seeds, strict=True):
        fn = get_distance(name)
        kw = {"seed": dseed} if "seed" in inspect.signature(fn).parameters else {}
        bound = get_distance(name, **kw)
        value = bound(xs, ys)
        value = float(value.detach()) if hasattr(value, "detach") else float(value)
        # The bound callable carries the distance's own seed; noise_floor's seed draws the splits.
        floor = noise_floor(y, bound, n=n, n_repeats=n_repeats, seed=dseed, progress=progress)
        out[name] = {"value": value, "floor_mean": float(floor.mean), "floor_std": float(floor.std), "n": n}
    return out
