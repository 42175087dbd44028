"""All MNIST sample-quality metrics in one call, on images rather than features."""

from __future__ import annotations

from typing import Any

import torch

from latentdist._seeding import SeedLike
from latentdist._validation import ArrayLike, check_int

from .features import MNISTFeatures
from .fid import fid, kid
from .manifold import density_coverage, precision_recall

__all__ = ["mnist_metrics"]


def mnist_metrics(
    real_images: ArrayLike,
    fake_images: ArrayLike,
    *,
    features: MNISTFeatures | None = None,
    k: int = 5,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: SeedLike = 0,
    device: str | torch.device | None = "cpu",
) -> dict[str, Any]:
    """FID, KID, precision/recall and density/coverage of generated MNIST images.

    All metrics are computed on the 128-D penultimate features of the toolkit's own classifier
    (:class:`MNISTFeatures`), never on downloaded weights, so the numbers are comparable within this
    toolkit but not with published Inception-based scores.

    Parameters
    ----------
    real_images, fake_images : array-like or torch.Tensor, shape (n, 1, 28, 28) or (n, 784)
        Pixel values in [0, 1]. FID needs a few thousand images per side to be stable; it is biased
        upwards at small ``n``, so compare models only at equal ``n``.
    features : MNISTFeatures, optional
        Default: ``MNISTFeatures.load_or_train(device=device)`` (trains once, then cached).
    k : int
        Neighbourhood size for precision/recall and density/coverage (Naeem et al. recommend 5).
    kid_subsets, kid_subset_size : int
        KID subsets; the size is capped at the smaller image count.
    seed : int or Generator
        Seeds the KID subsets.
    device : str or torch.device

    Returns
    -------
    dict
        ``fid``, ``kid_mean``, ``kid_std``, ``precision``, ``recall``, ``density``, ``coverage``,
        ``n_real``, ``n_fake``, ``k``, ``features`` (the classifier's ``recipe_hash``).

    Examples
    --------
    >>> from latentdist.data import load_mnist  # doctest: +SKIP
    >>> real, _ = load_mnist("test", n=2000)  # doctest: +SKIP
    >>> mnist_metrics(real[:1000], real[1000:])["fid"]  # doctest: +SKIP
    """
    if features is None:
        features = MNISTFeatures.load_or_train(device=device)
    elif not isinstance(features, MNISTFeatures):
        raise TypeError(f"features must be an MNISTFeatures instance, got {type(features).__name__}")
    k = check_int(k, "k", low=1)
    kid_subset_size = check_int(kid_subset_size, "kid_subset_size", low=2)
    fr = features.features(real_images)
    ff = features.features(fake_images)
    k_res = kid(fr, ff, n_subsets=kid_subsets, subset_size=min(kid_subset_size, len(fr), len(ff)), seed=seed)
    pr = precision_recall(fr, ff, k=k, device=device)
    dc = density_coverage(fr, ff, k=k, device=device)
    return {
        "fid": fid(fr, ff),
        "kid_mean": k_res.mean,
        "kid_std": k_res.std,
        "precision": pr.precision,
        "recall": pr.recall,
        "density": dc.density,
        "coverage": dc.coverage,
        "n_real": len(fr),
        "n_fake": len(ff),
        "k": k,
        "features": features.recipe_hash,
    }
