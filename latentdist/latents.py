"""Latent distributions P_z and their normalisation (docs/theory.md §3 and P4).

Every latent has ``.dim`` and ``.sample(n, seed=0) -> torch.Tensor`` of shape (n, dim), float32 by
default. Comparisons between latents are made at a stated normalisation (P4):

* ``'moment'``: zero mean and E||z||^2 = d;
* ``'cube'``: support centred and isotropically scaled into [-1, 1]^d (bounded latents only).

Both are isotropic affine maps, so they preserve a latent's shape and only fix its position and scale.

>>> z = normalize(Uniform(2, low=0.0, high=4.0), "cube").sample(1000, seed=0)
>>> bool(z.abs().max() <= 1.0)
True
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch

from latentdist._seeding import SeedLike, make_torch_generator
from latentdist._validation import (
    ArrayLike,
    check_array,
    check_cast,
    check_int,
    check_memory,
    check_option,
    check_samples,
    check_scalar,
    check_weights,
    probe_module,
    to_tensor,
)

__all__ = [
    "Latent",
    "Gaussian",
    "Uniform",
    "Discrete",
    "Empirical",
    "Mixture",
    "Pushforward",
    "Affine",
    "normalize",
    "normalize_samples",
    "make_latent",
    "NORMALIZATIONS",
]

NORMALIZATIONS = ("moment", "cube")


class Latent(ABC):
    """A distribution P_z on R^dim that can be sampled reproducibly."""

    dim: int

    def sample(
        self, n: int, seed: SeedLike = 0, *, device: str | torch.device = "cpu", dtype=torch.float32
    ) -> torch.Tensor:
        """Draw ``n`` samples, shape (n, dim). The same ``seed`` gives the same samples on CPU."""
        n = check_int(n, "n", low=1)
        check_memory(16.0 * n * (self.dim or 1), f"n={n} samples of dim={self.dim}")
        gen = make_torch_generator(seed)
        z = check_cast(self._sample(n, gen), dtype, f"samples of {self!r}")
        return z.to(device=device)

    def sample_each(
        self, n: int, generators: Sequence[torch.Generator], *, device: str | torch.device = "cpu",
        dtype=torch.float32,
    ) -> torch.Tensor:
        """``n`` samples from each of B generators, stacked: shape (B, n, dim).

        The same numbers as ``torch.stack([self.sample(n, seed=g) for g in generators])``, and the same
        generator states afterwards, with one validation and one dtype conversion for the whole stack
        (the batched ensemble draws one stack per training step).

        Examples
        --------
        >>> gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
        >>> Gaussian(3).sample_each(5, gens).shape
        torch.Size([2, 5, 3])
        """
        n = check_int(n, "n", low=1)
        if not generators or not all(isinstance(g, torch.Generator) for g in generators):
            raise TypeError("generators must be a non-empty sequence of torch.Generator")
        check_memory(16.0 * n * (self.dim or 1) * len(generators), f"n={n} samples of dim={self.dim}")
        stack = torch.stack([self._sample(n, g) for g in generators])
        return check_cast(stack, dtype, f"samples of {self!r}").to(device=device)

    @abstractmethod
    def _sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """Samples as a float64 CPU tensor drawn from ``gen``."""

    @abstractmethod
    def moments(self) -> tuple[torch.Tensor, float]:
        """(mean vector, E||z - mean||^2): the two numbers the 'moment' normalisation needs."""

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Coordinate-wise (low, high) of the support, or None when unbounded."""
        return None

    @property
    def name(self) -> str:
        return type(self).__name__.lower()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


def _vector(v, name: str, dim: int) -> torch.Tensor:
    arr = check_array(v, name, ndim=1)
    if arr.shape[0] != dim:
        raise ValueError(f"{name} must have length {dim}, got {arr.shape[0]}")
    return to_tensor(arr, dtype=torch.float64).detach()


