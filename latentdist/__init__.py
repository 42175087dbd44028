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

_SUBMODULES = (
    "data",
    "distances",
    "generators",
    "latents",
    "estimator",
    "ensemble",
    "profile",
    "optimal",
    "complexity",
    "train",
    "metrics",
    "experiments",
    "cli",
)

# Top-level conveniences: name -> submodule that defines it.
_EXPORTS = {
    "make_dataset": "data",
    "available_datasets": "data",
    "load_mnist": "data",
    "load_digits": "data",
    "get_distance": "distances",
    "available_distances": "distances",
    "latent_data_distance": "estimator",
    "LatentDistanceResult": "estimator",
    "complexity_profile": "profile",
    "eps_complexity": "profile",
    "plot_profile": "profile",
    "optimal_latent": "optimal",
    "normalize": "latents",
    "CheckpointError": "_io",
}

__all__ = ["__version__", *_SUBMODULES, *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'latentdist' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
