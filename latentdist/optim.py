"""The optimiser half of the one training core: Adam with a learning-rate schedule, and one update step.

Every fit in the package (the batched generator ensembles, the optimal-latent search, the neural critic,
the flow prior, the MNIST feature classifier, the max-sliced ascent, the GAN/AE trainers) runs its steps
through :func:`latentdist.train.loop.run_loop` (progress, seeded RNG, logging, callbacks, checkpoints) and
builds its optimiser here, so the schedules are written once:

* ``'constant'``: the learning rate stays at ``lr``;
* ``'cosine'``: cosine annealing from ``lr`` to 0 over ``steps`` (``CosineAnnealingLR``);
* ``'cosine_floor'``: :math:`\\eta_t = \\eta\\,(0.05 + 0.95 \\cdot \\tfrac12 (1 + \\cos(\\pi t / T)))`, cosine
  decay to ``lr / 20`` (the estimator's schedule).

Example
-------
>>> import torch
>>> w = torch.zeros(2, requires_grad=True)
>>> opt, sched = make_optimizer([w], lr=0.1, schedule="cosine_floor", steps=10)
>>> update(opt, ((w - 1) ** 2).sum(), sched)
>>> [round(g["lr"], 4) for g in opt.param_groups]
[0.0977]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["SCHEDULES", "make_optimizer", "update", "cosine_floor"]

SCHEDULES = ("constant", "cosine", "cosine_floor")


def cosine_floor(steps: int, floor: float = 0.05):
    """The multiplier t -> floor + (1 - floor) (1 + cos(pi t / steps)) / 2 (decay to ``floor * lr``)."""
    return lambda t: floor + (1.0 - floor) * 0.5 * (1 + math.cos(math.pi * t / steps))


def make_optimizer(params: Iterable[Any], lr: float, *, schedule: str = "constant", steps: int | None = None,
                   betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0,
                   maximize: bool = False, foreach: bool | None = None
                   ) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LRScheduler | None]:
    """Adam over ``params`` (tensors or param-group dicts) and its learning-rate scheduler.

    Parameters
    ----------
    params : iterable of tensors or dicts
        As for ``torch.optim.Adam`` (groups may carry their own ``lr``).
    lr : float
        Default learning rate.
    schedule : {'constant', 'cosine', 'cosine_floor'}
        See the module docstring; the scheduler is None for ``'constant'``.
    steps : int
        Length of the schedule (needed unless ``schedule='constant'``).
    betas, weight_decay, maximize, foreach :
        Passed to ``torch.optim.Adam``.

    Returns
    -------
    (torch.optim.Adam, LRScheduler or None)
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if schedule != "constant" and (steps is None or steps < 1):
        raise ValueError(f"schedule={schedule!r} needs steps >= 1, got {steps}")
    opt = torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize,
                           foreach=foreach)
    if schedule == "cosine":
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    if schedule == "cosine_floor":
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, cosine_floor(steps))
    return opt, None


def update(opt: torch.optim.Optimizer, loss: torch.Tensor,
           sched: torch.optim.lr_scheduler.LRScheduler | None = None) -> None:
    """One step: clear the gradients, back-propagate ``loss`` (summed if it has several entries), step the
    optimiser and then the scheduler."""
    opt.zero_grad(set_to_none=True)
    (loss if loss.ndim == 0 else loss.sum()).backward()
    opt.step()
    if sched is not None:
        sched.step()
