"""Priors fitted on encoder latents, so that a data-dependent latent f#P_x can be sampled
(docs/theory.md §3-§4).

Each prior is a :class:`~latentdist.latents.Latent`: after ``.fit(z)`` it has ``.dim``, ``.sample(n, seed)``
(reproducible with the seed), exact ``.log_prob(z)`` and ``.n_parameters`` (the size of the prior, which a
pipeline must report next to the decoder's).

* :class:`GMMPrior`: p(z) = Σ_k w_k N(z; μ_k, Σ_k), fitted by EM (scikit-learn ``GaussianMixture``).
* :class:`KDEPrior`: p(z) = (1/n) Σ_i N(z; z_i, h² I), the Gaussian kernel density estimate (scikit-learn
  ``KernelDensity``), sampled as z_i + h ε.
* :class:`FlowPrior`: a RealNVP normalizing flow (Dinh et al., 2017) of affine coupling layers trained by
  maximum likelihood: log p(z) = log N(T(z); 0, I) + log|det ∂T/∂z|.

>>> import numpy as np
>>> z = np.random.default_rng(0).normal(size=(500, 2))
>>> prior = fit_prior(z, "gmm", n_components=2)
>>> prior.sample(4, seed=0).shape
torch.Size([4, 2])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity
from torch import nn

from latentdist._seeding import SeedLike, make_torch_generator, seed_int, seeded, spawn_seeds
from latentdist._validation import (
    ArrayLike,
    check_device,
    check_int,
    check_lr,
    check_memory,
    check_option,
    check_samples,
    check_scalar,
    check_steps,
    to_numpy,
)
from latentdist.distances._common import scaled_std
from latentdist.latents import Latent
from latentdist.optim import make_optimizer, update
from latentdist.train.loop import run_loop

__all__ = ["GMMPrior", "KDEPrior", "FlowPrior", "fit_prior", "PRIORS"]

_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_BANDWIDTH_RULES = ("scott", "silverman")


class _FittedPrior(Latent):
    """Shared plumbing: validation of ``z``, the fitted check and the ``dim`` attribute."""

    dim: int | None = None

    def _check_fitted(self) -> None:
        if self.dim is None:
            raise ValueError(f"{type(self).__name__} is not fitted; call .fit(z) first")

    def _check_z(self, z: ArrayLike, min_samples: int = 1, *, fitting: bool = False) -> np.ndarray:
        dim = None if fitting else self.dim
        arr = to_numpy(check_samples(z, "z", min_samples=min_samples, dim=dim))
        # Densities are fitted on squared distances and variances (1e150^2 overflows, and the GMM's
        # absolute reg_covar swamps points at 1e-150): beyond that range normalize z first.
        peak = float(np.abs(arr).max())
        if fitting and (peak > 1e100 or 0 < peak < 1e-100):
            raise ValueError(f"z has values at the scale {peak:.1e}, outside the range the prior can fit "
                             "(1e-100 to 1e100); normalize z first")
        return arr

    def log_prob(self, z: ArrayLike) -> np.ndarray:
        """log p(z) for each row of ``z`` (n, dim), float64 array of shape (n,)."""
        self._check_fitted()
        return self._log_prob(self._check_z(z))

    def _log_prob(self, z: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class GMMPrior(_FittedPrior):
    """Gaussian mixture prior p(z) = Σ_k w_k N(z; μ_k, Σ_k), fitted by EM.

    Parameters
    ----------
    n_components : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
        Added to covariance diagonals (scikit-learn's regularisation).
    n_init : int
        EM restarts; the best likelihood is kept.
    seed : int or Generator
        Seeds the EM initialisation.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.random.default_rng(0).normal(size=(300, 1))
    >>> GMMPrior(1).fit(z).n_parameters   # 1 mean + 1 variance
    2
    """

    def __init__(self, n_components: int = 10, covariance_type: str = "full", *, reg_covar: float = 1e-6,
                 n_init: int = 1, max_iter: int = 200, seed: SeedLike = 0):
        self.n_components = check_int(n_components, "n_components", low=1)
        self.covariance_type = check_option(covariance_type, "covariance_type", _COVARIANCE_TYPES)
        self.reg_covar = check_scalar(reg_covar, "reg_covar", low=0.0)
        self.n_init = check_int(n_init, "n_init", low=1)
        self.max_iter = check_int(max_iter, "max_iter", low=1)
        self.seed = seed_int(seed)
        self.dim = None

    def fit(self, z: ArrayLike) -> GMMPrior:
        """Fit on latent points ``z`` (n, d), n >= n_components; returns ``self``."""
        arr = self._check_z(z, min_samples=2, fitting=True)
        if len(arr) < self.n_components:
            k = self.n_components
            raise ValueError(f"z needs at least {k} samples for n_components={k}, got {len(arr)}")
        self.gmm_ = GaussianMixture(self.n_components, covariance_type=self.covariance_type,
                                    reg_covar=self.reg_covar, n_init=self.n_init, max_iter=self.max_iter,
                                    random_state=self.seed).fit(arr)
        k, d = self.n_components, arr.shape[1]
        cov = np.asarray(self.gmm_.covariances_, dtype=np.float64)
        if self.covariance_type == "tied":
            cov = np.broadcast_to(cov, (k, d, d))
        elif self.covariance_type == "diag":
            cov = np.stack([np.diag(c) for c in cov])
        elif self.covariance_type == "spherical":
            cov = cov[:, None, None] * np.eye(d)
        self.weights = torch.as_tensor(self.gmm_.weights_, dtype=torch.float64)
        self.means = torch.as_tensor(self.gmm_.means_, dtype=torch.float64)
        self.covariances = torch.as_tensor(np.array(cov), dtype=torch.float64)
        self._chol = torch.linalg.cholesky(self.covariances)
        self.dim = d
        return self

    def _sample(self, n, gen):
        self._check_fitted()
        idx = torch.multinomial(self.weights, n, replacement=True, generator=gen)
        eps = torch.randn(n, self.dim, 1, generator=gen, dtype=torch.float64)
        return self.means[idx] + (self._chol[idx] @ eps).squeeze(-1)

    def _log_prob(self, z):
        return self.gmm_.score_samples(z)

    def moments(self):
        self._check_fitted()
        mean = self.weights @ self.means
        within = torch.einsum("k,kii->", self.weights, self.covariances)
        between = self.weights @ ((self.means - mean) ** 2).sum(1)
        return mean, float(within + between)

    @property
    def n_parameters(self) -> int:
        """(k - 1) weights + k·d means + covariance entries (k·d(d+1)/2 full, d(d+1)/2 tied, k·d diag, k
        spherical)."""
        self._check_fitted()
        k, d = self.n_components, self.dim
        cov = {"full": k * d * (d + 1) // 2, "tied": d * (d + 1) // 2, "diag": k * d, "spherical": k}
        return (k - 1) + k * d + cov[self.covariance_type]

    def __repr__(self) -> str:
        return (f"GMMPrior(dim={self.dim}, n_components={self.n_components}, "
                f"covariance_type={self.covariance_type!r})")


class KDEPrior(_FittedPrior):
    """Gaussian kernel density prior p(z) = (1/n) Σ_i N(z; z_i, h² I).

    Parameters
    ----------
    bandwidth : float or {'scott', 'silverman'}
        h itself, or a rule applied to the fitted points with σ̄ the mean per-coordinate standard deviation:
        Scott h = σ̄ n^(-1/(d+4)); Silverman h = σ̄ (n (d+2) / 4)^(-1/(d+4)).

    Examples
    --------
    >>> import numpy as np
    >>> KDEPrior(0.5).fit(np.zeros((10, 2))).bandwidth_
    0.5
    """

    def __init__(self, bandwidth: float | str = "scott"):
        if isinstance(bandwidth, str):
            self.bandwidth = check_option(bandwidth, "bandwidth", _BANDWIDTH_RULES)
        else:
            self.bandwidth = check_scalar(bandwidth, "bandwidth", low=0.0, low_inclusive=False)
        self.dim = None

    def fit(self, z: ArrayLike) -> KDEPrior:
        """Store the points ``z`` (n, d), n >= 2, and fix the bandwidth; returns ``self``."""
        arr = to_numpy(check_samples(z, "z", min_samples=2))
        n, d = arr.shape
        if isinstance(self.bandwidth, str):
            # Per-column spread at unit scale: arr.std() of points near 1e300 overflows to inf.
            sigma = float(np.mean([scaled_std(col) for col in arr.T]))
            if sigma <= 0:
                raise ValueError("z has zero spread; a bandwidth rule needs distinct points (or a float)")
            factor = n ** (-1 / (d + 4)) if self.bandwidth == "scott" else (n * (d + 2) / 4) ** (-1 / (d + 4))
            h = sigma * factor
            if not 0 < h < float("inf"):
                raise ValueError(f"the {self.bandwidth!r} rule gives bandwidth {h:.3g} for z of spread "
                                 f"{sigma:.3g}; rescale z (e.g. normalize it) or pass a float bandwidth")
        else:
            h = self.bandwidth
        self.bandwidth_ = float(h)
        self.points = torch.as_tensor(arr, dtype=torch.float64)
        self.kde_ = KernelDensity(kernel="gaussian", bandwidth=self.bandwidth_).fit(arr)
        self.dim = d
        return self

    def _sample(self, n, gen):
        self._check_fitted()
        idx = torch.randint(self.points.shape[0], (n,), generator=gen)
        eps = torch.randn(n, self.dim, generator=gen, dtype=torch.float64)
        return self.points[idx] + self.bandwidth_ * eps

    def _log_prob(self, z):
        return self.kde_.score_samples(z)

    def moments(self):
        self._check_fitted()
        mean = self.points.mean(0)
        spread = float(((self.points - mean) ** 2).sum(1).mean()) + self.dim * self.bandwidth_**2
        return mean, spread

    @property
    def n_parameters(self) -> int:
        """The stored points (n·d numbers) plus the bandwidth: a KDE is as large as its data."""
        self._check_fitted()
        return int(self.points.numel()) + 1


class _Coupling(nn.Module):
    """Affine coupling y = m⊙x + (1-m)⊙(x·exp(s(m⊙x)) + t(m⊙x)), log|det| = Σ (1-m)⊙s.

    s = tanh(·) keeps each layer's scale within e^{±1}; the output layer starts at zero so the flow starts as
    the identity.
    """

    def __init__(self, mask: torch.Tensor, hidden: int, depth: int):
        super().__init__()
        self.register_buffer("mask", mask)
        d = mask.numel()
        layers: list[nn.Module] = []
        width = d
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        last = nn.Linear(width, 2 * d)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def _st(self, xm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(xm).chunk(2, dim=-1)
        free = 1 - self.mask
        return torch.tanh(s) * free, t * free

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xm = x * self.mask
        s, t = self._st(xm)
        return xm + (1 - self.mask) * (x * torch.exp(s) + t), s.sum(-1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        ym = y * self.mask
        s, t = self._st(ym)
        return ym + (1 - self.mask) * ((y - t) * torch.exp(-s))


class FlowPrior(_FittedPrior):
    """RealNVP prior: T = coupling_L ∘ ... ∘ coupling_1 ∘ standardise, p(z) = N(T(z); 0, I) |det ∂T/∂z|.

    Masks alternate between even and odd coordinates, so every coordinate is transformed; needs dim >= 2.
    The data are standardised per coordinate first (its log-determinant, -Σ log σ_j, is included in
    ``log_prob``). Fitted by Adam on the mean negative log-likelihood.

    Parameters
    ----------
    n_layers : int
        Coupling layers.
    hidden, depth : int
        Width and number of hidden layers of each coupling's s/t network.
    steps, batch_size, lr, weight_decay :
        Training; minibatches drawn with replacement (the whole set when n <= batch_size).
    seed : int or Generator
        Seeds initialisation and minibatches.
    device : {'cpu', 'cuda', 'auto'}
    progress : bool

    Examples
    --------
    >>> import numpy as np
    >>> z = np.random.default_rng(0).normal(size=(200, 2))
    >>> flow = FlowPrior(n_layers=2, steps=20, progress=False).fit(z)
    >>> flow.log_prob(z[:3]).shape
    (3,)
    """

    def __init__(self, n_layers: int = 8, hidden: int = 64, depth: int = 2, *, steps: int = 2000,
                 batch_size: int = 256, lr: float = 1e-3, weight_decay: float = 0.0, seed: SeedLike = 0,
                 device: str | torch.device = "cpu", progress: bool = True):
        self.n_layers = check_int(n_layers, "n_layers", low=1)
        self.hidden = check_int(hidden, "hidden", low=1)
        self.depth = check_int(depth, "depth", low=1)
        size = f"n_layers={n_layers}, hidden={hidden}, depth={depth}"
        check_memory(16.0 * n_layers * depth * hidden * hidden, size)
        self.steps = check_steps(steps)
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        self.lr = check_lr(lr, "lr")
        self.weight_decay = check_scalar(weight_decay, "weight_decay", low=0.0)
        self.seed = seed_int(seed)
        self.device = check_device(device)
        self.progress = progress
        self.dim = None

    def fit(self, z: ArrayLike) -> FlowPrior:
        """Fit by maximum likelihood on ``z`` (n, d), d >= 2; returns ``self``. ``loss_history_`` holds the
        training NLL (in standardised units) every step."""
        arr = to_numpy(check_samples(z, "z", min_samples=2))
        n, d = arr.shape
        if d < 2:
            raise ValueError("FlowPrior needs z with at least 2 columns (coupling layers split coordinates), "
                             f"got {d}; use 'gmm' or 'kde' for 1-D latents")
        std = arr.std(axis=0)
        if (std <= 0).any():
            raise ValueError("z has a constant column; a flow cannot model a degenerate coordinate")
        self.shift = torch.as_tensor(arr.mean(axis=0), dtype=torch.float32)
        self.scale = torch.as_tensor(std, dtype=torch.float32)
        s_init, s_batch = spawn_seeds(self.seed, 2)
        with seeded(s_init):  # the couplings' nn.Linear layers draw their initial weights from it
            masks = [(torch.arange(d) + k) % 2 for k in range(self.n_layers)]
            self.layers = nn.ModuleList(_Coupling(m.float(), self.hidden, self.depth) for m in masks)
        self.layers.to(self.device)
        self.dim = d
        x = ((torch.as_tensor(arr, dtype=torch.float32) - self.shift) / self.scale).to(self.device)
        gen = make_torch_generator(s_batch)
        opt, _ = make_optimizer(self.layers.parameters(), self.lr, weight_decay=self.weight_decay)
        self.loss_history_ = []
        self.layers.train()

        def step_fn(step: int) -> dict:
            batch = x if n <= self.batch_size else x[torch.randint(n, (self.batch_size,), generator=gen)]
            nll = -self._log_prob_standardised(batch).mean()
            update(opt, nll)
            self.loss_history_.append(float(nll.detach()))
            return {}

        run_loop(step_fn, steps=self.steps, progress=self.progress, desc="flow prior", device=self.device)
        self.layers.eval()
        return self

    def _log_prob_standardised(self, u: torch.Tensor) -> torch.Tensor:
        logdet = torch.zeros(u.shape[0], device=u.device)
        for layer in self.layers:
            u, ld = layer(u)
            logdet = logdet + ld
        base = -0.5 * (u**2).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)
        return base + logdet

    def _log_prob(self, z):
        u = ((torch.as_tensor(z, dtype=torch.float32) - self.shift) / self.scale).to(self.device)
        with torch.no_grad():
            lp = self._log_prob_standardised(u).double().cpu()
        return (lp - torch.log(self.scale.double()).sum()).numpy()

    def _sample(self, n, gen):
        self._check_fitted()
        u = torch.randn(n, self.dim, generator=gen, dtype=torch.float64).float().to(self.device)
        with torch.no_grad():
            for layer in reversed(self.layers):
                u = layer.inverse(u)
        return (u.cpu() * self.scale + self.shift).double()

    def moments(self):
        """Monte Carlo estimate from 20,000 samples (seed 0): a flow has no closed-form moments."""
        z = self.sample(20000, seed=0, dtype=torch.float64)
        mean = z.mean(0)
        return mean, float(((z - mean) ** 2).sum(1).mean())

    @property
    def n_parameters(self) -> int:
        """Network weights plus the 2·d standardisation numbers."""
        self._check_fitted()
        return sum(p.numel() for p in self.layers.parameters()) + 2 * self.dim


PRIORS = {"gmm": GMMPrior, "kde": KDEPrior, "flow": FlowPrior}


def fit_prior(z: ArrayLike, kind: str = "gmm", **kwargs: Any) -> Latent:
    """Fit a prior of the named ``kind`` ('gmm', 'kde' or 'flow') on latent points ``z`` (n, d).

    ``kwargs`` go to the prior's constructor (``n_components=10``, ``bandwidth='scott'``, ``steps=2000``).

    Examples
    --------
    >>> import numpy as np
    >>> fit_prior(np.random.default_rng(0).normal(size=(100, 2)), "kde").dim
    2
    """
    kind = check_option(kind, "kind", PRIORS)
    return PRIORS[kind](**kwargs).fit(z)
