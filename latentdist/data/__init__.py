"""Datasets: toy distributions with ground truth, real MNIST, and scikit-learn's 8x8 digits.

- :func:`make_dataset` / :func:`available_datasets`: toy data with known latent, support,
  intrinsic dimension and component count (:class:`ToyDataset`).
- :func:`load_mnist`, :func:`read_idx`, :func:`download_mnist`, :func:`ensure_mnist`: MNIST from the
  IDX files, fetched into the user cache on first use (:class:`MNISTUnavailableError` when it cannot be).
- :func:`load_digits`: the 8x8 digits bundled with scikit-learn.
"""

from __future__ import annotations

from ._dataset import ToyDataset
from .digits import load_digits
from .mnist import MNISTUnavailableError, download_mnist, ensure_mnist, load_mnist, read_idx
from .toy import available_datasets, dataset_keywords, make_dataset, random_isometry

__all__ = [
    "ToyDataset",
    "make_dataset",
    "available_datasets",
    "dataset_keywords",
    "random_isometry",
    "load_mnist",
    "read_idx",
    "download_mnist",
    "ensure_mnist",
    "MNISTUnavailableError",
    "load_digits",
]
