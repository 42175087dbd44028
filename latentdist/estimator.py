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
    check_int,
    check_scalar,
    to_numpy,
)
from latentdist.fitting import fit_ensemble
from latentdist.generators import Family
from latentdist.latents import Latent
from latentdist.settings import FitSettings, as_data, as_latent, check_family

__all__ = [
    "LatentDistanceResult",
    "latent_data_distance",
    "FLOOR_RULE_K",
    "FitSettings",
    "DataSplit",
    "make_split",
    "estimate_split",
    "estimate_families",
    "split_data",
]

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


@dataclasses.dataclass
class DataSplit:
    """The data side of an estimate: train/held-out split, noise floor and the seeds of the restarts.

    Attributes
    ----------
    x_train, x_held : numpy.ndarray, shapes (n_train, D), (n_held, D)
    floor, floor_std : float
        Mean and standard deviation of the noise floor at the evaluation size.
    floor_n : int
        Size of each side of the noise floor.
    restart_seeds : list of int
        One seed per restart, the same for every family and latent fitted on this split.
    seed : int or str
        The seed the split was made with (as recorded in a result's ``config``).
    """

    x_train: np.ndarray
    x_held: np.ndarray
    floor: float
    floor_std: float
    floor_n: int
    restart_seeds: list[int]
    seed: int | str


