"""Bures-Wasserstein distance: W2 between the Gaussians fitted to two samples (closed form)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_pair, to_numpy

__all__ = ["bures_wasserstein", "gaussian_w2"]


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((s + s.T) / 2.0)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def gaussian_w2(mean1: Any, cov1: Any, mean2: Any, cov2: Any) -> float:
    r"""W2 between N(m1, S1) and N(m2, S2):

    .. math::

        W_2^2 = \|m_1 - m_2\|^2 + \operatorname{tr} S_1 + \operatorname{tr} S_2
                - 2 \operatorname{tr}\big(S_1^{1/2} S_2 S_1^{1/2}\big)^{1/2}.

    Square roots of the symmetric PSD matrices by ``eigh`` (negative round-off eigenvalues clipped).

    Examples
    --------
    >>> gaussian_w2([0.0], [[4.0]], [1.0], [[1.0]])  # sqrt(1 + (2 - 1)^2)
    1.4142135623730951
    """
    m1, m2 = np.atleast_1d(to_numpy(mean1)), np.atleast_1d(to_numpy(mean2))
    s1, s2 = np.atleast_2d(to_numpy(cov1)), np.atleast_2d(to_numpy(cov2))
    r1 = _psd_sqrt(s1)
    cross = _psd_sqrt(r1 @ s2 @ r1)
    w2sq = float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(cross))
    return float(np.sqrt(max(w2sq, 0.0)))


def bures_wasserstein(x: Any, y: Any) -> float:
    """W2 between N(mean(x), cov(x)) and N(mean(y), cov(y)), unbiased (n - 1) covariances.

    A reference value: it equals W2(P_x, P_y) when both laws are Gaussian and is a lower bound on it
    otherwise (Gelbrich's bound). Float only (not differentiable).

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
    xn, yn = to_numpy(x), to_numpy(y)
    cx = np.atleast_2d(np.cov(xn, rowvar=False))
    cy = np.atleast_2d(np.cov(yn, rowvar=False))
    return gaussian_w2(xn.mean(0), cx, yn.mean(0), cy)
