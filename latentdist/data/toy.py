"""Toy distributions with known latent, support, dimension and component count.

``make_dataset(name, n, noise=, ambient_dim=, seed=, **params)`` draws ``n`` samples in
three independent seeded streams: the native samples (formula below), then the random
isometry used by ``ambient_dim`` (QR of a Gaussian matrix), then the isotropic Gaussian
noise of standard deviation ``noise`` added *after* embedding:

    x = f(latent, labels) @ E + noise * eps,    eps ~ N(0, I_D).

Because the streams are independent, the noise-free points for a seed are the same
whatever ``noise`` is. ``f`` for each dataset is stated in its docstring; it is the
formula that maps ``ToyDataset.latent`` back to the noise-free ``x``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
from sklearn.datasets import make_s_curve, make_swiss_roll

from .._seeding import SeedLike, make_rng, spawn_seeds
from .._validation import check_array, check_cast, check_int, check_memory, check_option, check_scalar
from ._dataset import ChartDistance, ToyDataset, arc_distance, point_set_distance

__all__ = ["make_dataset", "available_datasets", "ToyDataset"]


class _Native(NamedTuple):
    x: np.ndarray
    latent: np.ndarray
    intrinsic_dim: int
    n_components: int
    distance: Callable[[np.ndarray], np.ndarray]
    params: dict[str, Any]
    labels: np.ndarray | None = None
    modes: np.ndarray | None = None
    mode_std: float | None = None


def _balanced_labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels in 0..k-1 with counts differing by at most one, in random order."""
    return rng.permutation(np.arange(n) % k).astype(np.int64)


def _sklearn_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


# --------------------------------------------------------------------------- datasets


def _two_points(n: int, rng: np.random.Generator, *, a: float = 2.0) -> _Native:
    """Two equal point masses on the line: P = 1/2 delta_{-a} + 1/2 delta_{+a}.

    Formula: ``x = a * latent`` with ``latent`` the sign s in {-1, +1} (shape (n, 1));
    ``labels = (s > 0)``. Intrinsic dimension 0, two components, ``modes = [[-a], [a]]``,
    ``mode_std = 0``. This is anchor A2 (docs/theory.md A2).
    """
    a = check_scalar(a, "a", low=0.0, low_inclusive=False)
    labels = rng.integers(0, 2, size=n).astype(np.int64)
    s = (2.0 * labels - 1.0)[:, None]
    modes = np.array([[-a], [a]])
    return _Native(a * s, s, 0, 2, point_set_distance(modes), {"a": a}, labels, modes, 0.0)


def _gaussian(
    n: int, rng: np.random.Generator, *, cov: Any = None, mean: Any = None
) -> _Native:
    """Gaussian N(mean, cov); ``cov`` may be singular (its support is then an affine subspace).

    With ``cov = V diag(lam) V^T`` (eigenvalues decreasing, only the r > 0 ones kept) and
    ``S = V_r diag(sqrt(lam_r))``, the formula is ``x = mean + latent @ S^T``, where
    ``latent`` (shape (n, r)) are the whitened coordinates along the principal axes,
    i.i.d. N(0, 1). Defaults: ``cov = I_2``, ``mean = 0``. ``cov`` may also be a 1-D
    array (the diagonal). Intrinsic dimension r = rank(cov), one component.
    """
    if cov is None:
        cov = np.eye(2) if mean is None else np.eye(np.size(mean))
    cov = np.asarray(check_array(cov, "cov", ndim=(1, 2)), dtype=np.float64)
    if cov.ndim == 1:
        cov = np.diag(cov)
    if cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise ValueError(f"cov must be a square (D, D) matrix, got shape {cov.shape}")
    dim = cov.shape[0]
    if not np.allclose(cov, cov.T, atol=1e-10 * max(1.0, np.abs(cov).max())):
        raise ValueError("cov must be symmetric")
    mean = np.zeros(dim) if mean is None else np.asarray(check_array(mean, "mean", ndim=1), np.float64)
    if mean.shape != (dim,):
        raise ValueError(f"mean must have shape ({dim},) to match cov, got {mean.shape}")
    lam, vec = np.linalg.eigh(cov)
    lam, vec = lam[::-1], vec[:, ::-1]
    tol = dim * np.finfo(float).eps * max(lam[0], 0.0) * 10
    if lam[-1] < -max(tol, 1e-12):
        raise ValueError(f"cov must be positive semi-definite, smallest eigenvalue {lam[-1]:.3g}")
    rank = int((lam > max(tol, 1e-12)).sum())
    if rank == 0:
        raise ValueError("cov must not be zero")
    scale = vec[:, :rank] * np.sqrt(lam[:rank])
    z = rng.standard_normal((n, rank))
    basis = vec[:, :rank]

    def dist(u: np.ndarray) -> np.ndarray:
        c = u - mean
        return np.linalg.norm(c - (c @ basis) @ basis.T, axis=1)

    return _Native(mean + z @ scale.T, z, rank, 1, dist, {"cov": cov.copy(), "mean": mean.copy()})