class Gaussian(Latent):
    """N(mean, cov) on R^dim; defaults to the standard normal N(0, I)."""

    def __init__(self, dim: int, mean: ArrayLike | None = None, cov: ArrayLike | None = None):
        self.dim = check_int(dim, "dim", low=1)
        check_memory(8.0 * dim * dim, f"dim={dim} (a dense {dim} x {dim} float64 covariance)")
        self.mean = torch.zeros(dim, dtype=torch.float64) if mean is None else _vector(mean, "mean", dim)
        if cov is None:
            self.cov = torch.eye(dim, dtype=torch.float64)
        else:
            c = to_tensor(check_array(cov, "cov", ndim=2), dtype=torch.float64).detach()
            if c.shape != (dim, dim):
                raise ValueError(f"cov must have shape ({dim}, {dim}), got {tuple(c.shape)}")
            if not torch.allclose(c, c.T, atol=1e-10):
                raise ValueError("cov must be symmetric")
            self.cov = c
        try:
            self._chol = torch.linalg.cholesky(self.cov)
        except RuntimeError as exc:
            raise ValueError("cov must be positive definite") from exc

    def _sample(self, n, gen):
        eps = torch.randn(n, self.dim, generator=gen, dtype=torch.float64)
        return self.mean + eps @ self._chol.T

    def moments(self):
        return self.mean, float(torch.trace(self.cov))


class Uniform(Latent):
    """Uniform on the box [low, high]^dim (default [-1, 1]^dim)."""

    def __init__(self, dim: int, low: float = -1.0, high: float = 1.0):
        self.dim = check_int(dim, "dim", low=1)
        self.low = check_scalar(low, "low")
        self.high = check_scalar(high, "high")
        if self.high <= self.low:
            raise ValueError(f"high must be > low, got low={low}, high={high}")

    def _sample(self, n, gen):
        u = torch.rand(n, self.dim, generator=gen, dtype=torch.float64)
        return self.low + (self.high - self.low) * u

    def moments(self):
        mean = torch.full((self.dim,), (self.low + self.high) / 2, dtype=torch.float64)
        return mean, self.dim * (self.high - self.low) ** 2 / 12

    def bounds(self):
        full = torch.ones(self.dim, dtype=torch.float64)
        return self.low * full, self.high * full


class Discrete(Latent):
    """Finitely supported P_z = sum_k w_k δ_{points_k}; ``points`` has shape (m, dim)."""

    def __init__(self, points: ArrayLike, weights: ArrayLike | None = None):
        pts = check_samples(points, "points", min_samples=1)
        self.points = to_tensor(pts, dtype=torch.float64).detach()
        self.dim = self.points.shape[1]
        w = check_weights(weights, self.points.shape[0], "weights")
        m = self.points.shape[0]
        self.weights = (
            torch.full((m,), 1.0 / m, dtype=torch.float64) if w is None else to_tensor(w, dtype=torch.float64)
        )

    def _sample(self, n, gen):
        idx = torch.multinomial(self.weights, n, replacement=True, generator=gen)
        return self.points[idx]

    def moments(self):
        mean = self.weights @ self.points
        return mean, float(self.weights @ ((self.points - mean) ** 2).sum(1))

    def bounds(self):
        support = self.points[self.weights > 0]
        return support.min(0).values, support.max(0).values

    def __repr__(self) -> str:
        return f"Discrete(dim={self.dim}, n_points={self.points.shape[0]})"


class Empirical(Discrete):
    """The empirical law of ``samples`` (n, dim): resamples rows uniformly with replacement."""

    def __init__(self, samples: ArrayLike):
        super().__init__(check_samples(samples, "samples"))

    def __repr__(self) -> str:
        return f"Empirical(dim={self.dim}, n={self.points.shape[0]})"


