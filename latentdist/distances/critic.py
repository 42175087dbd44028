"""Neural-critic distance: an IPM over a controlled class of MLP critics, trained on one split and
evaluated on a held-out split."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._seeding import SeedLike, make_rng, make_torch_generator, seeded
from .._validation import (
    check_device,
    check_int,
    check_lr,
    check_option,
    check_pair,
    check_scalar,
    check_steps,
    to_tensor,
)
from ..generators import MLP
from ..optim import make_optimizer, update

__all__ = ["critic_distance", "make_critic"]


def make_critic(dim: int, width: int, depth: int, penalty: str, generator: torch.Generator) -> nn.Module:
    """The generators' MLP R^dim -> R (``depth`` hidden layers of ``width`` ReLU units) in float64, every
    parameter drawn from ``generator`` (PyTorch's default uniform rule); with ``penalty='spectral'`` every
    linear layer is spectrally normalized, so the critic is 1-Lipschitz (ReLU is 1-Lipschitz)."""
    net = MLP(width=width, depth=depth, activation="relu").build(dim, 1).double()
    for i, lin in enumerate(net):
        if not isinstance(lin, nn.Linear):
            continue
        with torch.no_grad():
            bound = 1.0 / lin.in_features**0.5
            lin.weight.uniform_(-bound, bound, generator=generator)
            lin.bias.uniform_(-bound, bound, generator=generator)
        if penalty == "spectral":
            # spectral_norm draws its power-iteration vectors from the global RNG (forked here); redraw
            # them from our generator so the critic is reproducible.
            with seeded(None):
                lin = nn.utils.parametrizations.spectral_norm(lin)
            sn = lin.parametrizations.weight[0]
            with torch.no_grad():
                for buf in (sn._u, sn._v):
                    buf.normal_(generator=generator)
                    buf /= buf.norm()
            net[i] = lin
    return net


def critic_distance(
    x: Any,
    y: Any,
    *,
    width: int = 64,
    depth: int = 2,
    steps: int = 500,
    penalty: str = "gp",
    gp_weight: float = 10.0,
    lr: float = 1e-3,
    batch_size: int = 256,
    holdout: float = 0.5,
    seed: SeedLike = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> float:
    r"""Held-out neural IPM: :math:`\mathbb{E}_{x}\,f(x) - \mathbb{E}_{y}\,f(y)` on held-out samples, for a
    critic f trained on the other samples to maximize the same difference.

    Critic class: an MLP with ``depth`` hidden ReLU layers of ``width`` units. ``penalty='spectral'``
    spectrally normalizes every layer, so f is 1-Lipschitz and (since f is independent of the held-out
    split) the result is an unbiased estimate of :math:`E_P f - E_Q f \le W_1(P, Q)`: a lower bound on
    W1 over a controlled class. ``penalty='gp'`` is WGAN-GP (Gulrajani et al. 2017): the training loss
    adds ``gp_weight * (||grad f(u)|| - 1)^2`` at random interpolates ``u``, a soft 1-Lipschitz
    constraint, so the value approximates (but is not guaranteed below) W1. Float only; a negative
    value means the critic found nothing that generalizes.

    Parameters
    ----------
    x, y : array or tensor, shapes (n, D), (m, D)
    width, depth : int
        Critic capacity.
    steps : int
        Adam steps (minibatches of ``batch_size`` from each training split).
    penalty : {'gp', 'spectral'}
    gp_weight, lr, batch_size : training settings
    holdout : float in (0, 1)
        Fraction of each sample kept for evaluation.
    seed : int or Generator
        Seeds the split, the initialization and the minibatches.
    device : str or torch.device
    progress : bool

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(400, 2)); y = rng.normal(size=(400, 2)) + 2.0
    >>> d = critic_distance(x, y, penalty='spectral', steps=300, progress=False)
    >>> 1.5 < d <= 2 * 2 ** 0.5 + 0.3   # W1 = ||(2, 2)|| = 2.83; the bound is loose but positive
    True
    """
    x, y = check_pair(x, y, min_samples=4)
    width = check_int(width, "width", low=1)
    depth = check_int(depth, "depth", low=1)
    steps = check_steps(steps)
    batch_size = check_int(batch_size, "batch_size", low=1)
    penalty = check_option(penalty, "penalty", ("gp", "spectral"))
    gp_weight = check_scalar(gp_weight, "gp_weight", low=0.0)
    lr = check_lr(lr, "lr")
    holdout = check_scalar(holdout, "holdout", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    dev = check_device(device)
    rng = make_rng(seed)
    gen = make_torch_generator(int(rng.integers(2**62)))
    xt = to_tensor(x, dtype=torch.float64, device=dev).detach()
    yt = to_tensor(y, dtype=torch.float64, device=dev).detach()

    def split(t: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        n_eval = int(round(holdout * len(t)))
        if n_eval < 2 or len(t) - n_eval < 2:
            raise ValueError(f"holdout={holdout} leaves fewer than 2 samples of {name} on one side")
        perm = torch.as_tensor(rng.permutation(len(t)), device=dev)
        return t[perm[n_eval:]], t[perm[:n_eval]]

    (x_tr, x_ev), (y_tr, y_ev) = split(xt, "x"), split(yt, "y")
    critic = make_critic(xt.shape[1], width, depth, penalty, gen).to(dev)
    opt, _ = make_optimizer(critic.parameters(), lr, betas=(0.5, 0.9))

    def step_fn(step: int) -> dict:
        xb = x_tr[torch.as_tensor(rng.integers(0, len(x_tr), batch_size), device=dev)]
        yb = y_tr[torch.as_tensor(rng.integers(0, len(y_tr), batch_size), device=dev)]
        loss = critic(yb).mean() - critic(xb).mean()
        if penalty == "gp" and gp_weight > 0:
            t = torch.as_tensor(rng.random((batch_size, 1)), device=dev)
            u = (t * xb + (1 - t) * yb).requires_grad_(True)
            (g,) = torch.autograd.grad(critic(u).sum(), u, create_graph=True)
            loss = loss + gp_weight * ((g.norm(dim=1) - 1.0) ** 2).mean()
        update(opt, loss)
        return {}

    from latentdist.train.loop import run_loop  # lazily: the train package imports the distances

    run_loop(step_fn, steps=steps, progress=progress, desc="critic", device=dev)
    critic.eval()
    with torch.no_grad():
        return float(critic(x_ev).mean() - critic(y_ev).mean())
