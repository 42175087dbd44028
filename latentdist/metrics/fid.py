"""Fréchet distance (FID) and kernel distance (KID) between feature sets.

Both compare two sets of feature vectors, usually the penultimate-layer features of a classifier
(:class:`latentdist.metrics.MNISTFeatures` for MNIST). Neither depends on downloaded weights.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from latentdist._seeding import SeedLike, make_rng
from latentdist._validation import (
    ArrayLike,
    check_cast,
    check_gaussian,
    check_int,
    check_pair,
    check_samples,
    check_seed,
    to_numpy,
)
from latentdist.distances._common import normalize_gaussians, scale_exponent, scaled_std, times_pow2, unscale

__all__ = ["GaussianStats", "KIDResult", "gaussian_stats", "frechet_distance", "fid", "kid"]


class GaussianStats(NamedTuple):
    """Mean ``mu`` (D,) and unbiased covariance ``sigma`` (D, D) of a feature set, float64."""

    mu: np.ndarray
    sigma: np.ndarray


class KIDResult(NamedTuple):
    """KID over random subsets: ``mean`` and ``std`` of the per-subset unbiased MMD^2 estimates."""

    mean: float
    std: float


def gaussian_stats(feats: ArrayLike) -> GaussianStats:
    """Fit a Gaussian to a feature set: sample mean and unbiased sample covariance.

    Parameters
    ----------
    feats : array-like or torch.Tensor, shape (n, D)
        At least two samples.

    Returns
    -------
    GaussianStats
        ``mu`` of shape (D,) and ``sigma`` of shape (D, D), float64.

    Examples
    --------
    >>> import numpy as np
    >>> stats = gaussian_stats(np.eye(3))
    >>> stats.mu.shape, stats.sigma.shape
    ((3,), (3, 3))
    """
    return _stats(feats, "feats")


def _stats(feats: ArrayLike, name: str) -> GaussianStats:
    x = to_numpy(check_samples(feats, name, min_samples=2))
    # The covariance of features near 1e155 exceeds float64; say so rather than return inf.
    with np.errstate(over="ignore", invalid="ignore"):
        mu = x.mean(axis=0)
        sigma = np.atleast_2d(np.cov(x, rowvar=False))
    check_cast(mu, np.float64, f"the mean of {name}")
    check_cast(sigma, np.float64, f"the covariance of {name} (values at this scale square past float64)")
    return GaussianStats(mu, sigma)


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix via eigh; rounding-level negative eigenvalues are clipped."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _check_stats(mu: ArrayLike, sigma: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    return check_gaussian(mu, sigma, (f"mu{name}", f"sigma{name}"))


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    r"""Fréchet (2-Wasserstein squared) distance between two Gaussians.

    .. math::

        d^2 = \|\mu_1 - \mu_2\|^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
              - 2 \operatorname{tr}\bigl(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\bigr)^{1/2}.

    The cross term is computed from symmetric eigendecompositions only: :math:`\Sigma_1^{1/2}` by
    ``eigh``, then the eigenvalues of the symmetric PSD matrix :math:`\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}`
    (the same as those of :math:`\Sigma_1\Sigma_2`), with rounding-level negatives clipped to zero.
    This avoids the complex output and instability of ``scipy.linalg.sqrtm`` on near-singular
    covariances. A result that rounding pushes below zero is returned as 0.

    Parameters
    ----------
    mu1, mu2 : array-like, shape (D,)
    sigma1, sigma2 : array-like, shape (D, D)
        Symmetric positive semi-definite covariances.

    Returns
    -------
    float
        The squared Fréchet distance (the FID convention; no square root is taken).

    Examples
    --------
    >>> import numpy as np
    >>> frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))
    4.0
    """
    mu1, sigma1 = _check_stats(mu1, sigma1, "1")
    mu2, sigma2 = _check_stats(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must have the same dimension, got {mu1.shape[0]} and {mu2.shape[0]}")
    # Computed at unit scale (means centred, all divided by a power of two) and scaled back: d^2 is
    # homogeneous of degree 2, and statistics near 1e150 would otherwise overflow in the products.
    mu1, sigma1, mu2, sigma2, exponent = normalize_gaussians(mu1, sigma1, mu2, sigma2)
    root1 = _psd_sqrt(sigma1)
    cross = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((cross + cross.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_sqrt)
    return float(unscale(max(value, 0.0), exponent, 2.0, "Frechet distance"))


def fid(real_feats: ArrayLike, fake_feats: ArrayLike) -> float:
    """Fréchet Inception-style distance between Gaussian fits of two feature sets.

    ``frechet_distance(*gaussian_stats(real_feats), *gaussian_stats(fake_feats))``; see
    :func:`frechet_distance` for the formula. Symmetric in its arguments.

    Parameters
    ----------
    real_feats, fake_feats : array-like or torch.Tensor, shape (n, D) and (m, D)
        At least two samples each. With ``n <= D`` the covariance is singular; the estimate is then
        strongly biased upwards, so use a few thousand samples for 128-D features.

    Returns
    -------
    float
        FID >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 2))
    >>> fid(x, x)
    0.0
    """
    real_feats, fake_feats = check_pair(real_feats, fake_feats, ("real_feats", "fake_feats"), min_samples=2)
    return frechet_distance(*_stats(real_feats, "real_feats"), *_stats(fake_feats, "fake_feats"))


def _poly_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k = (x.y / d + 1)^3, for features at any scale.

    The constant term of k = 1 + 3u + 3u^2 + u^3 (u = x.y / d) cancels exactly in the unbiased
    estimate, and on features divided by 2^e each power u^j is homogeneous of degree 2j, so
    MMD^2 = sum_j c_j 2^(2je) A_j with A_j the estimate for u^j at unit scale. Expanding the cube
    directly loses everything to rounding below 1e-8 (1 + 3u == 1) and overflows above 1e51.
    """
    d, m = x.shape[1], x.shape[0]
    e = scale_exponent(x, y)
    x, y = times_pow2(x, -e), times_pow2(y, -e)
    uxx, uyy, uxy = x @ x.T / d, y @ y.T / d, x @ y.T / d
    total = 0.0
    for power, coef in ((1, 3.0), (2, 3.0), (3, 1.0)):
        kxx, kyy, kxy = uxx**power, uyy**power, uxy**power
        unit = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2.0 * kxy.mean()
        with np.errstate(over="ignore"):
            total += coef * float(times_pow2(unit, 2 * power * e))
    if not np.isfinite(total):
        raise ValueError(f"KID overflows float64 at this feature scale (about 2**{e}); the cubic kernel "
                         "(x.y / D + 1)^3 is not scale invariant, so rescale the features")
    return total


