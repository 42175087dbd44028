"""The latent-data "distance" D_{G,d}(P_z, P_x) = inf_{g in G} d(g#P_z, P_x), estimated honestly.

docs/theory.md §2 defines the quantity and §5 the estimation protocol implemented here:

1. split the data into a training part and a held-out part (seeded);
2. fit ``n_restarts`` generators g in G on minibatch estimates of d against the training part, all
   restarts at once as one batched ensemble (:mod:`latentdist.ensemble`);
3. choose the restart with the smallest *training* objective (d between g#P_z and training data);
   selecting by the held-out value would bias the estimate downwards;
4. evaluate every restart with the registry distance between g applied to fresh latent samples and the
   held-out data;
5. report the noise floor: the same distance between two disjoint data subsets, each of the
   evaluation's size, over several random draws.

Example
-------
>>> import numpy as np
>>> from latentdist.generators import Linear
>>> from latentdist.latents import Gaussian
>>> x = np.random.default_rng(0).normal(size=(600, 2)) * [2.0, 1.0]
>>> res = latent_data_distance(Gaussian(1), x, Linear(), "w2", steps=100, progress=False)
>>> res.value > 0
True
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from latentdist._seeding import SeedLike, make_rng, make_torch_generator, spawn_seeds
from latentdist._validation import (
    ArrayLike,
    check_array,
    check_device,
    check_int,
    check_scalar,
    to_numpy,
)
from latentdist.ensemble import fit_ensemble
from latentdist.generators import Family
from latentdist.latents import Empirical, Latent

__all__ = ["LatentDistanceResult", "latent_data_distance", "FLOOR_RULE_K"]

#: An estimate is "indistinguishable from the floor" when value <= floor + FLOOR_RULE_K * floor_std.
FLOOR_RULE_K = 2.0

Callback = Callable[[int, nn.Module, dict], None]


@dataclasses.dataclass(repr=False)
class LatentDistanceResult:
    """An estimate of D_{G,d}(P_z, P_x) with its uncertainty and the fitted generator.

    Attributes
    ----------
    value : float
        Held-out distance of the selected restart (the one with the smallest training objective).
    values : numpy.ndarray, shape (n_restarts,)
        Held-out distance of every restart.
    std : float
        Standard deviation of ``values`` (ddof=1); NaN with a single restart.
    noise_floor, noise_floor_std : float
        Mean and standard deviation of d between two disjoint data subsets of the evaluation's size.
    generator : torch.nn.Module
        The selected fitted generator g (outputs are flattened before distances are taken).
    history : pandas.DataFrame
        Training curve: columns ``step``, ``restart``, ``loss`` (the minibatch training loss).
    train_values : numpy.ndarray, shape (n_restarts,)
        The selection criterion: d(g#P_z, training data) of each restart.
    selected : int
        Index of the selected restart.
    config : dict
        Everything needed to reproduce the estimate (family, distance, sizes, seeds, ...).
    fit_time : float
        Seconds spent fitting (shared batched fits are split evenly among their members).
    restart_logs : list of dict
        One dict per restart, including whatever the callbacks added.
    """

    value: float
    values: np.ndarray
    std: float
    noise_floor: float
    noise_floor_std: float
    generator: nn.Module
    history: pd.DataFrame
    train_values: np.ndarray
    selected: int
    config: dict
    fit_time: float
    restart_logs: list = dataclasses.field(default_factory=list)

    @property
    def indistinguishable_from_floor(self) -> bool:
        """``value <= noise_floor + 2 * noise_floor_std`` (rule constant :data:`FLOOR_RULE_K`)."""
        return bool(self.value <= self.noise_floor + FLOOR_RULE_K * self.noise_floor_std)

    def summary(self) -> str:
        """One line such as ``'D = 0.412 ± 0.010 (floor 0.051 ± 0.004)'``."""
        spread = "n/a" if not np.isfinite(self.std) else f"{self.std:.3f}"
        text = f"D = {self.value:.3f} ± {spread} (floor {self.noise_floor:.3f} ± {self.noise_floor_std:.3f})"
        return text + (" [indistinguishable from floor]" if self.indistinguishable_from_floor else "")

    def __repr__(self) -> str:
        return f"LatentDistanceResult({self.summary()})"

    def __float__(self) -> float:
        return float(self.value)


# ---------------------------------------------------------------------------------------------- inputs


def _as_latent(latent: Any) -> Latent:
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


def _as_data(data: Any) -> np.ndarray:
    if hasattr(data, "x") and not isinstance(data, (np.ndarray, torch.Tensor)):
        data = data.x
    arr = check_array(data, "data")
    if arr.ndim < 2:
        raise ValueError(f"data must have shape (n, D) (or (n, ...) images), got shape {tuple(arr.shape)}"
                         f"{' (use x.reshape(-1, 1) for 1-D data)' if arr.ndim == 1 else ''}")
    arr = to_numpy(arr)
    return arr.reshape(arr.shape[0], -1)


def _check_family(family: Any, name: str = "family") -> Family:
    if not isinstance(family, Family):
        raise TypeError(f"{name} must be a generators.Family (Linear, MLP, LipschitzMLP, ConvDecoder), "
                        f"got {type(family).__name__}")
    check_scalar(family.capacity, f"{name}.capacity", low=0.0, low_inclusive=False)
    return family


@dataclasses.dataclass
class _Split:
    """Train/held-out split of the data plus the noise floor at the evaluation size."""

    x_train: np.ndarray
    x_held: np.ndarray
    floor: float
    floor_std: float
    floor_n: int


def split_data(x: np.ndarray, holdout: float, seed: SeedLike) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, held-out) split with ``round(holdout * n)`` held-out rows; both parts need 2 rows."""
    n = x.shape[0]
    n_held = int(round(holdout * n))
    if n_held < 2 or n - n_held < 2:
        raise ValueError(f"data has {n} samples; holdout={holdout} leaves {n - n_held} for training and "
                         f"{n_held} held out, but each part needs at least 2 samples")
    perm = make_rng(seed).permutation(n)
    return x[perm[n_held:]], x[perm[:n_held]]


def _make_split(x: np.ndarray, holdout: float, dist_fn: Callable, n_floor: int, seeds: Sequence[int],
                progress: bool) -> _Split:
    x_train, x_held = split_data(x, holdout, seeds[0])
    # The floor compares two disjoint data subsets of the evaluation's size (n_held each), drawn from
    # the whole data set so that both sides match the evaluation; capped at n // 2 when holdout > 1/2.
    from latentdist.distances import noise_floor

    size = min(x_held.shape[0], x.shape[0] // 2)
    floor = noise_floor(x, distance=dist_fn, n=size, n_repeats=n_floor, seed=seeds[1], progress=progress)
    return _Split(x_train, x_held, float(floor.mean), float(floor.std), size)


# ------------------------------------------------------------------------------------------- estimation


def _restart_seeds(seed: SeedLike, n_restarts: int) -> tuple[list[int], list[int]]:
    """(data seeds: split, floor) and one seed per restart, identical for every family of a profile."""
    seeds = spawn_seeds(seed, 2 + n_restarts)
    return seeds[:2], seeds[2:]


def _outputs(model: nn.Module, z: torch.Tensor, batch: int = 4096) -> np.ndarray:
    with torch.no_grad():
        out = [model(z[i : i + batch]).flatten(1) for i in range(0, z.shape[0], batch)]
    return to_numpy(torch.cat(out))


def _estimate_many(
    latent: Latent,
    split: _Split,
    families: Sequence[Family],
    distance: str | Callable,
    dist_fn: Callable,
    *,
    restart_seeds: Sequence[int],
    train_distance: str | Callable,
    steps: int,
    batch_size: int,
    lr: float,
    n_eval: int | None,
    device: torch.device,
    progress: bool,
    callbacks: Sequence[Callback],
    distance_kwargs: dict,
    train_kwargs: dict,
    base_config: dict,
) -> list[LatentDistanceResult]:
    """Fit every (family, restart) pair in batched groups and evaluate each; one result per family."""
    n_restarts = len(restart_seeds)
    fam_list = [f for f in families for _ in range(n_restarts)]
    seed_list = [s for _ in families for s in restart_seeds]
    fit = fit_ensemble(fam_list, seed_list, latent, split.x_train, train_distance, steps=steps,
                       batch_size=batch_size, lr=lr, device=device, progress=progress,
                       distance_kwargs=train_kwargs)
    n_held = split.x_held.shape[0]
    n_eval = n_held if n_eval is None else n_eval
    n_sel = min(split.x_train.shape[0], n_eval)
    results = []
    for k, family in enumerate(families):
        members = range(k * n_restarts, (k + 1) * n_restarts)
        values, train_values, logs = np.zeros(n_restarts), np.zeros(n_restarts), []
        for r, m in enumerate(members):
            sel_seed, eval_seed = spawn_seeds(spawn_seeds(restart_seeds[r], 4)[3], 2)
            model = fit.models[m]
            # Selection criterion: the same distance, fresh latent samples, a subset of TRAINING data.
            rng = make_rng(sel_seed)
            x_sel = split.x_train[rng.choice(split.x_train.shape[0], n_sel, replace=False)]
            z_sel = latent.sample(n_sel, seed=make_torch_generator(sel_seed)).to(device)
            train_values[r] = float(dist_fn(_outputs(model, z_sel), x_sel))
            z_eval = latent.sample(n_eval, seed=eval_seed).to(device)
            values[r] = float(dist_fn(_outputs(model, z_eval), split.x_held))
            logs.append({"restart": r, "value": values[r], "train_value": train_values[r],
                         "final_train_loss": float(fit.final_loss[m])})
        best = int(np.argmin(train_values))
        for r, m in enumerate(members):
            logs[r]["selected"] = r == best
            for cb in callbacks:
                cb(steps, fit.models[m], logs[r])
        hist = fit.history[fit.history["member"].isin(list(members))].copy()
        hist["restart"] = hist["member"] - k * n_restarts
        config = dict(base_config, family=family.label(), capacity=float(family.capacity),
                      latent=repr(latent), latent_dim=latent.dim, n_eval=n_eval, n_held=n_held,
                      n_train=split.x_train.shape[0], noise_floor_n=split.floor_n, n_restarts=n_restarts,
                      restart_seeds=list(restart_seeds), steps=steps, batch_size=batch_size, lr=lr,
                      distance=distance if isinstance(distance, str) else getattr(distance, "__name__", "fn"),
                      train_distance=train_distance if isinstance(train_distance, str) else "callable")
        results.append(LatentDistanceResult(
            value=float(values[best]), values=values,
            std=float(np.std(values, ddof=1)) if n_restarts > 1 else float("nan"),
            noise_floor=split.floor, noise_floor_std=split.floor_std, generator=fit.models[members[best]],
            history=hist[["step", "restart", "loss"]].reset_index(drop=True), train_values=train_values,
            selected=best, config=config, fit_time=fit.fit_time * n_restarts / len(fam_list),
            restart_logs=logs,
        ))
    return results


def _resolve_common(latent, data, distance, holdout, n_restarts, steps, batch_size, lr, n_eval, n_floor,
                    in_dim, distance_kwargs, train_distance, train_kwargs, device):
    """Validate the arguments shared by the estimator, the profile and the optimal-latent search."""
    from latentdist.distances import get_distance

    x = _as_data(data)
    holdout = check_scalar(holdout, "holdout", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    check_int(n_restarts, "n_restarts", low=1)
    check_int(steps, "steps", low=1)
    check_int(batch_size, "batch_size", low=2)
    check_scalar(lr, "lr", low=0.0, low_inclusive=False)
    check_int(n_floor, "n_floor", low=2)
    if n_eval is not None:
        check_int(n_eval, "n_eval", low=2)
    if distance_kwargs is not None and not isinstance(distance_kwargs, dict):
        raise TypeError(f"distance_kwargs must be a dict or None, got {type(distance_kwargs).__name__}")
    distance_kwargs = dict(distance_kwargs or {})
    dist_fn = get_distance(distance, **distance_kwargs)  # the registry rejects unknown names
    train_distance = distance if train_distance is None else train_distance
    train_kwargs = distance_kwargs if train_kwargs is None else dict(train_kwargs)
    dev = check_device(device)
    lat = None
    if latent is not None:
        lat = _as_latent(latent)
        if in_dim is not None and check_int(in_dim, "in_dim", low=1) != lat.dim:
            raise ValueError(f"in_dim={in_dim} disagrees with the latent's dimension {lat.dim}")
    return lat, x, holdout, dist_fn, train_distance, train_kwargs, distance_kwargs, dev


def latent_data_distance(
    latent: Latent | ArrayLike,
    data: ArrayLike | Any,
    family: Family,
    distance: str | Callable = "w2",
    *,
    n_restarts: int = 3,
    steps: int = 500,
    batch_size: int = 64,
    lr: float = 1e-2,
    holdout: float = 0.2,
    n_eval: int | None = None,
    n_floor: int = 10,
    in_dim: int | None = None,
    train_distance: str | Callable | None = None,
    train_kwargs: dict | None = None,
    seed: SeedLike = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
    distance_kwargs: dict | None = None,
) -> LatentDistanceResult:
    r"""Estimate :math:`D_{G,d}(P_z, P_x) = \inf_{g \in G} d(g\#P_z, P_x)` from samples (docs/theory.md §2, §5).

    The restarts are fitted together as one batched ensemble. The restart with the smallest training
    objective :math:`d(g\#\hat P_z, \hat P_x^{train})` is selected (never the smallest held-out value,
    which would bias the estimate downwards); every restart is then evaluated as
    :math:`d(g\#\hat P_z^{fresh}, \hat P_x^{held})` with ``n_eval`` fresh latent samples.

    Training losses: for ``'w1'``/``'w2'`` the exact minibatch OT plan is solved on detached costs and
    the loss is the transport cost :math:`\frac1m\sum_i \|g(z_i) - x_{\sigma(i)}\|^p` under it (envelope
    theorem: its gradient is that of :math:`W_p^p`); other distances use their differentiable estimates.

    Parameters
    ----------
    latent : Latent or array of shape (m, d)
        P_z; an array of latent points becomes their :class:`~latentdist.latents.Empirical` law.
    data : array or tensor of shape (n, D) (or (n, ...) images, flattened), or an object with ``.x``
    family : Family
        The generator family G (its capacity must be positive).
    distance : str or callable
        Evaluation distance, resolved by ``latentdist.distances.get_distance`` (e.g. ``'w2'``, ``'w1'``,
        ``'sinkhorn'``, ``'mmd'``, ``'sliced'``, ``'energy'``).
    n_restarts, steps, batch_size, lr : int, int, int, float
        Restarts, Adam steps per restart, minibatch size, initial learning rate (cosine decay to lr/20).
        Exact OT plans cost O(batch_size^3); 64 keeps w1/w2 fits fast.
    holdout : float in (0, 1)
        Fraction of the data held out for evaluation.
    n_eval : int, optional
        Fresh latent samples per evaluation; defaults to the held-out size, which is also the size of
        each side of the noise floor, so value and floor carry the same finite-sample bias.
    n_floor : int
        Random draws of the noise floor.
    in_dim : int, optional
        If given, must equal the latent's dimension (a guard for pipelines).
    train_distance : str or callable, optional
        Training loss if it should differ from ``distance`` (e.g. train with ``'w2'``, evaluate with
        ``'critic'``); ``train_kwargs`` are its keyword arguments.
    seed : int or Generator
        Fixes the split, the floor, every initialisation, batch stream and evaluation sample.
    device : str or torch.device
    progress : bool
    callbacks : sequence of callables ``cb(step, model, logs)``
        Called once per restart after evaluation with that restart's fitted generator; ``logs`` holds
        ``restart``, ``value``, ``train_value``, ``selected`` and gains whatever the callback adds.
    distance_kwargs : dict, optional
        Keyword arguments of the evaluation distance.

    Returns
    -------
    LatentDistanceResult

    Examples
    --------
    >>> from latentdist.generators import Linear
    >>> from latentdist.latents import Gaussian
    >>> import numpy as np
    >>> x = np.random.default_rng(1).normal(size=(500, 2)) * [2.0, 1.0]
    >>> r = latent_data_distance(Gaussian(1), x, Linear(bias=False), steps=50, progress=False)
    >>> r.values.shape
    (3,)
    """
    family = _check_family(family)
    lat, x, holdout, dist_fn, train_distance, train_kwargs, distance_kwargs, dev = _resolve_common(
        latent, data, distance, holdout, n_restarts, steps, batch_size, lr, n_eval, n_floor, in_dim,
        distance_kwargs, train_distance, train_kwargs, device)
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise TypeError(f"callbacks[{i}] must be callable cb(step, model, logs), got {type(cb).__name__}")
    data_seeds, restart_seeds = _restart_seeds(seed, n_restarts)
    split = _make_split(x, holdout, dist_fn, n_floor, data_seeds, progress)
    base = {"holdout": holdout, "seed": seed if isinstance(seed, int) else repr(seed), "n_floor": n_floor,
            "device": str(dev), "distance_kwargs": distance_kwargs}
    start = time.perf_counter()
    (result,) = _estimate_many(
        lat, split, [family], distance, dist_fn, restart_seeds=restart_seeds, train_distance=train_distance,
        steps=steps, batch_size=batch_size, lr=lr, n_eval=n_eval, device=dev, progress=progress,
        callbacks=callbacks, distance_kwargs=distance_kwargs, train_kwargs=train_kwargs, base_config=base)
    result.fit_time = time.perf_counter() - start
    return result