def _mixture(n: int, rng: np.random.Generator, centres: np.ndarray, std: float, params: dict) -> _Native:
    labels = rng.integers(0, len(centres), size=n).astype(np.int64)
    z = rng.standard_normal((n, centres.shape[1]))
    x = centres[labels] + std * z
    return _Native(x, z, centres.shape[1], len(centres), point_set_distance(centres), params, labels,
                   centres, std)


def _gaussian_mixture_ring(
    n: int, rng: np.random.Generator, *, k: int = 8, radius: float = 2.0, std: float = 0.05
) -> _Native:
    """k equal-weight isotropic Gaussians with centres on a circle.

    Centres ``c_j = radius * (cos(2 pi j / k), sin(2 pi j / k))``. Formula:
    ``x = c[labels] + std * latent`` with ``latent`` ~ N(0, I_2) the standardized
    within-mode offset. ``n_components = k`` (modes separated when ``std`` is small
    against the spacing ``2 radius sin(pi / k)``); ``manifold_distance`` is the distance to
    the nearest centre. ``intrinsic_dim = 2`` (each mode is a full-rank blob).
    """
    k = check_int(k, "k", low=1)
    radius = check_scalar(radius, "radius", low=0.0, low_inclusive=False)
    std = check_scalar(std, "std", low=0.0)
    ang = 2 * np.pi * np.arange(k) / k
    centres = radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    return _mixture(n, rng, centres, std, {"k": k, "radius": radius, "std": std})


def _gaussian_mixture_grid(
    n: int, rng: np.random.Generator, *, side: int = 5, spacing: float = 2.0, std: float = 0.05
) -> _Native:
    """``side**2`` equal-weight isotropic Gaussians on a square grid centred at the origin.

    Centres ``spacing * (i - (side-1)/2, j - (side-1)/2)`` for i, j in 0..side-1 (row-major
    label ``i * side + j``). Formula: ``x = c[labels] + std * latent``, ``latent`` ~ N(0, I_2).
    ``n_components = side**2``; ``intrinsic_dim = 2``.
    """
    side = check_int(side, "side", low=1)
    spacing = check_scalar(spacing, "spacing", low=0.0, low_inclusive=False)
    std = check_scalar(std, "std", low=0.0)
    g = spacing * (np.arange(side) - (side - 1) / 2)
    centres = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    return _mixture(n, rng, centres, std, {"side": side, "spacing": spacing, "std": std})