def kid(
    real_feats: ArrayLike,
    fake_feats: ArrayLike,
    *,
    n_subsets: int = 100,
    subset_size: int = 1000,
    seed: SeedLike = 0,
) -> KIDResult:
    r"""Kernel Inception-style distance (Bińkowski et al., 2018).

    The unbiased estimate of :math:`\mathrm{MMD}^2` with the cubic polynomial kernel
    :math:`k(x, y) = (x \cdot y / D + 1)^3`,

    .. math::

        \widehat{\mathrm{MMD}}^2_u = \frac{1}{m(m-1)} \sum_{i \ne j} [k(x_i, x_j) + k(y_i, y_j)]
                                     - \frac{2}{m^2} \sum_{i, j} k(x_i, y_j),

    computed on ``n_subsets`` pairs of random subsets of size ``m = subset_size`` (drawn without
    replacement within a subset). Being unbiased, it can be slightly negative when the two sets come
    from the same distribution.

    Parameters
    ----------
    real_feats, fake_feats : array-like or torch.Tensor, shape (n, D) and (n', D)
    n_subsets : int
        Number of subset pairs (>= 1).
    subset_size : int
        Samples per subset (>= 2); must not exceed ``min(n, n')``.
    seed : int or Generator
        Draws the subsets.

    Returns
    -------
    KIDResult
        ``mean`` and ``std`` (population std, ``ddof=0``) of the per-subset estimates. The standard
        error of the mean is ``std / sqrt(n_subsets)`` only if the subsets were independent; they
        overlap, so treat ``std`` as the spread of a single-subset estimate.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> res = kid(rng.normal(size=(200, 4)), rng.normal(size=(200, 4)), n_subsets=10, subset_size=100)
    >>> abs(res.mean) < 3 * res.std
    True
    """
    real_feats, fake_feats = check_pair(real_feats, fake_feats, ("real_feats", "fake_feats"), min_samples=2)
    n_subsets = check_int(n_subsets, "n_subsets", low=1, high=10**6)
    check_seed(seed)
    subset_size = check_int(subset_size, "subset_size", low=2)
    x, y = to_numpy(real_feats), to_numpy(fake_feats)
    if subset_size > min(len(x), len(y)):
        raise ValueError(
            f"subset_size must be <= the smaller sample size {min(len(x), len(y))} "
            f"(real_feats has {len(x)}, fake_feats {len(y)}), got {subset_size}"
        )
    rng = make_rng(seed)
    values = np.empty(n_subsets)
    for s in range(n_subsets):
        xs = x[rng.choice(len(x), subset_size, replace=False)]
        ys = y[rng.choice(len(y), subset_size, replace=False)]
        values[s] = _poly_mmd2_unbiased(xs, ys)
    return KIDResult(float(values.mean()), scaled_std(values, ddof=0))
