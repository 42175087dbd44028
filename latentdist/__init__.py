"""latentdist: latent-data distances and generator complexity.

Implements the latent-data "distance" of Hu et al. (NeurIPS 2023),

    D_G(P_z, P_x) = inf_{g in G} d(g # P_z, P_x),

with the sample-based distances d, generator families G indexed by capacity,
complexity proxies, GAN and Decoupled-Autoencoder trainers, and metrics.

Subpackages are imported lazily so ``import latentdist`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Subpackages and modules reachable as attributes (imported on first access). ``cli`` and ``experiments``
# pull in matplotlib and the experiment configs, so they stay out of ``__all__``.
_SUBMODULES = (
    "data",
    "distances",
    "generators",
    "latents",
    "settings",
    "estimator",
    "stacked",
    "fitting",
    "ensemble",
    "profile",
    "optimal",
    "complexity",
    "train",
    "metrics",
    "experiments",
    "cli",
)

# The public API: name -> submodule that defines it (imported on first access).
_EXPORTS = {
    # data
    "make_dataset": "data",
    "available_datasets": "data",
    "load_mnist": "data",
    "load_digits": "data",
    # distances
    "get_distance": "distances",
    "available_distances": "distances",
    "register_distance": "distances",
    "unregister_distance": "distances",
    "trainable_distances": "distances",
    "noise_floor": "distances",
    "bootstrap": "distances",
    "two_sample_test": "distances",
    # generator families
    "Family": "generators",
    "Linear": "generators",
    "MLP": "generators",
    "LipschitzMLP": "generators",
    "ConvDecoder": "generators",
    # latents
    "Latent": "latents",
    "Gaussian": "latents",
    "Uniform": "latents",
    "Discrete": "latents",
    "Empirical": "latents",
    "Mixture": "latents",
    "Pushforward": "latents",
    "normalize": "latents",
    "make_latent": "latents",
    # estimation
    "FitSettings": "settings",
    "latent_data_distance": "estimator",
    "LatentDistanceResult": "estimator",
    "fit_ensemble": "fitting",
    "EnsembleFit": "fitting",
    "complexity_profile": "profile",
    "eps_complexity": "profile",
    "plot_profile": "profile",
    "optimal_latent": "optimal",
    "OptimalLatentResult": "optimal",
    # training
    "train_gan": "train",
    "train_autoencoder": "train",
    "train_dae": "train",
    "fit_prior": "train",
    # reliability: the one error every damaged checkpoint or cache file raises
    "CheckpointError": "_io",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'latentdist' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})