class Mixture(Latent):
    """Mixture sum_k w_k P_k of latents of equal dimension."""

    def __init__(self, components: Sequence[Latent], weights: ArrayLike | None = None):
        if not isinstance(components, (list, tuple)):
            raise TypeError("components must be a list or tuple of Latent objects, got "
                            f"{type(components).__name__}")
        components = list(components)
        if not components or not all(isinstance(c, Latent) for c in components):
            raise TypeError("components must be a non-empty sequence of Latent objects")
        dims = {c.dim for c in components}
        if len(dims) != 1:
            raise ValueError(f"components must share one dimension, got {sorted(dims)}")
        self.components = components
        self.dim = dims.pop()
        w = check_weights(weights, len(components), "weights")
        k = len(components)
        self.weights = torch.full((k,), 1.0 / k, dtype=torch.float64) if w is None else to_tensor(
            w, dtype=torch.float64
        )

    def _sample(self, n, gen):
        idx = torch.multinomial(self.weights, n, replacement=True, generator=gen)
        out = torch.empty(n, self.dim, dtype=torch.float64)
        for k, comp in enumerate(self.components):
            mask = idx == k
            count = int(mask.sum())
            if count:
                out[mask] = comp._sample(count, gen)
        return out

    def moments(self):
        stats = [c.moments() for c in self.components]
        pairs = list(zip(self.weights.tolist(), stats, strict=True))
        mean = sum(w * m for w, (m, _) in pairs)
        # Law of total variance: within-component spread plus spread of the component means.
        spread = sum(w * (v + float(((m - mean) ** 2).sum())) for w, (m, v) in pairs)
        return mean, spread

    def bounds(self):
        boxes = [c.bounds() for c in self.components]
        if any(b is None for b in boxes):
            return None
        lows = torch.stack([b[0] for b in boxes])
        highs = torch.stack([b[1] for b in boxes])
        return lows.min(0).values, highs.max(0).values

    def __repr__(self) -> str:
        return f"Mixture(dim={self.dim}, n_components={len(self.components)})"


class Pushforward(Latent):
    """The encoder latent f#P_x: encode rows of ``data`` drawn uniformly with replacement.

    ``encoder`` is a torch module or callable mapping a batch of data (n, ...) to codes (n, dim). The codes
    of the whole data set are computed once (in batches, without gradients) and cached, so sampling is
    resampling of the encoded data set; moments and bounds are exact for that empirical law.
    """

    def __init__(
        self,
        encoder: Callable[[torch.Tensor], torch.Tensor],
        data: ArrayLike,
        *,
        batch_size: int = 1024,
        device: str | torch.device = "cpu",
    ):
        if not callable(encoder):
            raise TypeError(f"encoder must be callable, got {type(encoder).__name__}")
        arr = check_array(data, "data")
        if arr.ndim < 2 or arr.shape[0] < 1:
            raise ValueError(f"data must have shape (n, ...) with n >= 1, got {tuple(arr.shape)}")
        batch_size = check_int(batch_size, "batch_size", low=1)
        x = check_cast(to_tensor(arr).detach(), torch.float32, "data")
        codes = []
        was_training = getattr(encoder, "training", False)
        if hasattr(encoder, "eval"):
            encoder.eval()
        with torch.no_grad():
            probe_module(encoder, x[:2].to(device), "encoder")  # a wrong input size fails clearly here
            for start in range(0, x.shape[0], batch_size):
                codes.append(encoder(x[start : start + batch_size].to(device)).detach().cpu().double())
        if was_training:
            encoder.train()
        z = torch.cat(codes)
        if z.ndim != 2:
            raise ValueError(f"encoder must return codes of shape (n, dim), got {tuple(z.shape)}")
        self.encoder = encoder
        self._empirical = Empirical(z)
        self.dim = z.shape[1]

    @property
    def codes(self) -> torch.Tensor:
        """The encoded data set, shape (n, dim)."""
        return self._empirical.points

    def _sample(self, n, gen):
        return self._empirical._sample(n, gen)

    def moments(self):
        return self._empirical.moments()

    def bounds(self):
        return self._empirical.bounds()


