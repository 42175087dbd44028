"""Small helpers shared by the experiment modules: config -> library objects, one estimate -> one row."""

from __future__ import annotations

from typing import Any

from latentdist.generators import MLP, Family, LipschitzMLP

__all__ = ["make_family", "estimate_row", "estimate", "family_at"]


def make_family(kind: str, capacity: float, width: int, depth: int) -> Family:
    """The generator family of an experiment config: ``'lipschitz'`` (capacity = L) or ``'mlp'`` (= width)."""
    if kind == "lipschitz":
        return LipschitzMLP(lipschitz=float(capacity), width=width, depth=depth)
    if kind == "mlp":
        return MLP(width=int(capacity), depth=depth)
    raise ValueError(f"unknown family {kind!r} in the experiment config; expected 'lipschitz' or 'mlp'")


def family_at(kind: str, capacities: list[float], width: int, depth: int) -> list[Family]:
    """The nested sequence G_c for the configured capacities."""
    return [make_family(kind, c, width, depth) for c in capacities]


def estimate(latent: Any, data: Any, family: Family, distance: str, cfg: dict, *, seed: int,
             progress: bool) -> Any:
    """``latent_data_distance`` with the optimisation settings of an experiment config."""
    from latentdist.estimator import latent_data_distance

    return latent_data_distance(
        latent, data, family, distance, n_restarts=cfg["restarts"], steps=cfg["steps"],
        batch_size=cfg["batch_size"], lr=cfg["lr"], holdout=cfg.get("holdout", 0.2), seed=seed,
        progress=progress,
    )


def estimate_row(res: Any, **labels: Any) -> dict:
    """One tidy row: the labels plus value, restart spread and noise floor of an estimate."""
    return {**labels, "value": float(res.value), "std": float(res.std),
            "noise_floor": float(res.noise_floor), "noise_floor_std": float(res.noise_floor_std)}


def load_toy(spec: dict, n: int, seed: int, noise: float = 0.0) -> Any:
    """A configured toy dataset (``{'name': ..., 'params': {...}}``) with its samples put at the
    'moment' normalisation (zero mean, E||x||^2 = D), so capacities mean the same on every dataset.

    Returns ``(dataset, x)`` with ``x`` a float32 tensor of shape (n, D).
    """
    import torch

    from latentdist.data import make_dataset
    from latentdist.latents import normalize_samples

    ds = make_dataset(spec["name"], n, noise=noise, seed=seed, **spec.get("params", {}))
    x = normalize_samples(torch.as_tensor(ds.x, dtype=torch.float32), "moment")
    return ds, x


def data_affine(ds: Any, x: Any) -> tuple:
    """The isotropic map u -> (u - shift) * scale that :func:`load_toy` applied (for modes and mode std)."""
    import numpy as np

    raw = np.asarray(ds.x, dtype=np.float64)
    shift = raw.mean(0)
    scale = float(np.asarray(x, dtype=np.float64).std() / (raw - shift).std())
    return shift, scale


def standard_latents(dim: int, shaped_like: Any = None) -> dict:
    """N(0, I), uniform and (optionally) a data-shaped latent, all at the 'moment' normalisation.

    ``shaped_like`` is an independent sample of the data (n, dim): its empirical law, normalised, is the
    most data-dependent latent there is; a generator then needs only a rescaling.
    """
    from latentdist.latents import Empirical, Gaussian, Uniform, normalize

    lat = {"gaussian": normalize(Gaussian(dim), "moment"), "uniform": normalize(Uniform(dim), "moment")}
    if shaped_like is not None:
        lat["data-shaped"] = normalize(Empirical(shaped_like), "moment")
    return lat
