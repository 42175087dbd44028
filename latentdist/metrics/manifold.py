"""k-NN manifold metrics: precision/recall (Kynkäänniemi et al., 2019) and density/coverage
(Naeem et al., 2020).

Each sample set is approximated by the union of balls around its points, each ball reaching the
point's k-th nearest neighbour in its own set. Every distance matrix is built in row chunks, so memory
stays at ``chunk_size x n`` however large ``n`` is. Distances are compared squared, in float64, with
"inside the ball" meaning ``<=`` as in both papers.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from latentdist._validation import ArrayLike, check_device, check_int, check_pair, to_tensor

__all__ = ["PrecisionRecall", "DensityCoverage", "knn_radii", "precision_recall", "density_coverage"]

# About 128 MiB of float64 per distance chunk.
_CHUNK_ELEMENTS = 2**24


class PrecisionRecall(NamedTuple):
    """Fraction of fake samples on the real manifold (``precision``) and of real samples on the fake
    manifold (``recall``)."""

    precision: float
    recall: float


class DensityCoverage(NamedTuple):
    """Naeem et al.'s ``density`` (unbounded above, about 1 for matching distributions) and
    ``coverage`` (in [0, 1])."""

    density: float
    coverage: float


def _rows_per_chunk(n_cols: int, chunk_size: int | None) -> int:
    if chunk_size is None:
        return max(1, _CHUNK_ELEMENTS // max(n_cols, 1))
    return chunk_size


def _sq_dists(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    # The expansion is exact for small-integer inputs and within float64 rounding otherwise.
    return ((a * a).sum(1, keepdim=True) + b_sq[None, :] - 2.0 * a @ b.T).clamp_min_(0.0)


def _knn_sq_radii(x: torch.Tensor, k: int, rows: int) -> torch.Tensor:
    x_sq = (x * x).sum(1)
    out = torch.empty(len(x), dtype=x.dtype, device=x.device)
    for start in range(0, len(x), rows):
        d = _sq_dists(x[start : start + rows], x, x_sq)
        # k + 1 smallest because the point itself sits at distance 0.
        out[start : start + rows] = torch.topk(d, k + 1, dim=1, largest=False).values[:, k]
    return out


def _prepare(
    real: ArrayLike, fake: ArrayLike, k: int, device: str | torch.device | None,
    names: tuple[str, str] = ("real", "fake"),
) -> tuple[torch.Tensor, torch.Tensor, int]:
    k = check_int(k, "k", low=1)
    real, fake = check_pair(real, fake, names, min_samples=2)
    for name, arr in zip(names, (real, fake), strict=True):
        if arr.shape[0] < k + 1:
            raise ValueError(f"{name} needs at least {k + 1} samples for k={k}, got {arr.shape[0]}")
    # k-NN radii square the distances: beyond 1e150 they overflow, below 1e-150 they vanish.
    peak = max(float(abs(real).max()), float(abs(fake).max()))
    if peak > 1e150 or 0 < peak < 1e-150:
        raise ValueError(f"{names[0]} and {names[1]} have values at the scale {peak:.1e}, outside the range "
                         "(1e-150 to 1e150) where squared distances are representable; rescale them")
    dev = check_device(device)
    return (
        to_tensor(real, dtype=torch.float64, device=dev).detach(),
        to_tensor(fake, dtype=torch.float64, device=dev).detach(),
        k,
    )


def _check_chunk(chunk_size: int | None) -> int | None:
    return None if chunk_size is None else check_int(chunk_size, "chunk_size", low=1)


def knn_radii(
    x: ArrayLike, *, k: int = 3, chunk_size: int | None = None, device: str | torch.device | None = "cpu"
) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in ``x`` (itself excluded).

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, D)
        ``n >= k + 1``.
    k : int
    chunk_size : int, optional
        Rows per distance block; default keeps a block near 128 MiB.
    device : str or torch.device

    Returns
    -------
    torch.Tensor, shape (n,), float64

    Examples
    --------
    >>> knn_radii([[0.0], [1.0], [3.0]], k=1).tolist()
    [1.0, 1.0, 2.0]
    """
    x, _, k = _prepare(x, x, k, device, ("x", "x"))
    rows = _rows_per_chunk(len(x), _check_chunk(chunk_size))
    return _knn_sq_radii(x, k, rows).sqrt()


