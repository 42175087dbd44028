"""Data-side complexity: intrinsic dimension and connected components at a scale (docs/theory.md §3).

* **Intrinsic dimension.** ``'mle'`` is the Levina-Bickel (2004) k-nearest-neighbour maximum
  likelihood estimator with the MacKay-Ghahramani (2005) correction, which averages the *inverses* of
  the per-point estimates:

  .. math:: \\hat m_k(x_i) = \\Big[\\frac{1}{k-1}\\sum_{j=1}^{k-1}\\log\\frac{T_k(x_i)}{T_j(x_i)}\\Big]^{-1},
            \\qquad \\hat m_k = \\Big[\\frac1n\\sum_i \\hat m_k(x_i)^{-1}\\Big]^{-1},

  T_j(x) the distance from x to its j-th nearest neighbour. ``'twonn'`` (Facco et al., 2017),
  ``'mle_skdim'`` (scikit-dimension's MLE), ``'lpca'`` and ``'corrint'`` delegate to scikit-dimension.
* **Connected components at scale r.** The components of the graph joining points at distance <= r:
  the clusters of single-linkage clustering cut at height r.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from latentdist._validation import check_int, check_option, check_samples, check_scalar, to_numpy
from latentdist.distances._common import normalize_scale

__all__ = ["intrinsic_dimension", "n_components", "ID_METHODS"]

ID_METHODS = ("mle", "twonn", "mle_skdim", "lpca", "corrint")
_MIN_SAMPLES_TWONN = 20  # TwoNN fits a line through the CDF of r2/r1 after dropping 10% of points


def _levina_bickel_mackay(x: np.ndarray, k: int) -> float:
    from sklearn.neighbors import NearestNeighbors

    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    T = dist[:, 1:]  # drop the point itself
    if (T[:, 0] <= 0).any():
        raise ValueError("x contains duplicate points; the k-NN MLE needs distinct points (drop duplicates)")
    inv = np.log(T[:, -1:] / T[:, :-1]).mean(axis=1)  # 1 / m_k(x_i)
    return float(1.0 / inv.mean())


def intrinsic_dimension(x: Any, method: str = "mle", k: int = 20) -> float:
    """Intrinsic dimension of a point cloud.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, D)
    method : {'mle', 'twonn', 'mle_skdim', 'lpca', 'corrint'}
        ``'mle'``: Levina-Bickel with MacKay-Ghahramani averaging (our implementation, needs n > k);
        ``'twonn'``: ``skdim.id.TwoNN`` (needs n >= 20); ``'mle_skdim'``:
        ``skdim.id.MLE().fit(x, n_neighbors=k)``;
        ``'lpca'``: ``skdim.id.lPCA`` (global PCA: dimension of the linear span, not of a curved
        manifold); ``'corrint'``: ``skdim.id.CorrInt(k1=10, k2=k)``.
    k : int
        Neighbours per point (ignored by 'twonn' and 'lpca').

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.c_[rng.uniform(size=(2000, 2)), np.zeros((2000, 3))]
    >>> abs(intrinsic_dimension(x) - 2) < 0.3
    True
    """
    method = check_option(method, "method", ID_METHODS)
    k = check_int(k, "k", low=2)
    need = {"twonn": _MIN_SAMPLES_TWONN, "lpca": 2}.get(method, k + 1)
    arr = to_numpy(check_samples(x, "x", min_samples=min(need, 2)))
    if need > len(arr):
        what = f"k={k} neighbours" if need == k + 1 else f"method={method!r}"
        raise ValueError(f"x needs at least {need} samples for {what}, got {len(arr)}")
    # Every estimator here is invariant to translation and scale; at unit scale (centred, divided by
    # a power of two) neighbour distances neither overflow near 1e300 nor underflow near 1e-300.
    arr = normalize_scale(arr, arr[:0])[0]
    if method == "mle":
        return _levina_bickel_mackay(arr, k)
    import skdim

    if method == "mle_skdim":
        # scikit-dimension takes the neighbourhood size in fit(n_neighbors=...); MLE(K=...) is another
        # parameter (it never reached the neighbour count), so k must go to fit.
        return float(skdim.id.MLE().fit(arr, n_neighbors=k).dimension_)
    if method == "twonn":
        est = skdim.id.TwoNN()
    elif method == "lpca":
        est = skdim.id.lPCA()
    else:
        if k <= 10:
            raise ValueError(f"k must be > 10 for method='corrint' (it uses k1=10, k2=k), got {k}")
        est = skdim.id.CorrInt(k1=10, k2=k)
    return float(est.fit(arr).dimension_)


def n_components(x: Any, scale: float | Any, *, return_labels: bool = False) -> int | np.ndarray | tuple:
    """Number of connected components of the r-neighbourhood graph of the points.

    Points i, j are joined when ||x_i - x_j|| <= r (Euclidean); the count equals the number of
    single-linkage clusters at height r. Built from scikit-learn's sparse radius graph and scipy's
    ``connected_components``, so memory grows with the number of edges, not n^2.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, D)
    scale : float > 0 or 1-D sequence of them
        The radius r (one count per value when a sequence is given).
    return_labels : bool
        Also return the component label of every point (scalar ``scale`` only).

    Returns
    -------
    int, or numpy.ndarray of int (one per scale), or (int, labels of shape (n,)).

    Examples
    --------
    >>> n_components([[0.0], [0.1], [5.0]], 1.0)
    2
    """
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import radius_neighbors_graph

    arr = to_numpy(check_samples(x, "x", min_samples=1))
    scalar = np.ndim(scale) == 0
    if scalar:
        scales = [check_scalar(scale, "scale", low=0.0, low_inclusive=False)]
    else:
        values = to_numpy(scale).reshape(-1)
        if values.size == 0:
            raise ValueError("scale must contain at least one radius")
        scales = [check_scalar(v, "scale", low=0.0, low_inclusive=False) for v in values]
    if return_labels and not scalar:
        raise ValueError("return_labels needs a single scale, got a sequence")
    counts, labels = [], None
    for r in scales:
        graph = radius_neighbors_graph(arr, r, mode="connectivity", include_self=False)
        count, labels = connected_components(graph, directed=False)
        counts.append(int(count))
    if scalar:
        return (counts[0], labels) if return_labels else counts[0]
    return np.asarray(counts, dtype=np.int64)