def _two_moons(n: int, rng: np.random.Generator) -> _Native:
    """scikit-learn's two moons, with i.i.d. uniform angles instead of its even grid.

    ``latent = t`` ~ U[0, pi] (shape (n, 1)); labels balanced. Formula (as
    ``sklearn.datasets.make_moons``): label 0 gives ``(cos t, sin t)``, label 1 gives
    ``(1 - cos t, 1/2 - sin t)``. Two components, intrinsic dimension 1.
    """
    labels = _balanced_labels(n, 2, rng)
    t = rng.uniform(0.0, np.pi, size=n)
    x = np.where(labels[:, None] == 0,
                 np.stack([np.cos(t), np.sin(t)], 1),
                 np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
    dist = arc_distance([((0.0, 0.0), 1.0, 0.0, np.pi), ((1.0, 0.5), 1.0, np.pi, np.pi)])
    return _Native(x, t[:, None], 1, 2, dist, {}, labels)


def _circles(n: int, rng: np.random.Generator, *, factor: float = 0.5) -> _Native:
    """Two concentric circles (scikit-learn's ``make_circles``), i.i.d. uniform angles.

    ``latent = theta`` ~ U[0, 2 pi) (shape (n, 1)); labels balanced; radius 1 for label 0
    and ``factor`` for label 1. Formula: ``x = r[labels] * (cos theta, sin theta)``.
    Two components, intrinsic dimension 1.
    """
    factor = check_scalar(factor, "factor", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    labels = _balanced_labels(n, 2, rng)
    th = rng.uniform(0.0, 2 * np.pi, size=n)
    r = np.where(labels == 0, 1.0, factor)[:, None]
    dist = arc_distance([((0.0, 0.0), 1.0, 0.0, 2 * np.pi), ((0.0, 0.0), factor, 0.0, 2 * np.pi)])
    return _Native(r * np.stack([np.cos(th), np.sin(th)], 1), th[:, None], 1, 2, dist,
                   {"factor": factor}, labels)


def _spiral_chart(u: np.ndarray) -> np.ndarray:
    t = u[:, 0]
    return np.stack([t * np.cos(t), t * np.sin(t)], 1)


def _spiral(
    n: int, rng: np.random.Generator, *, t_min: float = 1.5 * np.pi, t_max: float = 4.5 * np.pi
) -> _Native:
    """2-D swiss roll (Archimedean spiral): ``x = (t cos t, t sin t)``, ``t`` ~ U[t_min, t_max].

    ``latent = t`` (shape (n, 1)); the default range is scikit-learn's swiss-roll range.
    One component, intrinsic dimension 1.
    """
    t_min = check_scalar(t_min, "t_min", low=0.0)
    t_max = check_scalar(t_max, "t_max", low=t_min, low_inclusive=False)
    t = rng.uniform(t_min, t_max, size=(n, 1))
    return _Native(_spiral_chart(t), t, 1, 1, _chart_distance("spiral", (t_min, t_max)),
                   {"t_min": t_min, "t_max": t_max})


def _swiss_roll_chart(u: np.ndarray) -> np.ndarray:
    t, h = u[:, 0], u[:, 1]
    return np.stack([t * np.cos(t), h, t * np.sin(t)], 1)


def _swiss_roll(n: int, rng: np.random.Generator) -> _Native:
    """scikit-learn's swiss roll: ``x = (t cos t, h, t sin t)``.

    ``latent = (t, h)`` with ``t`` ~ U[1.5 pi, 4.5 pi], ``h`` ~ U[0, 21]; drawn with
    ``sklearn.datasets.make_swiss_roll(noise=0)`` (its returned ``t`` and height column).
    One component, intrinsic dimension 2.
    """
    x, t = make_swiss_roll(n, noise=0.0, random_state=_sklearn_seed(rng))
    return _Native(x, np.stack([np.reshape(t, -1), x[:, 1]], 1), 2, 1, _chart_distance("swiss_roll", ()), {})


def _s_curve_chart(u: np.ndarray) -> np.ndarray:
    t, h = u[:, 0], u[:, 1]
    return np.stack([np.sin(t), h, np.sign(t) * (np.cos(t) - 1)], 1)


def _s_curve(n: int, rng: np.random.Generator) -> _Native:
    """scikit-learn's S-curve: ``x = (sin t, h, sign(t) (cos t - 1))``.

    ``latent = (t, h)`` with ``t`` ~ U[-1.5 pi, 1.5 pi], ``h`` ~ U[0, 2]; drawn with
    ``sklearn.datasets.make_s_curve(noise=0)``. One component, intrinsic dimension 2.
    """
    x, t = make_s_curve(n, noise=0.0, random_state=_sklearn_seed(rng))
    return _Native(x, np.stack([np.reshape(t, -1), x[:, 1]], 1), 2, 1, _chart_distance("s_curve", ()), {})


def _helix_chart(u: np.ndarray, radius: float, rise: float) -> np.ndarray:
    t = u[:, 0]
    return np.stack([radius * np.cos(t), radius * np.sin(t), rise * t / (2 * np.pi)], 1)


def _helix(
    n: int, rng: np.random.Generator, *, turns: float = 3.0, radius: float = 1.0, rise: float = 1.0
) -> _Native:
    """Circular helix: ``x = (radius cos t, radius sin t, rise * t / (2 pi))``.

    ``latent = t`` ~ U[0, 2 pi turns] (shape (n, 1)); ``rise`` is the height gained per
    turn. One component, intrinsic dimension 1.
    """
    turns = check_scalar(turns, "turns", low=0.0, low_inclusive=False)
    radius = check_scalar(radius, "radius", low=0.0, low_inclusive=False)
    rise = check_scalar(rise, "rise", low=0.0)
    t = rng.uniform(0.0, 2 * np.pi * turns, size=(n, 1))
    return _Native(_helix_chart(t, radius, rise), t, 1, 1, _chart_distance("helix", (turns, radius, rise)),
                   {"turns": turns, "radius": radius, "rise": rise})


def _torus(n: int, rng: np.random.Generator, *, major: float = 2.0, minor: float = 1.0) -> _Native:
    """Ring torus in R^3 with angles drawn uniformly (not area-uniform).

    ``latent = (theta, phi)`` ~ U[0, 2 pi)^2, formula
    ``x = ((major + minor cos phi) cos theta, (major + minor cos phi) sin theta, minor sin phi)``.
    Exact distance: ``| sqrt((rho - major)^2 + x3^2) - minor |`` with ``rho = |(x1, x2)|``.
    Needs ``major > minor > 0``. One component, intrinsic dimension 2.
    """
    minor = check_scalar(minor, "minor", low=0.0, low_inclusive=False)
    major = check_scalar(major, "major", low=minor, low_inclusive=False)
    th, ph = rng.uniform(0.0, 2 * np.pi, size=(2, n))
    ring = major + minor * np.cos(ph)
    x = np.stack([ring * np.cos(th), ring * np.sin(th), minor * np.sin(ph)], 1)

    def dist(u: np.ndarray) -> np.ndarray:
        return np.abs(np.hypot(np.hypot(u[:, 0], u[:, 1]) - major, u[:, 2]) - minor)

    return _Native(x, np.stack([th, ph], 1), 2, 1, dist, {"major": major, "minor": minor})


def _sphere(n: int, rng: np.random.Generator, *, k: int = 2) -> _Native:
    """Uniform distribution on the unit sphere S^k in R^{k+1}.

    ``latent`` are the hyperspherical angles (phi_1..phi_k), phi_1..phi_{k-1} in [0, pi],
    phi_k in [0, 2 pi), with formula
    ``x_i = cos(phi_i) prod_{j<i} sin(phi_j)`` for i <= k and
    ``x_{k+1} = prod_{j<=k} sin(phi_j)`` (for k = 1: ``x = (cos phi, sin phi)``).
    One component, intrinsic dimension k, exact distance ``| |y| - 1 |``.
    """
    k = check_int(k, "k", low=1)
    g = rng.standard_normal((n, k + 1))
    x = g / np.linalg.norm(g, axis=1, keepdims=True)
    # Tail norms |x_{i:}| give phi_i = arccos(x_i / |x_{i:}|); the last angle needs atan2 for its sign.
    tail = np.sqrt(np.cumsum(x[:, ::-1] ** 2, axis=1)[:, ::-1])
    ratio = np.divide(x[:, : k - 1], tail[:, : k - 1], out=np.ones((n, k - 1)), where=tail[:, : k - 1] > 0)
    phi = np.arccos(np.clip(ratio, -1.0, 1.0))
    last = np.mod(np.arctan2(x[:, k], x[:, k - 1]), 2 * np.pi)
    latent = np.concatenate([phi, last[:, None]], axis=1)

    def dist(u: np.ndarray) -> np.ndarray:
        return np.abs(np.linalg.norm(u, axis=1) - 1.0)

    return _Native(x, latent, k, 1, dist, {"k": k})


def _disconnected_arcs(
    n: int, rng: np.random.Generator, *, k: int = 3, gap: float = 0.5, radius: float = 1.0
) -> _Native:
    """k equal arcs of a circle separated by equal empty gaps.

    Arc j is centred at angle ``2 pi j / k`` with half-width ``w = (1 - gap) pi / k``, so
    ``gap`` is the fraction of the circle left empty. ``latent = theta`` ~ uniform on the
    union (label j uniform, ``theta = 2 pi j / k + w (2U - 1)``), formula
    ``x = radius (cos theta, sin theta)``. k components, intrinsic dimension 1.
    """
    k = check_int(k, "k", low=1)
    gap = check_scalar(gap, "gap", low=0.0, high=1.0, low_inclusive=k == 1, high_inclusive=False)
    radius = check_scalar(radius, "radius", low=0.0, low_inclusive=False)
    w = (1 - gap) * np.pi / k
    labels = rng.integers(0, k, size=n).astype(np.int64)
    th = 2 * np.pi * labels / k + w * (2 * rng.uniform(size=n) - 1)
    x = radius * np.stack([np.cos(th), np.sin(th)], 1)
    dist = arc_distance([((0.0, 0.0), radius, 2 * np.pi * j / k - w, 2 * w) for j in range(k)])
    return _Native(x, th[:, None], 1, k, dist, {"k": k, "gap": gap, "radius": radius}, labels)


_DATASETS: dict[str, Callable[..., _Native]] = {
    "two_points": _two_points,
    "gaussian": _gaussian,
    "gaussian_mixture_ring": _gaussian_mixture_ring,
    "gaussian_mixture_grid": _gaussian_mixture_grid,
    "two_moons": _two_moons,
    "circles": _circles,
    "spiral": _spiral,
    "swiss_roll": _swiss_roll,
    "s_curve": _s_curve,
    "helix": _helix,
    "torus": _torus,
    "sphere": _sphere,
    "disconnected_arcs": _disconnected_arcs,
}


@lru_cache(maxsize=32)
def _chart_distance(name: str, key: tuple[float, ...]) -> ChartDistance:
    """One lazily built grid + KD-tree per (chart, parameters), shared across datasets and seeds."""
    if name == "spiral":
        t_min, t_max = key
        return ChartDistance(_spiral_chart, [t_min], [t_max], (20001,))
    if name == "swiss_roll":
        return ChartDistance(_swiss_roll_chart, [1.5 * np.pi, 0.0], [4.5 * np.pi, 21.0], (600, 200))
    if name == "s_curve":
        return ChartDistance(_s_curve_chart, [-1.5 * np.pi, 0.0], [1.5 * np.pi, 2.0], (600, 60))
    turns, radius, rise = key
    return ChartDistance(lambda u: _helix_chart(u, radius, rise), [0.0], [2 * np.pi * turns],
                         (int(4000 * turns) + 1,))


# --------------------------------------------------------------------------- public API


def available_datasets() -> list[str]:
    """Names accepted by :func:`make_dataset`, sorted.

    Examples
    --------
    >>> "swiss_roll" in available_datasets()
    True
    """
    return sorted(_DATASETS)


def dataset_keywords(name: str) -> dict[str, Any]:
    """The dataset-specific keywords of ``name`` and their defaults."""
    name = check_option(name, "name", available_datasets())
    sig = inspect.signature(_DATASETS[name])
    return {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}


def random_isometry(native_dim: int, ambient_dim: int, seed: SeedLike = 0) -> np.ndarray:
    """A random (native_dim, ambient_dim) matrix with orthonormal rows (QR of a Gaussian matrix).

    The sign of each column of Q is fixed by the diagonal of R so the result is Haar
    distributed on the Stiefel manifold. ``u @ E`` then preserves all distances.
    """
    native_dim = check_int(native_dim, "native_dim", low=1)
    ambient_dim = check_int(ambient_dim, "ambient_dim", low=native_dim)
    check_memory(16.0 * native_dim * ambient_dim, f"native_dim={native_dim} with ambient_dim={ambient_dim}")
    q, r = np.linalg.qr(make_rng(seed).standard_normal((ambient_dim, native_dim)))
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    return np.ascontiguousarray(q.T)


def make_dataset(
    name: str,
    n: int,
    *,
    noise: float = 0.0,
    ambient_dim: int | None = None,
    seed: SeedLike = 0,
    **params: Any,
) -> ToyDataset:
    """Draw ``n`` samples of a named toy distribution with its ground truth.

    The samples are ``x = f(latent, labels) @ E + noise * eps`` where ``f`` is the
    dataset's formula (see its docstring, e.g. ``help(latentdist.data.toy._sphere)``
    or the table below), ``E`` the (D0, D) isometry of ``ambient_dim`` (identity
    when ``ambient_dim`` is None) and ``eps ~ N(0, I_D)``.

    ======================  ====  ===  =====  =====================================
    name                    D0    k    comps  keywords (defaults)
    ======================  ====  ===  =====  =====================================
    two_points              1     0    2      a=2
    gaussian                D     r    1      cov=I_2, mean=0
    gaussian_mixture_ring   2     2    k      k=8, radius=2, std=0.05
    gaussian_mixture_grid   2     2    s^2    side=5, spacing=2, std=0.05
    two_moons               2     1    2
    circles                 2     1    2      factor=0.5
    spiral                  2     1    1      t_min=1.5 pi, t_max=4.5 pi
    swiss_roll              3     2    1
    s_curve                 3     2    1
    helix                   3     1    1      turns=3, radius=1, rise=1
    torus                   3     2    1      major=2, minor=1
    sphere                  k+1   k    1      k=2
    disconnected_arcs       2     1    k      k=3, gap=0.5, radius=1
    ======================  ====  ===  =====  =====================================

    Parameters
    ----------
    name : str
        One of :func:`available_datasets`.
    n : int
        Number of samples, >= 1.
    noise : float
        Standard deviation of isotropic Gaussian noise added after embedding.
    ambient_dim : int, optional
        Embed in R^ambient_dim (>= D0) by a seeded random isometry.
    seed : int or Generator
        Seeds the samples, the embedding and the noise (three independent streams).
    **params
        Dataset keywords from the table.

    Returns
    -------
    ToyDataset
        ``x`` has shape (n, D) with D = ambient_dim or D0; ``latent`` shape (n, k').

    Examples
    --------
    >>> ds = make_dataset("circles", 500, ambient_dim=10, noise=0.01, seed=1)
    >>> ds.x.shape, ds.latent.shape, ds.n_components
    ((500, 10), (500, 1), 2)
    """
    name = check_option(name, "name", available_datasets())
    n = check_int(n, "n", low=1)
    noise = check_scalar(noise, "noise", low=0.0)
    allowed = dataset_keywords(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown keyword(s) {unknown} for dataset {name!r}; accepted: {sorted(allowed)}")
    if ambient_dim is not None:
        ambient_dim = check_int(ambient_dim, "ambient_dim")
    # Three float64 buffers of (n, D) at most (samples, embedded samples, noise); D0 <= 4 natively
    # except for 'gaussian' and 'sphere', whose own dimension keyword sets it.
    width = max(ambient_dim or 0, 4, *(int(v) for k, v in params.items() if k in ("k", "dim")
                                       and isinstance(v, (int, np.integer))))
    check_memory(24.0 * n * width, f"n={n} samples of dimension {width} (n and ambient_dim)")
    data_seed, embed_seed, noise_seed = spawn_seeds(seed, 3)
    nat = _DATASETS[name](n, make_rng(data_seed), **params)
    x = np.asarray(nat.x, dtype=np.float64)
    native_dim = x.shape[1]
    embedding = None
    if ambient_dim is not None:
        if ambient_dim < native_dim:
            raise ValueError(
                f"ambient_dim must be >= the native dimension {native_dim} of {name!r}, got {ambient_dim}"
            )
        embedding = random_isometry(native_dim, ambient_dim, embed_seed)
        x = x @ embedding
    if noise > 0:
        with np.errstate(over="ignore", invalid="ignore"):
            x = x + noise * make_rng(noise_seed).standard_normal(x.shape)
        # Noise near 1e308 overflows float64 to inf, which must not reach a distance silently.
        check_cast(x, np.float64, f"x (the samples with noise={noise:g})")
    modes = nat.modes
    if modes is not None and embedding is not None:
        modes = modes @ embedding
    resolved = {**nat.params, "noise": noise, "ambient_dim": ambient_dim}
    return ToyDataset(
        name=name,
        x=x,
        latent=np.asarray(nat.latent, dtype=np.float64),
        intrinsic_dim=int(nat.intrinsic_dim),
        n_components=int(nat.n_components),
        params=resolved,
        labels=nat.labels,
        modes=None if modes is None else np.asarray(modes, dtype=np.float64),
        mode_std=nat.mode_std,
        embedding=embedding,
        native_distance=nat.distance,
    )