def _inside_counts(
    queries: torch.Tensor, centres: torch.Tensor, sq_radii: torch.Tensor, rows: int
) -> torch.Tensor:
    """For each query, the number of centres whose ball (radius^2 = sq_radii) contains it."""
    c_sq = (centres * centres).sum(1)
    counts = torch.empty(len(queries), dtype=torch.int64, device=queries.device)
    for start in range(0, len(queries), rows):
        d = _sq_dists(queries[start : start + rows], centres, c_sq)
        counts[start : start + rows] = (d <= sq_radii[None, :]).sum(1)
    return counts


def precision_recall(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    k: int = 3,
    chunk_size: int | None = None,
    device: str | torch.device | None = "cpu",
) -> PrecisionRecall:
    r"""Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019).

    With :math:`r_k(x)` the distance from :math:`x` to its k-th nearest neighbour within its own set,

    .. math::

        \mathrm{precision} = \frac{1}{M}\sum_{j} \mathbf 1\bigl[\exists i:
            \|y_j - x_i\| \le r_k(x_i)\bigr],\qquad
        \mathrm{recall} = \frac{1}{N}\sum_{i} \mathbf 1\bigl[\exists j:
            \|x_i - y_j\| \le r_k(y_j)\bigr],

    for real samples :math:`x_1..x_N` and fake samples :math:`y_1..y_M`.

    Parameters
    ----------
    real, fake : array-like or torch.Tensor, shape (N, D) and (M, D)
        Each needs at least ``k + 1`` samples.
    k : int
        Neighbourhood size (the paper uses 3).
    chunk_size : int, optional
        Rows per distance block; the default keeps a block near 128 MiB.
    device : str or torch.device

    Returns
    -------
    PrecisionRecall

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(50, 2))
    >>> precision_recall(x, x, k=3)
    PrecisionRecall(precision=1.0, recall=1.0)
    """
    x, y, k = _prepare(real, fake, k, device)
    chunk_size = _check_chunk(chunk_size)
    rx = _knn_sq_radii(x, k, _rows_per_chunk(len(x), chunk_size))
    ry = _knn_sq_radii(y, k, _rows_per_chunk(len(y), chunk_size))
    precision = (_inside_counts(y, x, rx, _rows_per_chunk(len(x), chunk_size)) > 0).double().mean()
    recall = (_inside_counts(x, y, ry, _rows_per_chunk(len(y), chunk_size)) > 0).double().mean()
    return PrecisionRecall(float(precision), float(recall))


def density_coverage(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    k: int = 5,
    chunk_size: int | None = None,
    device: str | torch.device | None = "cpu",
) -> DensityCoverage:
    r"""Density and coverage (Naeem et al., ICML 2020).

    Only the real set's k-NN balls are used:

    .. math::

        \mathrm{density} = \frac{1}{kM}\sum_{j}\sum_{i} \mathbf 1\bigl[\|y_j - x_i\| \le r_k(x_i)\bigr],
        \qquad
        \mathrm{coverage} = \frac{1}{N}\sum_{i} \mathbf 1\bigl[\min_j \|x_i - y_j\| \le r_k(x_i)\bigr].

    Parameters
    ----------
    real, fake : array-like or torch.Tensor, shape (N, D) and (M, D)
        ``real`` needs at least ``k + 1`` samples.
    k : int
        Neighbourhood size (the paper recommends 5).
    chunk_size : int, optional
        Rows per distance block; the default keeps a block near 128 MiB.
    device : str or torch.device

    Returns
    -------
    DensityCoverage

    Examples
    --------
    >>> import numpy as np
    >>> real = np.array([[0.0], [1.0], [2.0], [10.0]])
    >>> density_coverage(real, np.array([[0.5], [1.5]]), k=1)
    DensityCoverage(density=2.0, coverage=0.75)
    """
    k = check_int(k, "k", low=1)
    real, fake = check_pair(real, fake, ("real", "fake"), min_samples=1)
    x, _, k = _prepare(real, real, k, device)
    y = to_tensor(fake, dtype=torch.float64, device=x.device).detach()
    chunk_size = _check_chunk(chunk_size)
    rx = _knn_sq_radii(x, k, _rows_per_chunk(len(x), chunk_size))
    density = _inside_counts(y, x, rx, _rows_per_chunk(len(x), chunk_size)).double().sum() / (k * len(y))
    # Coverage: is the nearest fake sample inside each real ball?
    y_sq = (y * y).sum(1)
    rows = _rows_per_chunk(len(y), chunk_size)
    covered = torch.empty(len(x), dtype=torch.bool, device=x.device)
    for start in range(0, len(x), rows):
        d = _sq_dists(x[start : start + rows], y, y_sq)
        covered[start : start + rows] = d.min(1).values <= rx[start : start + rows]
    return DensityCoverage(float(density), float(covered.double().mean()))
