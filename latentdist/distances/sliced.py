"""Sliced and max-sliced Wasserstein distances (POT's projections and 1-D solver)."""

from __future__ import annotations

from typing import Any

import ot
import torch

from .._seeding import SeedLike, make_torch_generator, seed_int
from .._validation import check_int, check_lr, check_memory, check_steps
from ..optim import make_optimizer, update
from ._blocked import block_rows, resolve_cap
from ._common import check_p, prepare_pair, safe_root

#: More random directions than this change nothing visible (the Monte-Carlo error is ~1/sqrt(k)) and
#: only make a call run for hours.
MAX_PROJECTIONS = 10**6

#: Arrays of n + m numbers that one direction needs at once: the projections, POT's sorted copies and
#: sort indices, the cumulative weights, their merged quantile grid and the two quantile functions
#: (measured with tracemalloc: about 12 at n = m = 2000; 14 leaves a margin).
DIRECTION_COPIES = 14

__all__ = ["sliced_wasserstein", "max_sliced_wasserstein"]


def _projected_wpp(x, y, a, b, theta, p: float, chunk: int | None = None):
    """W_p^p of the 1-D projections on each column of ``theta`` (D, k), numpy or torch alike; k is
    processed ``chunk`` at a time so memory stays at O((n + m) * chunk). The default chunk keeps
    the projected samples near 2^22 numbers (32 MB in float64): one call at n = 1000, k = 128."""
    if chunk is None:
        chunk = max(1, (1 << 22) // (x.shape[0] + y.shape[0]))
    nx = ot.backend.get_backend(x, y)
    parts = [ot.wasserstein_1d(x @ theta[:, i:i + chunk], y @ theta[:, i:i + chunk], a, b, p=p)
             for i in range(0, theta.shape[1], chunk)]
    return nx.concatenate(parts)


def sliced_wasserstein(
    x: Any,
    y: Any,
    p: float = 2,
    n_projections: int = 128,
    seed: SeedLike = 0,
    *,
    x_weights: Any = None,
    y_weights: Any = None,
    chunk_size: int | None = None,
    memory_cap: int | None = None,
    device: Any = None,
) -> float | torch.Tensor:
    r"""Sliced p-Wasserstein distance with Monte-Carlo directions on the sphere.

    .. math::

        SW_p(\mu, \nu) = \Big(\mathbb{E}_{\theta \sim U(S^{D-1})}\,
            W_p^p(\theta^\top\!\#\mu,\ \theta^\top\!\#\nu)\Big)^{1/p},

    estimated with ``n_projections`` directions drawn by ``ot.sliced.get_random_projections`` (seeded
    with ``seed``); each 1-D problem is solved exactly by ``ot.wasserstein_1d`` (sorting, handles
    unequal sizes and weights). Equivalent to ``ot.sliced_wasserstein_distance`` but with projections
    processed in chunks of ``chunk_size`` (default: about 2^22 / (n + m) directions per chunk), lowered
    so that a chunk's ``14 (n + m) * chunk * itemsize`` bytes fit ``memory_cap``: memory is
    O((n + m) * chunk_size), bounded at n = 50k, and no (n, n_projections) array is built at once.

    Parameters
    ----------
    x, y : array or tensor, shapes (n, D), (m, D)
    p : float, default 2
    n_projections : int, default 128
    seed : int or Generator
        Seeds the directions; the same seed gives the same directions (and numbers).
    x_weights, y_weights : optional sample weights, shapes (n,), (m,)
    chunk_size : int, optional
        Directions per batch.
    memory_cap : int, optional
        Bytes one batch of directions may take (default: half the available RAM, or
        ``$LATENTDIST_MAX_BYTES``).
    device : str or torch.device, optional
        Where to compute ('cpu', 'cuda', 'cuda:N', 'auto'); default: the inputs' device (CPU for numpy).

    Returns
    -------
    float or torch.Tensor
        SW_p (p-th root taken); a differentiable 0-d tensor when an input requires grad.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((5, 3)); y = np.zeros((5, 3))
    >>> sliced_wasserstein(x, y)
    0.0
    """
    p = check_p(p)
    n_projections = check_int(n_projections, "n_projections", low=1, high=MAX_PROJECTIONS)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", low=1)
    cap = resolve_cap(memory_cap)
    pair = prepare_pair(x, y, x_weights=x_weights, y_weights=y_weights, min_samples=2, rescale=True,
                        device=device)
    dim, pool = pair.x.shape[1], pair.x.shape[0] + pair.y.shape[0]
    fit = block_rows(cap, DIRECTION_COPIES * pool * pair.x.element_size(), n_projections, "projections")
    chunk_size = min(chunk_size or max(1, (1 << 22) // pool), fit)
    check_memory(8.0 * dim * n_projections, f"n_projections={n_projections} directions in D={dim}")
    # Drawn with POT's numpy generator so the directions match ot.sliced_wasserstein_distance(seed=...);
    # that generator takes 32-bit seeds, and spawned seeds are 63-bit, hence the reduction.
    theta = ot.sliced.get_random_projections(pair.x.shape[1], n_projections, seed_int(seed) % 2**32)
    if pair.grad or pair.x.device.type != "cpu":  # torch on the device; numpy only on CPU
        theta = torch.as_tensor(theta, dtype=pair.x.dtype, device=pair.x.device)
        wpp = _projected_wpp(pair.x, pair.y, pair.a, pair.b, theta, p, chunk_size).mean()
    else:  # POT's numpy path (the sort is faster than torch's on CPU); same numbers
        arrays = [None if t is None else t.detach().cpu().numpy() for t in (pair.x, pair.y, pair.a, pair.b)]
        per_direction = _projected_wpp(*arrays, theta.astype(arrays[0].dtype), p, chunk_size)
        wpp = torch.tensor(float(per_direction.mean()), dtype=torch.float64)
    return pair.result(safe_root(wpp.clamp_min(0.0), p), 1.0, "sliced distance")


def max_sliced_wasserstein(
    x: Any,
    y: Any,
    p: float = 2,
    n_iter: int = 100,
    seed: SeedLike = 0,
    *,
    n_starts: int = 64,
    lr: float = 0.1,
    x_weights: Any = None,
    y_weights: Any = None,
    device: Any = None,
) -> float | torch.Tensor:
    r"""Max-sliced p-Wasserstein distance with the direction optimized on the sphere.

    .. math::

        \max\text{-}SW_p(\mu, \nu) = \max_{\|\theta\| = 1} W_p(\theta^\top\!\#\mu,\ \theta^\top\!\#\nu).

    The best of ``n_starts`` random directions is refined by ``n_iter`` steps of projected
    (Riemannian) gradient ascent on the sphere with Adam on the direction and renormalization after each
    step; the returned value is W_p along the best direction seen, so it is never below the best
    random direction (``ot.max_sliced_wasserstein_distance`` only takes that random maximum). The
    objective is non-concave; this is a lower bound on the true maximum.

    Parameters
    ----------
    x, y : array or tensor, shapes (n, D), (m, D)
    p : float, default 2
    n_iter : int, default 100
        Ascent steps (0 gives POT's random-maximum estimate).
    seed : int or Generator
    n_starts : int, default 64
        Random directions tried before the ascent.
    lr : float, default 0.1
        Adam step size on the direction.
    x_weights, y_weights : optional sample weights
    device : str or torch.device, optional
        Where to compute ('cpu', 'cuda', 'cuda:N', 'auto'); default: the inputs' device (CPU for numpy).

    Returns
    -------
    float or torch.Tensor
        The distance (p-th root taken); differentiable in the samples when an input requires grad
        (the direction is held at its optimum, the envelope theorem).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(300, 5)); y = x + np.array([3.0, 0, 0, 0, 0])
    >>> round(max_sliced_wasserstein(x, y), 3)  # the shift direction is found: W_2 = 3
    3.0
    """
    p = check_p(p)
    n_iter = check_steps(n_iter, "n_iter", low=0)
    n_starts = check_int(n_starts, "n_starts", low=1, high=MAX_PROJECTIONS)
    lr = check_lr(lr, "lr")
    pair = prepare_pair(x, y, x_weights=x_weights, y_weights=y_weights, min_samples=2, rescale=True,
                        device=device)
    xd, yd = pair.x.detach(), pair.y.detach()
    ad = None if pair.a is None else pair.a.detach()
    bd = None if pair.b is None else pair.b.detach()
    gen = make_torch_generator(seed)
    starts = torch.randn(xd.shape[1], n_starts, generator=gen, dtype=xd.dtype).to(xd.device)
    starts = starts / starts.norm(dim=0, keepdim=True)
    with torch.no_grad():
        vals = _projected_wpp(xd, yd, ad, bd, starts, p)
    best_val, best_theta = vals.max(), starts[:, int(vals.argmax())].clone()
    theta = best_theta.clone().requires_grad_(True)
    opt, _ = make_optimizer([theta], lr, maximize=True)

    def ascent_step(step: int) -> dict:
        nonlocal best_val, best_theta
        unit = theta / theta.norm()
        val = ot.wasserstein_1d(xd @ unit[:, None], yd @ unit[:, None], ad, bd, p=p)[0]
        update(opt, val)
        with torch.no_grad():
            theta.div_(theta.norm())  # projected ascent: back onto the sphere
            if val.detach() > best_val:
                best_val, best_theta = val.detach(), (unit.detach()).clone()
        return {}

    if n_iter:
        from latentdist.train.loop import run_loop  # lazily: the train package imports the distances

        with torch.enable_grad():
            run_loop(ascent_step, steps=n_iter, device=xd.device)
    with torch.no_grad():
        final = ot.wasserstein_1d(xd @ theta[:, None], yd @ theta[:, None], ad, bd, p=p)[0]
        if final > best_val:
            best_theta = theta.detach().clone()
    direction = best_theta[:, None]
    wpp = ot.wasserstein_1d(pair.x @ direction, pair.y @ direction, pair.a, pair.b, p=p)[0]
    return pair.result(safe_root(wpp.clamp_min(0.0), p), 1.0, "sliced distance")
