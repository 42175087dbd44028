"""A fixed, seeded validation split of a training set, checked disjoint from the test set.

Model selection (early stopping, auxiliary-decoder strength, prior hyper-parameters) must never see the
test images, so experiments carve a validation part out of the training file. MNIST's files keep writer
order, so the split is a seeded random permutation, never a positional cut.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from latentdist._seeding import SeedLike, make_rng
from latentdist._validation import check_int

__all__ = ["validation_split", "check_disjoint"]


def validation_split(n_total: int, n_val: int, *, seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of a seeded random split of ``n_total`` items.

    Parameters
    ----------
    n_total : int >= 2
    n_val : int
        Size of the validation part, 1 <= n_val < n_total (an empty part on either side is refused).
    seed : int or Generator

    Returns
    -------
    train_idx, val_idx : numpy.ndarray of int64, sorted, disjoint, together ``range(n_total)``

    Examples
    --------
    >>> tr, va = validation_split(10, 3, seed=0)
    >>> len(tr), len(va), len(set(tr) | set(va))
    (7, 3, 10)
    """
    n_total = check_int(n_total, "n_total", low=2)
    n_val = check_int(n_val, "n_val", low=1)
    if n_val >= n_total:
        raise ValueError(f"n_val must be smaller than n_total={n_total} to leave training data, got {n_val}")
    perm = make_rng(seed).permutation(n_total)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _row_digests(x: np.ndarray) -> set[bytes]:
    flat = np.ascontiguousarray(x).reshape(len(x), -1)
    return {hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat}


def check_disjoint(val: Any, test: Any, *, name: str = "validation split") -> None:
    """Raise ``ValueError`` naming ``name`` when ``val`` is empty or shares an exact image with ``test``.

    Images are compared byte for byte (after conversion to float32), so the check catches a split taken
    from the wrong file or an index mix-up, not near-duplicates.
    """
    v, t = np.asarray(val, dtype=np.float32), np.asarray(test, dtype=np.float32)
    if v.shape[0] == 0:
        raise ValueError(f"{name} is empty; it needs at least one image")
    shared = len(_row_digests(v) & _row_digests(t))
    if shared:
        raise ValueError(f"{name} overlaps the test set ({shared} identical images); model selection must "
                         "never see test images")
