"""Search for the optimal latent P_z*(c) in argmin_{P_z in 𝒫} D_{G_c}(P_z, P_x) (docs/theory.md §3, R3).

The latent and the generator are optimised jointly on minibatch estimates of d(g#P_z, P_x). The latent's
normalisation is part of the computation graph (:func:`latentdist.latents.normalize_samples` or the exact
moments of a mixture), so the optimiser cannot lower D by rescaling or shifting the latent: a Lipschitz
family would otherwise profit from a spread-out latent (P4).

Parameterisations of 𝒫:

* ``'particles'``: m learnable points; P_z = uniform on the normalised points (a ``Discrete`` latent);
* ``'mixture'``: K equal-weight Gaussians with learnable means and diagonal scales; the moment
  normalisation uses the mixture's exact mean and spread (``'cube'`` is impossible: unbounded support);
* ``'encoder'``: an MLP encoder f: R^D -> R^d; P_z = f#P_x (a ``Pushforward`` of the training data),
  normalised on each minibatch during the search and exactly at the end.

Honesty: the data are split once; the search sees only the training part, and the reported
``distance`` is a fresh :func:`~latentdist.estimator.latent_data_distance` (new seeds for initialisation,
batches and evaluation) whose held-out rows are exactly the rows the search never saw.

Example
-------
>>> import numpy as np
>>> from latentdist.generators import MLP
>>> x = np.concatenate([np.random.default_rng(0).normal(size=(200, 1)) * 0.1 + s for s in (-3, 3)])
>>> res = optimal_latent(x, 1, MLP(width=8, depth=1), steps=30, n_restarts=1, n_particles=16,
...                      distance_steps=20, progress=False)
>>> res.latent.dim
1
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from latentdist._progress import progress_bar
from latentdist._seeding import SeedLike, make_torch_generator, spawn_seeds
from latentdist._validation import ArrayLike, check_int, check_option, check_scalar
from latentdist.estimator import LatentDistanceResult, estimate_split, latent_data_distance
from latentdist.generators import MLP, Family
from latentdist.latents import Discrete, Gaussian, Latent, Mixture, Pushforward, normalize, normalize_samples
from latentdist.settings import FitSettings, as_data, check_family

__all__ = ["OptimalLatentResult", "optimal_latent", "PARAMETERIZATIONS"]

PARAMETERIZATIONS = ("particles", "encoder", "mixture")


@dataclasses.dataclass(repr=False)
class OptimalLatentResult:
    """Outcome of :func:`optimal_latent`.

    Attributes
    ----------
    latent : Latent
        The found latent at the requested normalisation (``Discrete`` for particles, ``Mixture`` of
        Gaussians for mixture, ``Pushforward`` of the training data for encoder), wrapped by
        :func:`~latentdist.latents.normalize` so its normalisation is exact.
    distance : LatentDistanceResult
        D_{G_c}(latent, P_x) re-estimated with fresh seeds on rows the search never saw.
    history : pandas.DataFrame
        Search curve: ``step``, ``restart``, ``loss``.
    generator : torch.nn.Module
        The generator fitted jointly with the selected latent during the search.
    search_losses : numpy.ndarray, shape (n_restarts,)
        Mean training loss over the last 10% of steps of each restart (the selection criterion).
    config : dict
    """

    latent: Latent
    distance: LatentDistanceResult
    history: pd.DataFrame
    generator: nn.Module
    search_losses: np.ndarray
    config: dict
    encoder: nn.Module | None = None

    def __repr__(self) -> str:
        return f"OptimalLatentResult(latent={self.latent!r}, {self.distance.summary()})"


class _Particles(nn.Module):
    def __init__(self, m: int, dim: int, method: str, gen: torch.Generator):
        super().__init__()
        self.points = nn.Parameter(torch.randn(m, dim, generator=gen))
        self.method = method

    def normalized(self) -> torch.Tensor:
        return normalize_samples(self.points, self.method)

    def sample(self, n: int, gen: torch.Generator, x_batch: torch.Tensor) -> torch.Tensor:
        idx = torch.randint(self.points.shape[0], (n,), generator=gen)
        return self.normalized()[idx]

    def latent(self, x_train: np.ndarray) -> Latent:
        return normalize(Discrete(self.normalized().detach().double()), self.method)


class _GaussianMixture(nn.Module):
    def __init__(self, k: int, dim: int, gen: torch.Generator):
        super().__init__()
        self.means = nn.Parameter(torch.randn(k, dim, generator=gen))
        self.log_scales = nn.Parameter(torch.full((k, dim), math.log(0.3)))

    def normalized_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        # Exact moments of the equal-weight mixture:
        # mean = avg mu_k, spread = avg(||mu_k - mean||^2 + sum s_k^2).
        scales = self.log_scales.exp()
        mean = self.means.mean(0)
        spread = (((self.means - mean) ** 2).sum(1) + (scales**2).sum(1)).mean()
        factor = torch.sqrt(self.means.shape[1] / spread)
        return (self.means - mean) * factor, scales * factor

    def sample(self, n: int, gen: torch.Generator, x_batch: torch.Tensor) -> torch.Tensor:
        means, scales = self.normalized_params()
        k = torch.randint(means.shape[0], (n,), generator=gen)
        eps = torch.randn(n, means.shape[1], generator=gen)
        return means[k] + scales[k] * eps

    def latent(self, x_train: np.ndarray) -> Latent:
        means, scales = (t.detach().double() for t in self.normalized_params())
        comps = [Gaussian(means.shape[1], mean=m, cov=torch.diag(s**2))
                 for m, s in zip(means, scales, strict=True)]
        return normalize(Mixture(comps), "moment")


class _Encoder(nn.Module):
    def __init__(self, in_dim: int, dim: int, width: int, method: str, seed: int):
        super().__init__()
        # Seeded per restart: every restart (and every seed) starts from its own weights.
        self.net = MLP(width=width, depth=2).build(in_dim, dim, seed=seed)
        self.method = method

    def sample(self, n: int, gen: torch.Generator, x_batch: torch.Tensor) -> torch.Tensor:
        # Minibatch normalisation: the batch's own moments (or box) stand in for those of f#P_x.
        return normalize_samples(self.net(x_batch), self.method)

    def latent(self, x_train: np.ndarray) -> Latent:
        return normalize(Pushforward(self.net, x_train), self.method)


def _make_parameterization(kind: str, dim: int, in_dim: int, method: str, n_particles: int,
                           n_components: int, encoder_width: int, seed: int) -> nn.Module:
    gen = make_torch_generator(seed)
    if kind == "particles":
        return _Particles(n_particles, dim, method, gen)
    if kind == "mixture":
        return _GaussianMixture(n_components, dim, gen)
    return _Encoder(in_dim, dim, encoder_width, method, seed)  # Family.build leaves the global RNG alone


def optimal_latent(
    data: ArrayLike | Any,
    dim: int,
    family: Family,
    distance: str | Callable = "w2",
    *,
    parameterization: str = "particles",
    normalization: str = "moment",
    n_particles: int = 256,
    n_components: int = 8,
    encoder_width: int = 64,
    steps: int = 1000,
    n_restarts: int = 3,
    batch_size: int = 64,
    lr: float = 1e-2,
    latent_lr: float | None = None,
    holdout: float = 0.2,
    distance_steps: int = 500,
    distance_restarts: int = 3,
    seed: SeedLike = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    distance_kwargs: dict | None = None,
) -> OptimalLatentResult:
    r"""Optimise a normalised latent jointly with g in G_c: :math:`\min_{P_z \in 𝒫} \min_{g} d(g\#P_z, P_x)`.

    Parameters
    ----------
    data : array (n, D) or object with ``.x``
    dim : int
        Latent dimension d.
    family : Family
        The budget G_c.
    distance : str or callable
        Registry distance; also the training loss (``'w1'``/``'w2'`` via exact minibatch OT plans).
    parameterization : {'particles', 'encoder', 'mixture'}
    normalization : {'moment', 'cube'}
        The normalisation imposed inside the graph and on the returned latent (P4). ``'mixture'``
        supports only ``'moment'``.
    n_particles, n_components, encoder_width : int
        Size of each parameterisation.
    steps, n_restarts, batch_size, lr : int, int, int, float
        Adam steps of the joint search per restart, restarts (best by final training loss), minibatch
        size and learning rate (cosine decay to lr/20). ``latent_lr`` defaults to ``lr``.
    holdout : float in (0, 1)
        Fraction of the data the search never sees; the re-estimate evaluates on exactly these rows.
    distance_steps, distance_restarts : int
        Budget of the fresh re-estimate of D with the found latent.
    seed : int or Generator
    device : str or torch.device
    progress : bool
    distance_kwargs : dict, optional

    Returns
    -------
    OptimalLatentResult

    Examples
    --------
    >>> import numpy as np
    >>> from latentdist.generators import MLP
    >>> x = np.random.default_rng(0).normal(size=(300, 2))
    >>> r = optimal_latent(x, 2, MLP(width=8), parameterization="mixture", n_components=2, steps=20,
    ...                    n_restarts=1, distance_steps=10, distance_restarts=1, progress=False)
    >>> type(r.latent).__name__
    'Affine'
    """
    family = check_family(family)
    dim = check_int(dim, "dim", low=1)
    kind = check_option(parameterization, "parameterization", PARAMETERIZATIONS)
    method = check_option(normalization, "normalization", ("moment", "cube"))
    if kind == "mixture" and method == "cube":
        raise ValueError("normalization='cube' needs a bounded latent; a Gaussian mixture is unbounded, "
                         "use normalization='moment'")
    n_particles = check_int(n_particles, "n_particles", low=2)
    n_components = check_int(n_components, "n_components", low=1)
    encoder_width = check_int(encoder_width, "encoder_width", low=1)
    check_int(distance_steps, "distance_steps", low=1)
    check_int(distance_restarts, "distance_restarts", low=1)
    if latent_lr is not None:
        latent_lr = check_scalar(latent_lr, "latent_lr", low=0.0, low_inclusive=False)
    latent_lr = lr if latent_lr is None else latent_lr
    x = as_data(data)
    settings = FitSettings(distance=distance, distance_kwargs=distance_kwargs, n_restarts=n_restarts,
                           steps=steps, batch_size=batch_size, lr=lr, holdout=holdout, device=device,
                           progress=progress)
    holdout, dev, distance_kwargs = settings.holdout, settings.device, settings.distance_kwargs
    search_seed, estimate_seed = spawn_seeds(seed, 2)
    # The re-estimate's split is reproduced here so that the search never sees its held-out rows.
    x_train, _ = estimate_split(x, holdout, estimate_seed)
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=dev)
    loss_fn = settings.training_loss()

    best, records, tails = None, [], []
    for r, rs in enumerate(spawn_seeds(search_seed, n_restarts)):
        init_g, init_p, z_seed, x_seed = spawn_seeds(rs, 4)
        g = family.build(dim, x.shape[1], seed=init_g).to(dev)
        par = _make_parameterization(kind, dim, x.shape[1], method, n_particles, n_components, encoder_width,
                                     init_p).to(dev)
        opt = torch.optim.Adam([{"params": g.parameters(), "lr": lr},
                                {"params": par.parameters(), "lr": latent_lr}])
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda t: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t / steps)))
        z_gen, x_gen = make_torch_generator(z_seed), make_torch_generator(x_seed)
        tail, n_tail = 0.0, max(1, steps // 10)
        for step in progress_bar(range(steps), progress=progress, desc=f"latent search {r + 1}/{n_restarts}"):
            xb = xt[torch.randint(xt.shape[0], (batch_size,), generator=x_gen)]
            xb_target = xt[torch.randint(xt.shape[0], (batch_size,), generator=x_gen)]
            z = par.sample(batch_size, z_gen, xb).to(dev)
            loss = loss_fn(g(z).flatten(1)[None], xb_target[None])[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            value = float(loss.detach())
            if step >= steps - n_tail:
                tail += value / n_tail
            if step % 10 == 0 or step == steps - 1:
                records.append((step, r, value))
        tails.append(tail)
        if best is None or tail < best[0]:
            best = (tail, g, par)
    _, g_best, par_best = best
    g_best.eval()
    par_best.eval()
    found = par_best.latent(x_train)
    estimate = latent_data_distance(
        found, x, family, distance, n_restarts=distance_restarts, steps=distance_steps,
        batch_size=batch_size, lr=lr, holdout=holdout, seed=estimate_seed, device=dev, progress=progress,
        distance_kwargs=distance_kwargs)
    config = {"parameterization": kind, "normalization": method, "dim": dim, "family": family.label(),
              "n_particles": n_particles, "n_components": n_components, "steps": steps,
              "n_restarts": n_restarts, "batch_size": batch_size, "lr": lr, "latent_lr": latent_lr,
              "holdout": holdout, "seed": seed if isinstance(seed, int) else repr(seed)}
    return OptimalLatentResult(
        latent=found, distance=estimate,
        history=pd.DataFrame(records, columns=["step", "restart", "loss"]), generator=g_best,
        search_losses=np.asarray(tails), config=config,
        encoder=par_best.net if kind == "encoder" else None)
