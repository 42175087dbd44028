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
        batch_size=cfg["batch_size"], lr=cfg["lr"], seed=seed, progress=progress,
    )


def estimate_row(res: Any, **labels: Any) -> dict:
    """One tidy row: the labels plus value, restart spread and noise floor of an estimate."""
    return {**labels, "value": float(res.value), "std": float(res.std),
            "noise_floor": float(res.noise_floor), "noise_floor_std": float(res.noise_floor_std)}
