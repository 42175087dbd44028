"""Sample-based distances between empirical measures, their uncertainty, and one registry.

Every distance takes samples ``x`` (n, D) and ``y`` (m, D), numpy or torch, and returns a float, or a
differentiable 0-d tensor when an input requires grad (w1, w2, sinkhorn, sliced, max_sliced, mmd,
energy). Other modules resolve distances by name through :func:`get_distance`.
"""

from .critic import critic_distance
from .gaussian import bures_wasserstein, gaussian_w2
from .kernel import energy_distance, kernel_matrix, median_bandwidth, mmd2
from .registry import (
    DIFFERENTIABLE,
    DistanceEntry,
    available_distances,
    get_distance,
    get_entry,
    register_distance,
    trainable_distances,
    training_loss,
    unregister_distance,
)
from .sinkhorn import sinkhorn_divergence
from .sliced import max_sliced_wasserstein, sliced_wasserstein
from .uncertainty import BootstrapResult, NoiseFloor, TwoSampleResult, bootstrap, noise_floor, two_sample_test
from .wasserstein import wasserstein

__all__ = [
    "wasserstein",
    "sinkhorn_divergence",
    "sliced_wasserstein",
    "max_sliced_wasserstein",
    "mmd2",
    "energy_distance",
    "median_bandwidth",
    "kernel_matrix",
    "critic_distance",
    "bures_wasserstein",
    "gaussian_w2",
    "get_distance",
    "available_distances",
    "register_distance",
    "unregister_distance",
    "get_entry",
    "DistanceEntry",
    "trainable_distances",
    "training_loss",
    "DIFFERENTIABLE",
    "bootstrap",
    "noise_floor",
    "two_sample_test",
    "BootstrapResult",
    "NoiseFloor",
    "TwoSampleResult",
]
