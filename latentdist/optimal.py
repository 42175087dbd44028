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

from latentdist._seeding import SeedLike, make_torch_generator, spawn_seeds
from latentdist._validation import ArrayLike, check_int, check_lr, check_memory, check_option
from latentdist.estimator import LatentDistanceResult, estimate_split, latent_data_distance
from latentdist.generators import MLP, Family
from latentdist.latents import Discrete, Gaussian, Latent, Mixture, Pushforward, normalize, normalize_samples
from latentdist.optim import make_optimizer, update
from latentdist.settings import FitSettings, as_data, check_family
from latentdist.stacked import make_generators
from latentdist.train.loop import run_loop

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
    """R restarts' particle sets: points of shape (R, m, d), each set normalised on its own."""

    def __init__(self, m: int, dim: int, method: str, gens: list[torch.Generator]):
        super().__init__()
        self.points = nn.Parameter(torch.stack([torch.randn(m, dim, generator=g) for g in gens]))
        self.method = method

    def normalized(self, r: int) -> torch.Tensor:
        return normalize_samples(self.points[r], self.method)

    def sample(self, n: int, gens: list[torch.Generator], x_batch: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.normalized(r)[torch.randint(self.points.shape[1], (n,), generator=g)]
                            for r, g in enumerate(gens)])

    def latent(self, r: int, x_train: np.ndarray) -> Latent:
        return normalize(Discrete(self.normalized(r).detach().double()), self.method)


class _GaussianMixture(nn.Module):
    """R restarts' equal-weight Gaussian mixtures: means and log-scales of shape (R, K, d)."""

    def __init__(self, k: int, dim: int, gens: list[torch.Generator]):
        super().__init__()
        self.means = nn.Parameter(torch.stack([torch.randn(k, dim, generator=g) for g in gens]))
        self.log_scales = nn.Parameter(torch.full((len(gens), k, dim), math.log(0.3)))

    def normalized_params(self, r: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Exact moments of the equal-weight mixture:
        # mean = avg mu_k, spread = avg(||mu_k - mean||^2 + sum s_k^2).
        means, scales = self.means[r], self.log_scales[r].exp()
        mean = means.mean(0)
        spread = (((means - mean) ** 2).sum(1) + (scales**2).sum(1)).mean()
        factor = torch.sqrt(means.shape[1] / spread)
        return (means - mean) * factor, scales * factor

    def sample(self, n: int, gens: list[torch.Generator], x_batch: torch.Tensor) -> torch.Tensor:
        out = []
        for r, g in enumerate(gens):
            means, scales = self.normalized_params(r)
            k = torch.randint(means.shape[0], (n,), generator=g)
            eps = torch.randn(n, means.shape[1], generator=g)
            out.append(means[k] + scales[k] * eps)
        return torch.stack(out)

    def latent(self, r: int, x_train: np.ndarray) -> Latent:
        means, scales = (t.detach().double() for t in self.normalized_params(r))
        comps = [Gaussian(means.shape[1], mean=m, cov=torch.diag(s**2))
                 for m, s in zip(means, scales, strict=True)]
        return normalize(Mixture(comps), "moment")


class _Encoder(nn.Module):
    """R restarts' MLP encoders f_r: R^D -> R^d, stacked like the generators (:mod:`latentdist.stacked`)."""

    def __init__(self, in_dim: int, dim: int, width: int, method: str, seeds: list[int]):
        super().__init__()
        # Seeded per restart: every restart (and every seed) starts from its own weights.
        self.nets = make_generators([MLP(width=width, depth=2)] * len(seeds), seeds, in_dim, dim)
        self.method = method

    def sample(self, n: int, gens: list[torch.Generator], x_batch: torch.Tensor) -> torch.Tensor:
        # Minibatch normalisation: the batch's own moments (or box) stand in for those of f#P_x.
        codes = self.nets(x_batch)
        return torch.stack([normalize_samples(c, self.method) for c in codes])

    def net(self, r: int) -> nn.Module:
        return self.nets.member(r).eval()

    def latent(self, r: int, x_train: np.ndarray) -> Latent:
        return normalize(Pushforward(self.net(r), x_train), self.method)


def _make_parameterization(kind: str, dim: int, in_dim: int, method: str, n_particles: int,
                           n_components: int, encoder_width: int, seeds: list[int]) -> nn.Module:
    """The search's latent parameterisation for R restarts, restart r initialised from ``seeds[r]``."""
    if kind == "encoder":
        return _Encoder(in_dim, dim, encoder_width, method, seeds)
    gens = [make_torch_generator(s) for s in seeds]
    if kind == "particles":
        return _Particles(n_particles, dim, method, gens)
    return _GaussianMixture(n_components, dim, gens)


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
    check_memory(16.0 * dim * max(n_particles, n_components, encoder_width),
                 f"dim={dim} with n_particles={n_particles}, n_components={n_components}, "
                 f"encoder_width={encoder_width}")
    check_int(distance_steps, "distance_steps", low=1)
    check_int(distance_restarts, "distance_restarts", low=1)
    if latent_lr is not None:
        latent_lr = check_lr(latent_lr, "latent_lr")
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

    # All restarts at once, batched like the estimator's: stacked generators and parameterisations, each
    # restart with its own initialisation and batch streams (restart r follows the trajectory it had alone).
    seeds = [spawn_seeds(rs, 4) for rs in spawn_seeds(search_seed, n_restarts)]  # init_g, init_p, z, x
    gens = make_generators([family] * n_restarts, [s[0] for s in seeds], dim, x.shape[1], dev)
    par = _make_parameterization(kind, dim, x.shape[1], method, n_particles, n_components, encoder_width,
                                 [s[1] for s in seeds]).to(dev)
    opt, sched = make_optimizer([{"params": gens.parameters(), "lr": lr},
                                 {"params": par.parameters(), "lr": latent_lr}], lr,
                                schedule="cosine_floor", steps=steps)
    z_gens, x_gens = [make_torch_generator(s[2]) for s in seeds], [make_torch_generator(s[3]) for s in seeds]
    n_tail, tails, records = max(1, steps // 10), [0.0] * n_restarts, []

    def step_fn(step: int) -> dict:
        idx = [(torch.randint(xt.shape[0], (batch_size,), generator=g),
                torch.randint(xt.shape[0], (batch_size,), generator=g)) for g in x_gens]
        xb, xb_target = (torch.stack([xt[i[k]] for i in idx]) for k in (0, 1))
        z = par.sample(batch_size, z_gens, xb).to(dev)
        loss = loss_fn(gens(z), xb_target)
        update(opt, loss, sched)
        for r, value in enumerate(loss.detach().cpu().tolist()):
            if step >= steps - n_tail:
                tails[r] += value / n_tail
            if step % 10 == 0 or step == steps - 1:
                records.append((step, r, value))
        return {}

    run_loop(step_fn, steps=steps, progress=progress, desc=f"latent search ({n_restarts} restarts)",
             device=dev)
    best = int(np.argmin(tails))
    g_best = gens.member(best).eval()
    par.eval()
    found = par.latent(best, x_train)
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
        history=pd.DataFrame(records, columns=["step", "restart", "loss"]).sort_values(
            ["restart", "step"], kind="stable").reset_index(drop=True), generator=g_best,
        search_losses=np.asarray(tails), config=config,
        encoder=par.net(best) if kind == "encoder" else None)
