"""Bures-Wasserstein distance: W2 between the Gaussians fitted to two samples (closed form)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_gaussian, check_pair, to_numpy
from ._common import normalize_gaussians, normalize_scale, unscale

__all__ = ["bures_wasserstein", "gaussian_w2"]


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((s + s.T) / 2.0)
    # Eigenvalues below the numerical rank threshold are round-off; their square roots (~1e-8) would
    # otherwise dominate the error for rank-deficient covariances (n <= D).
    cutoff = max(vals.max(initial=0.0), 0.0) * len(vals) * np.finfo(vals.dtype).eps
    return (vecs * np.sqrt(np.where(vals > cutoff, vals, 0.0))) @ vecs.T


def gaussian_w2(mean1: Any, cov1: Any, mean2: Any, cov2: Any) -> float:
    r"""W2 between N(m1, S1) and N(m2, S2):

    .. math::

        W_2^2 = \|m_1 - m_2\|^2 + \operatorname{tr} S_1 + \operatorname{tr} S_2
                - 2 \operatorname{tr}\big(S_1^{1/2} S_2 S_1^{1/2}\big)^{1/2}.

    Computed as :math:`\operatorname{tr}(S_1^{1/2} S_2 S_1^{1/2})^{1/2} = \|S_1^{1/2} S_2^{1/2}\|_*` (nuclear
    norm, symmetric in the two arguments), with PSD square roots by ``eigh`` (eigenvalues below the
    numerical-rank threshold set to 0). Computed at unit scale (means centred, everything divided by
    a power of two) and scaled back, so means and covariances near 1e-300 or 1e300 are fine.

    Parameters
    ----------
    mean1, mean2 : array-like, shape (D,)
    cov1, cov2 : array-like, shape (D, D)
        Symmetric positive semi-definite.

    Raises
    ------
    ValueError
        Shapes that do not match, NaN/inf, or a covariance that is not symmetric PSD.

    Examples
    --------
    >>> gaussian_w2([0.0], [[4.0]], [1.0], [[1.0]])  # sqrt(1 + (2 - 1)^2)
    1.4142135623730951
    """
    m1, s1 = check_gaussian(mean1, cov1, ("mean1", "cov1"))
    m2, s2 = check_gaussian(mean2, cov2, ("mean2", "cov2"))
    if m1.shape != m2.shape:
        raise ValueError(f"mean1 and mean2 must have the same dimension, got {m1.shape[0]} and {m2.shape[0]}")
    m1, s1, m2, s2, exponent = normalize_gaussians(m1, s1, m2, s2)
    cross = np.linalg.svd(_psd_sqrt(s1) @ _psd_sqrt(s2), compute_uv=False).sum()
    w2sq = float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * cross)
    return float(unscale(float(np.sqrt(max(w2sq, 0.0))), exponent, 1.0, "Gaussian W2"))


def bures_wasserstein(x: Any, y: Any) -> float:
    """W2 between N(mean(x), cov(x)) and N(mean(y), cov(y)), with the samples' own (ddof=0) covariances.

    A reference value: it equals W2(P_x, P_y) when both laws are Gaussian, and with ddof=0 it is a
    lower bound on the empirical W2 between the samples themselves (Gelbrich's bound). Float only
    (not differentiable).

    Parameters
    ----------
    x, y : array or tensor, shapes (n, D), (m, D); n, m >= 2

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [2.0, 0.0]]); bures_wasserstein(x, x + 1.0)  # pure translation
    1.4142135623730951
    """
    x, y = check_pair(x, y, min_samples=2)
    # Unit scale first: np.cov of samples near 1e300 overflows.
    xn, yn, exponent = normalize_scale(to_numpy(x), to_numpy(y))
    cx = np.atleast_2d(np.cov(xn, rowvar=False, ddof=0))
    cy = np.atleast_2d(np.cov(yn, rowvar=False, ddof=0))
    unit = gaussian_w2(xn.mean(0), cx, yn.mean(0), cy)
    return float(unscale(unit, exponent, 1.0, "Bures-Wasserstein distance"))
