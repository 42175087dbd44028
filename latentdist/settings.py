"""The settings shared by the estimator, the complexity profile and the optimal-latent search.

:func:`~latentdist.estimator.latent_data_distance`, :func:`~latentdist.profile.complexity_profile` and
:func:`~latentdist.optimal.optimal_latent` take the same fitting arguments; each builds one validated,
frozen :class:`FitSettings` from them, so the three validate, default and record them identically. The
input checks they share (:func:`as_data`, :func:`as_latent`, :func:`check_family`) live here too.

Example
-------
>>> s = FitSettings(distance="mmd", distance_kwargs={"bandwidth": 1.0}, steps=100)
>>> s.train_distance, s.train_kwargs
('mmd', {'bandwidth': 1.0})
>>> s.evaluation_distance()([[0.0], [0.0]], [[0.0], [0.0]])
0.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from latentdist._validation import (
    check_array,
    check_batch_size,
    check_cast,
    check_device,
    check_int,
    check_lr,
    check_scalar,
    check_steps,
    to_numpy,
)
from latentdist.distances.registry import (
    BatchLoss,
    get_distance,
    get_entry,
    trainable_distances,
    training_loss,
)
from latentdist.generators import Family
from latentdist.latents import Empirical, Latent

__all__ = ["FitSettings", "as_data", "as_latent", "check_family"]


@dataclasses.dataclass(frozen=True)
class FitSettings:
    r"""Validated fitting settings of an estimate of :math:`D_{G,d}(P_z, P_x)` (docs/theory.md §5).

    Attributes
    ----------
    distance : str or callable
        Evaluation distance d, resolved by :func:`latentdist.distances.get_distance`.
    distance_kwargs : dict
        Its keyword arguments.
    train_distance : str or callable
        Training loss (defaults to ``distance``); it must be able to train
        (:attr:`latentdist.distances.DistanceEntry.trainable`).
    train_kwargs : dict
        Its keyword arguments (default: ``distance_kwargs`` when ``train_distance`` is ``distance``).
    n_restarts, steps, batch_size : int
        Restarts (>= 1), Adam steps (>= 1), minibatch size (>= 2).
    lr : float
        Initial learning rate (> 0), cosine-decayed to lr / 20.
    holdout : float in (0, 1)
        Fraction of the data held out for evaluation.
    n_eval : int or None
        Fresh latent samples per evaluation (>= 2; None: the held-out size).
    n_floor : int
        Random draws of the noise floor (>= 2).
    device : torch.device
    progress : bool

    Raises
    ------
    ValueError, TypeError
        On construction, naming the offending setting.
    """

    distance: str | Callable = "w2"
    distance_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    train_distance: str | Callable | None = None
    train_kwargs: Mapping[str, Any] | None = None
    n_restarts: int = 3
    steps: int = 500
    batch_size: int = 64
    lr: float = 1e-2
    holdout: float = 0.2
    n_eval: int | None = None
    n_floor: int = 10
    device: str | torch.device = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("holdout", check_scalar(self.holdout, "holdout", low=0.0, high=1.0, low_inclusive=False,
                                    high_inclusive=False))
        put("n_restarts", check_int(self.n_restarts, "n_restarts", low=1))
        put("steps", check_steps(self.steps))
        put("batch_size", check_batch_size(self.batch_size, low=2))
        put("lr", check_lr(self.lr))
        put("n_floor", check_int(self.n_floor, "n_floor", low=2))
        if self.n_eval is not None:
            put("n_eval", check_int(self.n_eval, "n_eval", low=2))
        for name in ("distance_kwargs", "train_kwargs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"{name} must be a dict or None, got {type(value).__name__}")
        put("distance_kwargs", dict(self.distance_kwargs or {}))
        get_distance(self.distance, **self.distance_kwargs)  # the registry rejects unknown names/options
        if self.train_distance is None:
            put("train_distance", self.distance)
        put("train_kwargs", dict(self.distance_kwargs if self.train_kwargs is None else self.train_kwargs))
        if isinstance(self.train_distance, str) and not get_entry(self.train_distance).trainable:
            raise ValueError(f"train_distance {self.train_distance!r} cannot train generators (no "
                             f"differentiable form); pass train_distance= one of {trainable_distances()}")
        put("device", check_device(self.device))
        if not isinstance(self.progress, bool):
            raise TypeError(f"progress must be a bool, got {type(self.progress).__name__}")

    def evaluation_distance(self) -> Callable[[Any, Any], Any]:
        """``d(x, y)``: the evaluation distance with its keyword arguments bound."""
        return get_distance(self.distance, **self.distance_kwargs)

    def training_loss(self) -> BatchLoss:
        """The per-member training loss (B, n, D) x (B, n, D) -> (B,) from the registry."""
        return training_loss(self.train_distance, **self.train_kwargs)

    def distance_label(self) -> str:
        """The evaluation distance's name (a callable's ``__name__``)."""
        return self.distance if isinstance(self.distance, str) else getattr(self.distance, "__name__", "fn")

    def record(self) -> dict[str, Any]:
        """Plain values for a result's ``config``."""
        return {"distance": self.distance_label(), "distance_kwargs": self.distance_kwargs,
                "train_distance": self.train_distance if isinstance(self.train_distance, str) else "callable",
                "n_restarts": self.n_restarts, "steps": self.steps, "batch_size": self.batch_size,
                "lr": self.lr, "holdout": self.holdout, "n_floor": self.n_floor, "device": str(self.device)}


def as_latent(latent: Any) -> Latent:
    """A :class:`~latentdist.latents.Latent`, or latent points (n, d) as their empirical law."""
    if isinstance(latent, Latent):
        return latent
    if isinstance(latent, (np.ndarray, torch.Tensor, list, tuple)):
        arr = check_array(latent, "latent", ndim=(1, 2))
        if arr.ndim == 1:
            raise ValueError(f"latent must be a Latent or latent points of shape (n, d), got shape "
                             f"{tuple(arr.shape)} (use z.reshape(-1, 1) for d = 1)")
        return Empirical(arr)
    raise TypeError(
        f"latent must be a Latent or an array of latent points (n, d), got {type(latent).__name__}"
    )


def as_data(data: Any) -> np.ndarray:
    """Data (n, D) (or (n, ...) images, flattened; or an object with ``.x``) as a numpy array (n, D)."""
    if hasattr(data, "x") and not isinstance(data, (np.ndarray, torch.Tensor)):
        data = data.x
    arr = check_array(data, "data")
    if arr.ndim < 2:
        raise ValueError(f"data must have shape (n, D) (or (n, ...) images), got shape {tuple(arr.shape)}"
                         f"{' (use x.reshape(-1, 1) for 1-D data)' if arr.ndim == 1 else ''}")
    if arr.shape[0] == 0 or int(np.prod(arr.shape[1:])) == 0:
        raise ValueError(f"data is empty (shape {tuple(arr.shape)}); it needs at least one sample and one "
                         "feature")
    arr = to_numpy(arr)
    check_cast(arr, np.float32, "data")  # the generators train in float32: 1e300 would become inf
    return arr.reshape(arr.shape[0], -1)


def check_family(family: Any, name: str = "family") -> Family:
    """``family`` if it is a :class:`~latentdist.generators.Family` of positive capacity."""
    if not isinstance(family, Family):
        raise TypeError(f"{name} must be a generators.Family (Linear, MLP, LipschitzMLP, ConvDecoder), "
                        f"got {type(family).__name__}")
    check_scalar(family.capacity, f"{name}.capacity", low=0.0, low_inclusive=False)
    return family
