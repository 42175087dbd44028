"""Complexity proxies logged during training.

**Callback protocol** (shared by the trainers in ``latentdist.train`` and by
``latentdist.estimator``): a callback is any callable ``cb(step: int, model: nn.Module, logs: dict)
-> None``. The trainer calls it after every optimisation step with the step number, the model being
trained (for a GAN or autoencoder: the generator / decoder) and the dict of that step's logged values;
the callback may add entries to ``logs``, and the trainer stores ``logs`` in its history. Callbacks
must not change the model's parameters or its train/eval mode.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from latentdist._seeding import SeedLike, spawn_seeds
from latentdist._validation import check_int, check_option
from latentdist.complexity._common import is_latent, latent_points
from latentdist.complexity.jacobian import jacobian_spectrum
from latentdist.complexity.lipschitz import lipschitz_lower, lipschitz_upper
from latentdist.complexity.paths import linear_regions, path_length
from latentdist.complexity.report import param_count

__all__ = ["ComplexityCallback", "CALLBACK_PROXIES", "DEFAULT_PROXIES"]

DEFAULT_PROXIES = ("lipschitz_upper", "lipschitz_lower", "path_length", "jacobian_frobenius")

CALLBACK_PROXIES = (
    "lipschitz_upper",
    "lipschitz_lower",
    "path_length",
    "jacobian_frobenius",
    "numerical_rank",
    "local_dim",
    "linear_regions",
    "params",
)


class ComplexityCallback:
    """Log generator-complexity proxies every ``every`` steps.

    The latent points are drawn once, at construction, so the logged values of successive steps are
    measured at the same z and differ only because the model changed. The model is switched to eval
    mode for the measurement (each module's previous mode is restored); forward-only proxies run
    under ``torch.no_grad``. A proxy that does not apply to the model (e.g. ``lipschitz_upper`` of a
    residual network) is logged as NaN, with one warning.

    Parameters
    ----------
    latent : latent object or array-like, shape (n, d)
    every : int
        Measure at steps divisible by ``every``.
    n : int
        Points drawn from a latent object.
    proxies : tuple of str
        Any of ``CALLBACK_PROXIES``.
    seed : int or Generator
    prefix : str
        Prepended to every key written into ``logs``.

    Examples
    --------
    >>> cb = ComplexityCallback(torch.randn(16, 2), every=10, proxies=("lipschitz_upper",))
    >>> logs = {}
    >>> cb(10, nn.Sequential(nn.Linear(2, 3)), logs)
    >>> sorted(logs)
    ['lipschitz_upper']
    """

    def __init__(
        self,
        latent: Any,
        every: int = 100,
        n: int = 256,
        proxies: tuple[str, ...] = DEFAULT_PROXIES,
        seed: SeedLike = 0,
        prefix: str = "",
    ):
        self.every = check_int(every, "every", low=1)
        if isinstance(proxies, str):
            raise TypeError(f"proxies must be a sequence of names from {list(CALLBACK_PROXIES)}, got a str")
        self.proxies = tuple(check_option(p, "proxies", CALLBACK_PROXIES) for p in proxies)
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        self.prefix = prefix
        self._seeds = spawn_seeds(seed, 3)
        self.z = latent_points(
            latent, n, self._seeds[0], device=torch.device("cpu"), dtype=torch.float32, min_samples=1
        )
        self._latent_is_object = is_latent(latent)
        self._warned: set[str] = set()

    def __call__(self, step: int, model: nn.Module, logs: dict) -> None:
        step = check_int(step, "step", low=0)
        if not isinstance(logs, dict):
            raise TypeError(f"logs must be a dict, got {type(logs).__name__}")
        if step % self.every:
            return
        param = next(model.parameters(), None)
        z = self.z.to(device=param.device, dtype=param.dtype) if param is not None else self.z
        was_training = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            for name in self.proxies:
                logs[self.prefix + name] = self._measure(name, model, z)
        finally:
            for m, mode in was_training:
                m.training = mode

    def _measure(self, name: str, model: nn.Module, z: torch.Tensor) -> float:
        try:
            if name == "params":
                return float(param_count(model))
            if name == "lipschitz_upper":
                with torch.no_grad():
                    return float(lipschitz_upper(model, in_shape=(z.shape[1],)))
            if name == "lipschitz_lower":
                return lipschitz_lower(model, z, seed=self._seeds[1])
            if name == "path_length":
                with torch.no_grad():
                    return path_length(model, z, seed=self._seeds[1])
            if name == "linear_regions":
                return linear_regions(model, latent=z[:4], seed=self._seeds[2], progress=False).mean
            spec = jacobian_spectrum(model, z)
            return {"jacobian_frobenius": spec.frobenius, "numerical_rank": spec.numerical_rank}.get(
                name, spec.local_dim
            )
        except ValueError as exc:
            if name not in self._warned:
                self._warned.add(name)
                warnings.warn(f"ComplexityCallback: {name} logged as NaN: {exc}", stacklevel=3)
            return math.nan
