"""GAN training: the critic-based estimate of the outer infimum of docs/theory.md §5, for toy data and MNIST.

With critic D and generator g, each step does ``n_critic`` critic updates then one generator update:

* ``'wgan-gp'`` (Gulrajani et al., 2017): critic minimises E D(g(z)) - E D(x) + λ E (||∇D(x̂)|| - 1)²,
  x̂ = αx + (1-α)g(z), α ~ U[0, 1]; generator minimises -E D(g(z)). ``-loss_d`` without the penalty
  (logged as ``w_estimate``) is the neural-distance estimate of d_F(g#P_z, P_x).
* ``'ns'``: the non-saturating GAN: critic minimises softplus(-D(x)) + softplus(D(g(z))); generator minimises
  softplus(-D(g(z))).
* ``'hinge'``: critic minimises relu(1 - D(x)) + relu(1 + D(g(z))); generator minimises -E D(g(z)).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from latentdist._seeding import SeedLike, make_torch_generator, spawn_seeds
from latentdist._validation import check_device, check_int, check_lr, check_option, check_scalar, probe_module
from latentdist.train.loop import (
    as_module,
    check_callbacks,
    check_loop_args,
    draw_latent,
    module_repr,
    prepare_data,
    run_loop,
    sample_index,
)
from latentdist.train.pipeline import GenerativePipeline

__all__ = ["GANResult", "train_gan", "GAN_LOSSES"]

GAN_LOSSES = ("wgan-gp", "ns", "hinge")


@dataclasses.dataclass
class GANResult:
    """A trained GAN.

    Attributes
    ----------
    generator, critic : nn.Module
    history : pandas.DataFrame
        One row per logged step: ``step``, ``loss_d``, ``loss_g`` (and ``w_estimate``, ``gp`` for WGAN-GP),
        plus whatever callbacks added.
    sampler : GenerativePipeline
        ``sampler(n, seed=0)`` draws generator(latent.sample(n, seed)), shaped like the data;
        ``sampler.param_counts()`` reports latent and generator sizes.
    """

    generator: nn.Module
    critic: nn.Module
    history: pd.DataFrame
    sampler: GenerativePipeline


def _critic_loss(loss: str, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    if loss == "ns":
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if loss == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    return d_fake.mean() - d_real.mean()


def _gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator):
    alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), generator=gen).to(real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def train_gan(
    data: Any,
    latent: Any,
    generator: Any,
    critic: Any,
    *,
    loss: str = "wgan-gp",
    steps: int = 2000,
    n_critic: int | None = None,
    batch_size: int = 256,
    lr_g: float = 1e-4,
    lr_d: float = 1e-4,
    betas: tuple[float, float] = (0.5, 0.9),
    gp_weight: float = 10.0,
    seed: SeedLike = 0,
    device: str | torch.device = "cpu",
    checkpoint_dir: Any = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    callbacks: Any = (),
    progress: bool = True,
    log_every: int = 50,
) -> GANResult:
    """Train a GAN from ``latent`` to ``data``.

    Parameters
    ----------
    data : array or tensor, shape (n, D) or (n, C, H, W)
    latent : Latent or object with ``.dim`` and ``.sample(n, seed)``
        The latent P_z (a fixed law or a fitted prior).
    generator : Family or nn.Module
        A family is built as ``generator.build(latent.dim, prod(data.shape[1:]), seed=...)``; its output is
        reshaped to the data's per-sample shape. A module is copied, never trained in place.
    critic : Family or nn.Module
        Built as ``critic.build(prod(data.shape[1:]), 1, seed=...)``; sees samples shaped like the data.
    loss : {'wgan-gp', 'ns', 'hinge'}
    steps : int
        Generator updates.
    n_critic : int, optional
        Critic updates per generator update; default 5 for ``'wgan-gp'``, 1 otherwise.
    batch_size : int
    lr_g, lr_d : float
        Adam learning rates of generator and critic.
    betas : (float, float)
        Adam betas for both.
    gp_weight : float
        λ of the gradient penalty (``'wgan-gp'`` only).
    seed : int or Generator
        Seeds weights, batches, latent draws and the global RNG (forked, so the caller's RNG is untouched).
    device : {'cpu', 'cuda', 'cuda:N', 'auto'}
    checkpoint_dir : path, optional
        Where ``gan.pt`` is written every ``checkpoint_every`` steps and at the end.
    resume : bool
        Continue from ``checkpoint_dir/gan.pt`` when it exists (same configuration required).
    callbacks : sequence of callables ``cb(step, generator, logs)``
        Called every ``log_every`` steps; entries they add to ``logs`` land in ``history``.
    progress : bool
    log_every : int

    Returns
    -------
    GANResult

    Examples
    --------
    >>> from latentdist.generators import MLP
    >>> from latentdist.latents import Gaussian
    >>> from latentdist.train.nets import MLPCritic
    >>> x = torch.randn(256, 2) + 3
    >>> res = train_gan(x, Gaussian(2), MLP(width=16), MLPCritic(width=16), steps=5, progress=False)
    >>> res.sampler(10, seed=0).shape
    torch.Size([10, 2])
    """
    loss = check_option(loss, "loss", GAN_LOSSES)
    dev = check_device(device)
    ckpt_dir = check_loop_args(steps, batch_size, checkpoint_dir, checkpoint_every, log_every, resume)
    n_critic = (5 if loss == "wgan-gp" else 1) if n_critic is None else check_int(n_critic, "n_critic", low=1)
    lr_g = check_lr(lr_g, "lr_g")
    lr_d = check_lr(lr_d, "lr_d")
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise TypeError(f"betas must be a pair of floats, got {betas!r}")
    betas = tuple(check_scalar(b, f"betas[{i}]", low=0.0, high=1.0, high_inclusive=False)
                  for i, b in enumerate(betas))
    gp_weight = check_scalar(gp_weight, "gp_weight", low=0.0)
    callbacks = check_callbacks(callbacks)
    if not (hasattr(latent, "dim") and callable(getattr(latent, "sample", None))):
        raise TypeError(f"latent must have .dim and .sample(n, seed), got {type(latent).__name__}")
    latent_dim = check_int(latent.dim, "latent.dim", low=1)
    x = prepare_data(data, dev)
    shape = tuple(x.shape[1:])
    flat = int(np.prod(shape))

    s_gen, s_critic, s_batch, s_global = spawn_seeds(seed, 4)
    g_net = as_module(generator, latent_dim, flat, s_gen, "generator", dev)
    d_net = as_module(critic, flat, 1, s_critic, "critic", dev)
    _check_shapes(g_net, d_net, latent_dim, shape, dev)
    opt_g = torch.optim.Adam(g_net.parameters(), lr=lr_g, betas=betas)
    opt_d = torch.optim.Adam(d_net.parameters(), lr=lr_d, betas=betas)
    gen = make_torch_generator(s_batch)
    g_net.train()
    d_net.train()

    def generate(n: int) -> torch.Tensor:
        return g_net(draw_latent(latent, n, gen, dev)).reshape(n, *shape)

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        for _ in range(n_critic):
            real = x[sample_index(x.shape[0], batch_size, gen, dev)]
            with torch.no_grad():
                fake = generate(batch_size)
            d_real, d_fake = d_net(real), d_net(fake)
            loss_d = _critic_loss(loss, d_real, d_fake)
            logs = {"loss_d": loss_d.detach()}
            if loss == "wgan-gp":
                gp = _gradient_penalty(d_net, real, fake, gen)
                logs.update(w_estimate=-loss_d.detach(), gp=gp.detach())
                loss_d = loss_d + gp_weight * gp
                logs["loss_d"] = loss_d.detach()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        d_fake = d_net(generate(batch_size))
        loss_g = F.softplus(-d_fake).mean() if loss == "ns" else -d_fake.mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {**logs, "loss_g": loss_g.detach()}

    config = dict(trainer="gan", loss=loss, n_critic=n_critic, batch_size=batch_size, lr_g=lr_g, lr_d=lr_d,
                  betas=list(betas), gp_weight=gp_weight, seeds=[s_gen, s_critic, s_batch, s_global],
                  data_shape=list(x.shape), latent=repr(latent), generator=module_repr(generator),
                  critic=module_repr(critic))
    history = run_loop(
        step_fn, state={"generator": g_net, "critic": d_net, "opt_g": opt_g, "opt_d": opt_d},
        generators={"batch": gen}, watched=g_net, steps=steps, seed=s_global, device=dev, config=config,
        checkpoint_path=None if ckpt_dir is None else ckpt_dir / "gan.pt", checkpoint_every=checkpoint_every,
        resume=resume, callbacks=callbacks, progress=progress, log_every=log_every, desc="gan",
    )
    g_net.eval()
    d_net.eval()
    return GANResult(g_net, d_net, history, GenerativePipeline(latent, g_net, output_shape=shape))


def _check_shapes(g_net: nn.Module, d_net: nn.Module, latent_dim: int, shape: tuple, dev) -> None:
    """Probe both networks once (eval mode, no RNG use) so a mismatch fails before training starts."""
    flat = int(np.prod(shape))
    g_net.eval()
    d_net.eval()
    with torch.no_grad():
        out = probe_module(g_net, torch.zeros(2, latent_dim, device=dev), "generator")
        if out.numel() != 2 * flat:
            raise ValueError(f"generator must map (n, {latent_dim}) to n samples of shape {shape}, "
                             f"got output shape {tuple(out.shape)}")
        score = probe_module(d_net, torch.zeros(2, *shape, device=dev), "critic")
        if score.numel() != 2:
            raise ValueError(f"critic must return one score per sample, got shape {tuple(score.shape)}")
