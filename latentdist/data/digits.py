"""scikit-learn's 8x8 handwritten digits (1,797 images, bundled with scikit-learn: no download)."""

from __future__ import annotations

import numpy as np

from .._seeding import SeedLike, make_rng
from .._validation import check_int

__all__ = ["load_digits"]


def load_digits(*, n: int | None = None, seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    """The UCI optical digits via ``sklearn.datasets.load_digits``, scaled to [0, 1].

    Pixels are integer counts in 0..16, so ``x = pixel / 16``.

    Parameters
    ----------
    n : int, optional
        Size of a seeded random subset drawn without replacement (kept in file order).
    seed : int or Generator
        Seeds the subset.

    Returns
    -------
    images : numpy.ndarray, shape (n, 1, 8, 8), float32
    labels : numpy.ndarray, shape (n,), int64

    Examples
    --------
    >>> x, y = load_digits(n=10, seed=0)
    >>> x.shape, x.dtype.name, y.dtype.name
    ((10, 1, 8, 8), 'float32', 'int64')
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    images, labels = bunch.images, bunch.target
    idx = np.arange(len(labels))
    if n is not None:
        n = check_int(n, "n", low=1)
        if n > len(idx):
            raise ValueError(f"n={n} exceeds the {len(idx)} digits available")
        idx = np.sort(make_rng(seed).choice(idx, size=n, replace=False))
    x = (images[idx] / 16.0).astype(np.float32)[:, None]
    return x, labels[idx].astype(np.int64)