class Affine(Latent):
    """The law of (z - shift) * scale for z ~ base: the result of :func:`normalize`."""

    def __init__(self, base: Latent, shift: torch.Tensor, scale: float):
        if not isinstance(base, Latent):
            raise TypeError(f"base must be a Latent, got {type(base).__name__}")
        self.base = base
        self.dim = base.dim
        self.shift = _vector(shift, "shift", base.dim)
        self.scale = check_scalar(scale, "scale", low=0.0, low_inclusive=False)

    def _sample(self, n, gen):
        return (self.base._sample(n, gen) - self.shift) * self.scale

    def moments(self):
        mean, spread = self.base.moments()
        return (mean - self.shift) * self.scale, spread * self.scale**2

    def bounds(self):
        box = self.base.bounds()
        if box is None:
            return None
        return (box[0] - self.shift) * self.scale, (box[1] - self.shift) * self.scale

    @property
    def name(self) -> str:
        return self.base.name

    def __repr__(self) -> str:
        return f"Affine({self.base!r}, scale={self.scale:.4g})"


def _normalizing_map(mean: torch.Tensor, spread: float, box, dim: int, method: str, name: str):
    if method == "moment":
        if spread <= 0:
            raise ValueError(f"{name} is degenerate (zero variance); it cannot be moment-normalised")
        return mean, math.sqrt(dim / spread)
    if box is None:
        raise ValueError(f"{name} has unbounded support; use method='moment' instead of 'cube'")
    low, high = box
    half = float(((high - low) / 2).max())
    if half <= 0:
        raise ValueError(f"{name} is a single point; it cannot be cube-normalised")
    return (low + high) / 2, 1.0 / half


def normalize(latent: Latent, method: str = "moment") -> Latent:
    """Put a latent at a stated normalisation (docs/theory.md P4) by an isotropic affine map.

    Parameters
    ----------
    latent : Latent
    method : {'moment', 'cube'}
        ``'moment'``: zero mean and E||z||^2 = dim. ``'cube'``: the support's bounding box is centred and
        scaled by one factor so that it fits [-1, 1]^dim, touching the boundary.

    Returns
    -------
    Latent
        An :class:`Affine` wrapper; exact (no Monte Carlo) for every latent in this module.

    Examples
    --------
    >>> mean, spread = normalize(Gaussian(3, mean=[1.0, 2.0, 3.0]), "moment").moments()
    >>> round(spread, 6)
    3.0
    """
    if not isinstance(latent, Latent):
        raise TypeError(f"latent must be a Latent, got {type(latent).__name__}")
    check_option(method, "method", NORMALIZATIONS)
    mean, spread = latent.moments()
    box = latent.bounds() if method == "cube" else None
    shift, scale = _normalizing_map(mean, spread, box, latent.dim, method, "latent")
    return Affine(latent, shift, scale)


def normalize_samples(
    z: torch.Tensor, method: str = "moment", weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Differentiable normalisation of a finite set of latent points (n, dim), optionally weighted.

    Used while optimising latents: the normalisation is part of the computation graph, so the optimiser
    cannot lower D by inflating or shifting the latent.
    """
    check_option(method, "method", NORMALIZATIONS)
    z = check_samples(z, "z", min_samples=1)
    z = to_tensor(z)
    if weights is None:
        w = torch.full((z.shape[0],), 1.0 / z.shape[0], dtype=z.dtype)
    else:
        w = to_tensor(check_weights(weights, z.shape[0], "weights"), dtype=z.dtype, device=z.device)
    mean = w @ z
    centred = z - mean
    if method == "moment":
        spread = w @ (centred**2).sum(1)
        return centred * torch.sqrt(z.shape[1] / spread.clamp_min(1e-12))
    low, high = z.min(0).values, z.max(0).values
    half = ((high - low) / 2).max().clamp_min(1e-12)
    return (z - (low + high) / 2) / half


_NAMED = {"gaussian": Gaussian, "normal": Gaussian, "uniform": Uniform}


def make_latent(name: str, dim: int) -> Latent:
    """A data-independent latent by name: ``'gaussian'`` (N(0, I)) or ``'uniform'`` (U[-1, 1]^dim)."""
    check_option(name, "latent", sorted(_NAMED))
    return _NAMED[name](dim)


def as_latent_points(z: ArrayLike, dim: int | None = None, name: str = "z") -> torch.Tensor:
    """Validate an explicit array of latent points (n, dim) and return a float32 tensor."""
    arr = check_samples(z, name, dim=dim)
    return check_cast(to_tensor(arr), torch.float32, name)
