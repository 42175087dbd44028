"""A second view of MNIST sample quality, less dominated by blur, and calibration images for it.

FID in the feature space of the toolkit's classifier mostly measures blur: a Gaussian blur of real test
digits with sigma = 1 pixel already scores as badly as a weak generator. So every FID table of R5 comes
with calibration rows (real digits blurred at several sigmas, real digits with pixel noise) and with
distances computed on the pixels themselves, where blur costs little mass: the sliced 2-Wasserstein
distance (:func:`latentdist.distances.sliced_wasserstein`, 128 directions) and the unbiased Gaussian-kernel
MMD² (median bandwidth, :func:`latentdist.distances.mmd2`) on a capped subsample. Plus the digit-class
histogram of samples under the classifier, as entropy (nats; log 10 = 2.303 is uniform) and the total
variation distance from the uniform histogram.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from latentdist._seeding import SeedLike, make_rng, spawn_seeds
from latentdist._validation import check_int, check_scalar, to_numpy

__all__ = ["blur_images", "noisy_images", "calibration_images", "class_histogram", "pixel_distances"]


def _images(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(to_numpy(x), dtype=np.float32)
    if arr.ndim == 2 and arr.shape[1] == 784:
        arr = arr.reshape(-1, 1, 28, 28)
    if arr.ndim != 4 or arr.shape[1:] != (1, 28, 28):
        raise ValueError(f"{name} must have shape (n, 1, 28, 28) or (n, 784), got {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} must contain at least one image")
    return arr


def blur_images(images: Any, sigma: float) -> np.ndarray:
    """Each image convolved with a Gaussian of std ``sigma`` pixels (reflecting borders), (n, 1, 28, 28)."""
    sigma = check_scalar(sigma, "sigma", low=0.0)
    x = _images(images, "images")
    return gaussian_filter(x, sigma=(0, 0, sigma, sigma)).astype(np.float32)


def noisy_images(images: Any, std: float, *, seed: SeedLike = 0) -> np.ndarray:
    """clip(x + N(0, std^2), 0, 1) pixel-wise, (n, 1, 28, 28)."""
    std = check_scalar(std, "std", low=0.0)
    x = _images(images, "images")
    return np.clip(x + std * make_rng(seed).standard_normal(x.shape, dtype=np.float32), 0.0, 1.0)


def calibration_images(images: Any, *, sigmas=(0.5, 1.0, 1.5), noise_std: float = 0.1,
                       seed: SeedLike = 0) -> dict[str, np.ndarray]:
    """``{'real': x, 'blur s': blur(x, s) for s in sigmas, 'noise t': noisy(x, t)}``: the rows a perfect,
    a blurry and a noisy generator would produce when ``images`` are real digits held out from the
    reference set."""
    x = _images(images, "images")
    out = {"real": x}
    for s in sigmas:
        out[f"blur {float(s):g}"] = blur_images(x, s)
    out[f"noise {float(noise_std):g}"] = noisy_images(x, noise_std, seed=seed)
    return out


def class_histogram(labels: Any, n_classes: int = 10) -> dict[str, float]:
    """Entropy (nats) of the predicted-class histogram and its total-variation distance from uniform.

    TV(p, u) = 1/2 sum_k |p_k - 1/K|; 0 for a perfectly balanced sampler, 1 - 1/K for one class only.

    Examples
    --------
    >>> class_histogram([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])["tv_uniform"]
    0.0
    """
    n_classes = check_int(n_classes, "n_classes", low=1)
    y = np.asarray(labels).ravel()
    if y.size == 0:
        raise ValueError("labels must not be empty")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got range [{y.min()}, {y.max()}]")
    p = np.bincount(y.astype(np.int64), minlength=n_classes) / y.size
    nz = p[p > 0]
    return {"class_entropy": float(-(nz * np.log(nz)).sum()),
            "class_tv_uniform": float(0.5 * np.abs(p - 1.0 / n_classes).sum())}


def pixel_distances(real: Any, fake: Any, *, mmd_n: int = 1000, seed: SeedLike = 0) -> dict[str, float]:
    """Sliced W2 (all images) and MMD² (first ``mmd_n`` of each, Gaussian kernel) between flattened images."""
    from latentdist.distances import mmd2, sliced_wasserstein

    mmd_n = check_int(mmd_n, "mmd_n", low=2)
    r = torch.from_numpy(_images(real, "real").reshape(-1, 784))
    f = torch.from_numpy(_images(fake, "fake").reshape(-1, 784))
    s_sw, s_mmd = spawn_seeds(seed, 2)
    return {"sw2_pixels": float(sliced_wasserstein(r, f, seed=s_sw)),
            "mmd_pixels": float(mmd2(r[:mmd_n], f[:mmd_n], seed=s_mmd))}