def split_data(x: np.ndarray, holdout: float, seed: SeedLike) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, held-out) split with ``round(holdout * n)`` held-out rows; both parts need 2 rows."""
    x = check_array(x, "x", ndim=(1, 2, 3, 4))
    holdout = check_scalar(holdout, "holdout", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    n = x.shape[0]
    n_held = int(round(holdout * n))
    if n_held < 2 or n - n_held < 2:
        raise ValueError(f"data has {n} samples; holdout={holdout} leaves {n - n_held} for training and "
                         f"{n_held} held out, but each part needs at least 2 samples")
    perm = make_rng(seed).permutation(n)
    return x[perm[n_held:]], x[perm[:n_held]]


def make_split(data: ArrayLike | Any, settings: FitSettings, seed: SeedLike = 0) -> DataSplit:
    """Split ``data`` for an estimate and measure its noise floor (steps 1 and 5 of docs/theory.md §5).

    Parameters
    ----------
    data : array (n, D) (or (n, ...) images, or an object with ``.x``)
    settings : FitSettings
        ``holdout``, ``n_restarts``, ``n_floor``, the evaluation distance and ``progress`` are used.
    seed : int or Generator
        Fixes the split, the floor and the restart seeds.

    Returns
    -------
    DataSplit
    """
    x = as_data(data)
    (split_seed, floor_seed), restart_seeds = _restart_seeds(seed, settings.n_restarts)
    x_train, x_held = split_data(x, settings.holdout, split_seed)
    # The floor compares two disjoint data subsets of the evaluation's size (n_held each), drawn from
    # the whole data set so that both sides match the evaluation; capped at n // 2 when holdout > 1/2.
    from latentdist.distances import noise_floor

    size = min(x_held.shape[0], x.shape[0] // 2)
    floor = noise_floor(x, distance=settings.evaluation_distance(), n=size, n_repeats=settings.n_floor,
                        seed=floor_seed, progress=settings.progress)
    return DataSplit(x_train, x_held, float(floor.mean), float(floor.std), size, restart_seeds,
                     seed if isinstance(seed, int) else repr(seed))


def estimate_split(data: ArrayLike | Any, holdout: float,
                   seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    """The (train, held-out) rows :func:`latent_data_distance` with this ``holdout`` and ``seed`` uses.

    A search that must never see the held-out rows of a later estimate trains on the first part.
    """
    (split_seed, _), _ = _restart_seeds(seed, 1)
    return split_data(as_data(data), holdout, split_seed)


# ------------------------------------------------------------------------------------------- estimation


def _restart_seeds(seed: SeedLike, n_restarts: int) -> tuple[list[int], list[int]]:
    """(data seeds: split, floor) and one seed per restart, identical for every family of a profile."""
    seeds = spawn_seeds(seed, 2 + n_restarts)
    return seeds[:2], seeds[2:]


def _outputs(model: nn.Module, z: torch.Tensor, batch: int = 4096) -> np.ndarray:
    with torch.no_grad():
        out = [model(z[i : i + batch]).flatten(1) for i in range(0, z.shape[0], batch)]
    return to_numpy(torch.cat(out))


def estimate_families(
    latent: Latent,
    split: DataSplit,
    families: Sequence[Family],
    settings: FitSettings,
    *,
    callbacks: Sequence[Callback] = (),
) -> list[LatentDistanceResult]:
    """Fit every (family, restart) pair in batched groups and evaluate each; one result per family.

    Steps 2-4 of docs/theory.md §5 on a :class:`DataSplit`: all restarts of all families are fitted as one
    batched ensemble (:func:`~latentdist.fitting.fit_ensemble`), each restart is scored on training data
    (the selection criterion) and on the held-out rows, and the restart with the smallest training value
    is selected. ``callbacks`` are called once per restart as in :func:`latent_data_distance`.
    """
    restart_seeds, s = split.restart_seeds, settings
    n_restarts = len(restart_seeds)
    dist_fn = s.evaluation_distance()
    fam_list = [f for f in families for _ in range(n_restarts)]
    seed_list = [seed for _ in families for seed in restart_seeds]
    fit = fit_ensemble(fam_list, seed_list, latent, split.x_train, s.train_distance, steps=s.steps,
                       batch_size=s.batch_size, lr=s.lr, device=s.device, progress=s.progress,
                       distance_kwargs=s.train_kwargs)
    device = s.device
    n_held = split.x_held.shape[0]
    n_eval = n_held if s.n_eval is None else s.n_eval
    n_sel = min(split.x_train.shape[0], n_eval)
    base_config = {"holdout": s.holdout, "seed": split.seed, "n_floor": s.n_floor, "device": str(device),
                   "distance_kwargs": s.distance_kwargs}
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
                cb(s.steps, fit.models[m], logs[r])
        hist = fit.history[fit.history["member"].isin(list(members))].copy()
        hist["restart"] = hist["member"] - k * n_restarts
        config = dict(base_config, family=family.label(), capacity=float(family.capacity),
                      latent=repr(latent), latent_dim=latent.dim, n_eval=n_eval, n_held=n_held,
                      n_train=split.x_train.shape[0], noise_floor_n=split.floor_n, n_restarts=n_restarts,
                      restart_seeds=list(restart_seeds), steps=s.steps, batch_size=s.batch_size, lr=s.lr,
                      distance=s.distance_label(),
                      train_distance=s.train_distance if isinstance(s.train_distance, str) else "callable")
        results.append(LatentDistanceResult(
            value=float(values[best]), values=values,
            std=float(np.std(values, ddof=1)) if n_restarts > 1 else float("nan"),
            noise_floor=split.floor, noise_floor_std=split.floor_std, generator=fit.models[members[best]],
            history=hist[["step", "restart", "loss"]].reset_index(drop=True), train_values=train_values,
            selected=best, config=config, fit_time=fit.fit_time * n_restarts / len(fam_list),
            restart_logs=logs,
        ))
    return results


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
    r"""Estimate :math:`D_{G,d}(P_z, P_x) = \inf_{g \in G} d(g\#P_z, P_x)` from samples
    (docs/theory.md §2, §5).

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
    family = check_family(family)
    settings = FitSettings(distance=distance, distance_kwargs=distance_kwargs, train_distance=train_distance,
                           train_kwargs=train_kwargs, n_restarts=n_restarts, steps=steps,
                           batch_size=batch_size, lr=lr, holdout=holdout, n_eval=n_eval, n_floor=n_floor,
                           device=device, progress=progress)
    lat = as_latent(latent)
    if in_dim is not None and check_int(in_dim, "in_dim", low=1) != lat.dim:
        raise ValueError(f"in_dim={in_dim} disagrees with the latent's dimension {lat.dim}")
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise TypeError(f"callbacks[{i}] must be callable cb(step, model, logs), got {type(cb).__name__}")
    start = time.perf_counter()
    split = make_split(data, settings, seed)
    (result,) = estimate_families(lat, split, [family], settings, callbacks=callbacks)
    result.fit_time = time.perf_counter() - start
    return result
