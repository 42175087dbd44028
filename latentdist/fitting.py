"""Batched fitting of many generators at once (restarts x capacities of one family shape).

Fitting D_G(P_z, P_x) = inf_{g in G} d(g#P_z, P_x) means many small, independent training runs: several
restarts for every capacity of a profile. :func:`fit_ensemble` groups them by family shape
(:func:`latentdist.stacked.batch_groups`), holds each group as one stacked module
(:mod:`latentdist.stacked`) and trains it with one batched loss from the distance registry
(:func:`latentdist.distances.training_loss`): the summed loss of all members is back-propagated once, and
members do not interact (their gradients are disjoint).

Members keep their own random streams (initialisation, latent batches, data batches; :func:`member_seeds`),
so a member of an ensemble follows the same trajectory as the same seed fitted alone (to float round-off).
When the training form solves its minibatch OT plans on a thread pool (``'w1'``/``'w2'``,
:mod:`latentdist.distances.minibatch`), torch is held to one intra-op thread while it runs, since its
OpenMP workers would otherwise spin on the cores the assignment threads need.

Example
-------
>>> import torch
>>> from latentdist.generators import MLP
>>> from latentdist.latents import Gaussian
>>> x = torch.randn(500, 2) * torch.tensor([2.0, 0.5])
>>> fit = fit_ensemble(MLP(depth=1).at([4, 8]), [0, 1], Gaussian(2), x, steps=20, progress=False)
>>> [type(m).__name__ for m in fit.models]
['Sequential', 'Sequential']
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from latentdist._seeding import SeedLike, make_torch_generator, spawn_seeds
from latentdist._validation import check_device, check_int, check_lr, check_steps, to_tensor
from latentdist.distances.registry import training_loss
from latentdist.generators import Family
from latentdist.latents import Latent
from latentdist.optim import make_optimizer, update
from latentdist.stacked import LoopGenerators, StackedGenerators, batch_groups, make_generators

__all__ = ["EnsembleFit", "fit_ensemble", "member_seeds"]


@dataclasses.dataclass
class EnsembleFit:
    """Result of :func:`fit_ensemble`.

    Attributes
    ----------
    models : list of nn.Module
        Fitted members, each a standalone module of its own family (order of the input).
    history : pandas.DataFrame
        Columns ``step``, ``member``, ``loss`` (the minibatch training loss, e.g. W_2^2 for ``'w2'``).
    final_loss : numpy.ndarray, shape (B,)
        Mean training loss of each member over the last 10% of steps.
    fit_time : float
        Wall-clock seconds of the whole fit.
    """

    models: list[nn.Module]
    history: pd.DataFrame
    final_loss: np.ndarray
    fit_time: float


def member_seeds(seed: SeedLike) -> dict[str, int]:
    """The independent streams of one member: initialisation, latent batches, data batches."""
    init, z_stream, x_stream = spawn_seeds(seed, 3)
    return {"init": init, "z": z_stream, "x": x_stream}


def _train_group(gens: StackedGenerators | LoopGenerators, streams: list[dict[str, int]], latent: Latent,
                 x: torch.Tensor, loss_fn: Callable, steps: int, batch_size: int, lr: float, progress: bool,
                 log_every: int) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Adam with cosine decay on one stacked group, run by the package's training loop.

    Returns each member's mean loss over the last 10% of steps, and the logged (step, member, loss).
    """
    from latentdist.train.loop import run_loop  # the train package imports the distances: keep it lazy

    z_gens = [make_torch_generator(s["z"]) for s in streams]
    x_gens = [make_torch_generator(s["x"]) for s in streams]
    opt, sched = make_optimizer(gens.parameters(), lr, schedule="cosine_floor", steps=steps, foreach=True)
    tail = max(1, steps // 10)
    tail_sum = np.zeros(len(streams))
    log = []

    def step_fn(step: int) -> dict:
        nonlocal tail_sum
        z = latent.sample_each(batch_size, z_gens, device=x.device)
        idx = torch.stack([torch.randint(x.shape[0], (batch_size,), generator=g) for g in x_gens])
        losses = loss_fn(gens(z), x[idx.to(x.device)])
        update(opt, losses, sched)
        vals = losses.detach().cpu().numpy()
        if step >= steps - tail:
            tail_sum += vals
        if step % log_every == 0 or step == steps - 1:
            log.extend((step, j, float(v)) for j, v in enumerate(vals))
        return {}

    run_loop(step_fn, steps=steps, progress=progress, desc=f"fitting {len(streams)} generators")
    return tail_sum / tail, log


@contextlib.contextmanager
def _intra_op_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: leave them), then restore the setting."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def fit_ensemble(
    families: Sequence[Family],
    seeds: Sequence[SeedLike],
    latent: Latent,
    x_train: Any,
    distance: str | Callable = "w2",
    *,
    steps: int = 500,
    batch_size: int = 64,
    lr: float = 1e-2,
    device: str | torch.device = "cpu",
    progress: bool = True,
    distance_kwargs: dict | None = None,
    log_every: int = 10,
) -> EnsembleFit:
    r"""Fit B generators g_b in G_{c_b} to minimise minibatch estimates of d(g_b#P_z, P_x), batched.

    Each member minimises :math:`\mathbb{E}\,\ell(g_b(z_{1:m}), x_{1:m})` with Adam (cosine decay of the
    learning rate to ``lr / 20``), where :math:`z_i \sim P_z` and :math:`x_i` are drawn with replacement
    from ``x_train``, and :math:`\ell` is :func:`~latentdist.distances.training_loss` of ``distance``. The
    summed loss of all members is back-propagated once; members do not interact (their gradients are
    disjoint).

    Parameters
    ----------
    families : sequence of Family, length B
    seeds : sequence of int or Generator, length B
        One seed per member; it fixes the member's initialisation and its batch streams
        (:func:`member_seeds`), so member b matches a single fit with ``seeds[b]``.
    latent : Latent
        Source P_z of dimension d.
    x_train : array or tensor, shape (n, ...)
        Training data; rows are flattened to length D.
    distance : str or callable
        Training loss, resolved by the registry (:func:`latentdist.distances.training_loss`).
    steps, batch_size, lr : int, int, float
    device : str or torch.device
    progress : bool
    distance_kwargs : dict, optional
        Keyword arguments of the training distance.
    log_every : int
        History is recorded every ``log_every`` steps (and at the last step).

    Returns
    -------
    EnsembleFit
    """
    import time

    families = list(families)
    seeds = list(seeds)
    if len(families) != len(seeds) or not families:
        raise ValueError(f"families and seeds must be non-empty and of equal length, got {len(families)} "
                         f"and {len(seeds)}")
    steps = check_steps(steps)
    batch_size = check_int(batch_size, "batch_size", low=2)
    lr = check_lr(lr, "lr")
    log_every = check_int(log_every, "log_every", low=1)
    dev = check_device(device)
    x = to_tensor(x_train, dtype=torch.float32, device=dev).detach()
    x = x.reshape(x.shape[0], -1)
    loss_fn = training_loss(distance, **(distance_kwargs or {}))
    streams = [member_seeds(s) for s in seeds]
    start = time.perf_counter()

    models: list[nn.Module | None] = [None] * len(families)
    final = np.zeros(len(families))
    records: list[tuple[int, int, float]] = []
    for group in batch_groups(families):
        gens = make_generators([families[i] for i in group], [streams[i]["init"] for i in group],
                               latent.dim, x.shape[1], dev)
        # The per-member assignment threads of w1/w2 need the cores, and torch's OpenMP workers, spinning
        # between the tiny batched ops, would take them (16 width-16 fits, w2, 2 cores: 1.15-1.23 s with
        # torch's 2 threads, 0.75-1.07 s with 1; benchmarks/README.md).
        uses_pool = getattr(loss_fn, "uses_pool", None)
        pooled = uses_pool is not None and uses_pool(len(group), x.shape[1])
        with _intra_op_threads(1 if pooled and dev.type == "cpu" else None):
            tail_loss, log = _train_group(gens, [streams[i] for i in group], latent, x, loss_fn, steps,
                                          batch_size, lr, progress, log_every)
        records += [(step, group[j], v) for step, j, v in log]
        for j, i in enumerate(group):
            models[i] = gens.member(j).eval()
            final[i] = tail_loss[j]
    history = pd.DataFrame(records, columns=["step", "member", "loss"]).sort_values(["member", "step"])
    return EnsembleFit(models, history.reset_index(drop=True), final, time.perf_counter() - start)
