"""Sample-quality metrics: MNIST (FID, KID, precision/recall, density/coverage on the toolkit's own
classifier features) and toy-distribution metrics with known ground truth.

- :class:`MNISTFeatures`: seeded, self-trained MNIST CNN; its penultimate layer is the feature map.
- :func:`fid`, :func:`kid`, :func:`gaussian_stats`, :func:`frechet_distance`.
- :func:`precision_recall` (Kynkäänniemi et al. 2019), :func:`density_coverage` (Naeem et al. 2020).
- :func:`mnist_metrics`: all of the above on images.
- :func:`manifold_error`, :func:`mode_coverage`, :func:`distribution_distances`: toy metrics.
"""

from __future__ import annotations

from .features import FeatureRecipe, MNISTFeatures, check_mnist_images
from .fid import GaussianStats, KIDResult, fid, frechet_distance, gaussian_stats, kid
from .images import mnist_metrics
from .manifold import DensityCoverage, PrecisionRecall, density_coverage, knn_radii, precision_recall
from .toy import distribution_distances, manifold_error, mode_coverage

__all__ = [
    "MNISTFeatures",
    "FeatureRecipe",
    "check_mnist_images",
    "GaussianStats",
    "KIDResult",
    "gaussian_stats",
    "frechet_distance",
    "fid",
    "kid",
    "PrecisionRecall",
    "DensityCoverage",
    "knn_radii",
    "precision_recall",
    "density_coverage",
    "mnist_metrics",
    "manifold_error",
    "mode_coverage",
    "distribution_distances",
]
