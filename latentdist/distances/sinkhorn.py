"""Debiased Sinkhorn divergence with POT, GeomLoss and bounded-memory blocked backends (all log-domain)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import ot
import torch

from .._validation import (
    check_array,
    check_device,
    check_int,
    check_option,
    check_scalar,
    check_weights,
    is_tensor,
    to_tensor,
)
from ._blocked import resolve_cap, sinkhorn_blocked
from ._common import check_p, normalize_scale, pairwise_sq_dists, times_pow2, unscale

__all__ = ["sinkhorn_divergence", "SINKHORN_BACKENDS"]

SINKHORN_BACKENDS = ("auto", "pot", "geomloss", "blocked")

# Above this many cost entries (n*m; at 5000^2 GeomLoss's four float64 matrices take 800 MB) the dense
# matrices of GeomLoss's tensorized backend and of POT's dense solver stop fitting comfortably in
# memory, so 'auto' switches to the blocked backend (float32 costs stored under memory_cap, blocked
# softmin), and backend='pot' to POT's lazy (row-block) solver, memory O((n + m) * batch_size).
LAZY_THRESHOLD = 5000 * 5000

#: Working dtype of the 'blocked' backend: float32 halves the stored cost matrices (4.8 GB at
#: n = m = 20,000) and doubles the log-sum-exp throughput; its accuracy cost is in benchmarks/README.md.
BLOCKED_DTYPE = torch.float32

# Epsilon-scaling sweeps beyond which a (blur, scaling) pair is refused rather than left to run for
# hours: 20,000 sweeps is blur ~1e-46 of the diameter at the default scaling 0.9 and p = 2.
MAX_SWEEPS = 20_000


def _cost(x: torch.Tensor, y: torch.Tensor, p: float) -> torch.Tensor:
    """``||x_i - y_j||^p`` for batched (B, n, D), (B, m, D) -> (B, n, m), finite gradient at 0.

    p = 2 uses the Gram expansion (BLAS); other p use coordinate differences, because the root would
    amplify the expansion's cancellation error to ~sqrt(eps).
    """
    if p == 2.0:
        return pairwise_sq_dists(x, y)
    return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist") ** p


def _check_batch(x: Any, y: Any, x_weights: Any, y_weights: Any, device_arg: Any = None):
    x = check_array(x, "x", ndim=(2, 3))
    y = check_array(y, "y", ndim=(2, 3))
    if x.ndim != y.ndim:
        raise ValueError(
            f"x and y must both be 2-D (n, D) or both 3-D (B, n, D), got {x.ndim}-D and {y.ndim}-D"
        )
    batched = x.ndim == 3
    if batched and x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same batch size B, got {x.shape[0]} and {y.shape[0]}")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"x and y must have the same number of features, got {x.shape[-1]} and {y.shape[-1]}"
        )
    if x.shape[-1] == 0:
        raise ValueError("x and y must have at least one feature")
    for name, arr in (("x", x), ("y", y)):
        if arr.shape[-2] < 2:
            raise ValueError(f"{name} needs at least 2 samples, got {arr.shape[-2]}")
    grad = any(is_tensor(t) and t.requires_grad for t in (x, y, x_weights, y_weights))
    dtype = next((t.dtype for t in (x, y) if is_tensor(t)), torch.float64)
    device = next((t.device for t in (x, y) if is_tensor(t)), torch.device("cpu"))
    if device_arg is not None:
        device = check_device(device_arg)
    xt = to_tensor(x, dtype=dtype, device=device)
    yt = to_tensor(y, dtype=dtype, device=device)
    if not batched:
        xt, yt = xt[None], yt[None]
    B, n, m = xt.shape[0], xt.shape[1], yt.shape[1]

    def weights(w: Any, size: int, name: str) -> torch.Tensor:
        if w is None:
            return torch.full((B, size), 1.0 / size, dtype=dtype, device=device)
        w = check_array(w, name, ndim=(1, 2))
        if w.ndim == 1:
            w = to_tensor(check_weights(w, size, name), dtype=dtype, device=device)
            return w.expand(B, size)
        if w.shape[0] != B:
            raise ValueError(f"{name} must have shape ({B}, {size}), got {tuple(w.shape)}")
        rows = [to_tensor(check_weights(w[i], size, name), dtype=dtype, device=device) for i in range(B)]
        return torch.stack(rows)

    a, b = weights(x_weights, n, "x_weights"), weights(y_weights, m, "y_weights")
    return xt, yt, a, b, batched, grad


def _eps_schedule(diameter: float, p: float, blur: float, scaling: float) -> list[float]:
    """Epsilon-scaling: eps from diameter^p down to blur^p by factors scaling^p (as in GeomLoss)."""
    if diameter <= blur:
        return [blur**p]
    steps = np.arange(p * math.log(diameter), p * math.log(blur), p * math.log(scaling))
    return [diameter**p, *np.exp(steps)[1:].tolist(), blur**p]


def _diameter(x: np.ndarray, y: np.ndarray) -> float:
    """2 max ||z - mean||: an upper bound on the pooled diameter that, unlike GeomLoss's bounding box,
    is invariant to rotations (so the epsilon schedule, and the result, are too)."""
    both = np.concatenate([x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])])
    return float(2.0 * np.linalg.norm(both - both.mean(0), axis=1).max())


def _primal_value(plan: np.ndarray, an: np.ndarray, bn: np.ndarray, cost: torch.Tensor,
                  eps: float) -> torch.Tensor:
    """<pi, C> + eps KL(pi | a x b), differentiable in ``C`` with ``pi`` held fixed (envelope theorem)."""
    tiny = np.finfo(np.float64).tiny
    kl = float(np.sum(np.where(plan > 0, plan * np.log(np.maximum(plan, tiny) / np.outer(an, bn)), 0.0)))
    plan_t = torch.as_tensor(plan, dtype=cost.dtype, device=cost.device)
    return (plan_t * cost).sum() + eps * kl


def _entropic_ot_pot(a: torch.Tensor, b: torch.Tensor, cost: torch.Tensor, schedule: list[float],
                     max_iter: int, tol: float) -> torch.Tensor:
    r"""OT_eps(a, b) = <pi, C> + eps KL(pi | a x b) at POT's log-domain Sinkhorn plan, eps = schedule[-1].

    ``ot.sinkhorn(method='sinkhorn_log')`` is warm-started along the epsilon schedule (two sweeps per
    level, then up to ``max_iter`` at the target) because plain log-domain Sinkhorn at small eps needs
    thousands of sweeps. The plan is computed without gradient; by the envelope theorem the gradient
    of the optimal value with respect to ``C`` is the plan, which is what differentiating ``<pi, C>``
    with ``pi`` held fixed gives.
    """
    an, bn = a.detach().cpu().numpy().astype(np.float64), b.detach().cpu().numpy().astype(np.float64)
    cn = cost.detach().cpu().numpy().astype(np.float64)
    f, g = np.zeros_like(an), np.zeros_like(bn)  # dual potentials in cost units
    for level, eps in enumerate(schedule):
        last = level == len(schedule) - 1
        # POT also returns exp(log_u) in its log; that overflows at small eps and is not used here.
        with np.errstate(over="ignore"):
            plan, log = ot.sinkhorn(an, bn, cn, reg=eps, method="sinkhorn_log",
                                    numItermax=max_iter if last else 2, stopThr=tol,
                                    warmstart=(f / eps, g / eps), log=True, warn=False)
        f, g = eps * log["log_u"], eps * log["log_v"]
    return _primal_value(plan, an, bn, cost, schedule[-1])


def _entropic_ot_self(a: torch.Tensor, cost: torch.Tensor, schedule: list[float], max_iter: int,
                      tol: float) -> torch.Tensor:
    r"""OT_eps(a, a) by the symmetric (averaged) log-domain Sinkhorn fixed point.

    Alternating Sinkhorn oscillates on the symmetric problem (measured: 10^4 sweeps to reach a
    marginal error of 1e-7 at n = 300, eps = 0.09), and POT has no symmetric solver, so this is the
    averaged update f <- (f + T_eps(f)) / 2 of Feydy et al. (2019), where
    T_eps(f)_i = -eps log sum_j a_j exp((f_j - C_ij) / eps). Converges in tens of sweeps.
    """
    from scipy.special import logsumexp

    an = a.detach().cpu().numpy().astype(np.float64)
    cn = cost.detach().cpu().numpy().astype(np.float64)
    loga = np.log(an)
    f = np.zeros_like(an)
    for level, eps in enumerate(schedule):
        sweeps = max_iter if level == len(schedule) - 1 else 1
        for _ in range(sweeps):
            f_new = 0.5 * (f - eps * logsumexp(loga[None, :] + (f[None, :] - cn) / eps, axis=1))
            done = np.max(np.abs(f_new - f)) < tol * max(1.0, eps)
            f = f_new
            if done and level == len(schedule) - 1:
                break
    eps = schedule[-1]
    # One last C-transform makes the plan's marginals exact to rounding before evaluating the value.
    f = -eps * logsumexp(loga[None, :] + (f[None, :] - cn) / eps, axis=1)
    plan = np.exp(loga[:, None] + loga[None, :] + (f[:, None] + f[None, :] - cn) / eps)
    plan = 0.5 * (plan + plan.T)
    return _primal_value(plan, an, an, cost, eps)


def _entropic_ot_pot_lazy(xs: np.ndarray, xt: np.ndarray, a: np.ndarray, b: np.ndarray, p: float,
                          schedule: list[float], max_iter: int, tol: float, batch_size: int) -> float:
    """OT_eps from the dual potentials of POT's block-wise (lazy) Sinkhorn; memory O((n+m) * batch)."""
    metric = "sqeuclidean" if p == 2.0 else "euclidean"
    f, g = np.zeros_like(a), np.zeros_like(b)
    for level, eps in enumerate(schedule):
        last = level == len(schedule) - 1
        lf, lg = ot.bregman.empirical_sinkhorn(xs, xt, eps, a, b, metric=metric,
                                               numIterMax=max_iter if last else 1, stopThr=tol, isLazy=True,
                                               batchSize=batch_size, warn=False, warmstart=(f / eps, g / eps))
        f, g = eps * lf, eps * lg
    # POT's potentials include the log-weights: pi_ij = exp((f_i + g_j - C_ij) / eps). The
    # KL(pi | a x b) dual value is <a, f - eps log a> + <b, g - eps log b>.
    eps = schedule[-1]
    return float(np.dot(a, f - eps * np.log(a)) + np.dot(b, g - eps * np.log(b)))


def _divergence_geomloss(x, y, a, b, p, blur, scaling):
    from geomloss import SamplesLoss

    # The custom cost is ||x-y||^p itself (GeomLoss's default is ||x-y||^p / p); GeomLoss sets
    # eps = blur^p, so this is exactly the convention documented in sinkhorn_divergence.
    diameter = max(_diameter(x.detach().cpu().numpy(), y.detach().cpu().numpy()), blur)
    loss = SamplesLoss("sinkhorn", p=p, blur=blur, scaling=scaling, debias=True, backend="tensorized",
                       diameter=diameter, cost=lambda u, v: _cost(u, v, p))
    return loss(a, x, b, y)


def _divergence_blocked(x, y, a, b, p, blur, scaling, cap):
    # GeomLoss's temperature schedule from the same diameter as the 'geomloss' backend, so the two
    # backends run the same iterations and differ only by the float32 storage and summation order.
    from geomloss._legacy.sinkhorn_divergence import epsilon_schedule

    diameter = max(_diameter(x.detach().cpu().numpy(), y.detach().cpu().numpy()), blur)
    eps_list = [float(e) for e in epsilon_schedule(p, diameter, blur, scaling)]
    work = [t.to(BLOCKED_DTYPE) for t in (x, y, a, b)]
    values, _ = sinkhorn_blocked(*work, lambda u, v: _cost(u, v, p), eps_list, cap)
    return values.to(x.dtype)


def _divergence_pot(x, y, a, b, p, blur, scaling, max_iter, tol, lazy, batch_size):
    out = []
    for i in range(x.shape[0]):
        xn, yn = x[i].detach().cpu().numpy(), y[i].detach().cpu().numpy()
        eps = _eps_schedule(_diameter(xn, yn), p, blur, scaling)
        if lazy:
            args = [t.detach().cpu().numpy().astype(np.float64) for t in (x[i], y[i], a[i], b[i])]
            xs, ys, ai, bi = args
            ab = _entropic_ot_pot_lazy(xs, ys, ai, bi, p, eps, max_iter, tol, batch_size)
            aa = _entropic_ot_pot_lazy(xs, xs, ai, ai, p, eps, max_iter, tol, batch_size)
            bb = _entropic_ot_pot_lazy(ys, ys, bi, bi, p, eps, max_iter, tol, batch_size)
            out.append(torch.tensor(ab - 0.5 * (aa + bb), dtype=x.dtype))
        else:
            ab = _entropic_ot_pot(a[i], b[i], _cost(x[i], y[i], p), eps, max_iter, tol)
            aa = _entropic_ot_self(a[i], _cost(x[i], x[i], p), eps, max_iter, tol)
            bb = _entropic_ot_self(b[i], _cost(y[i], y[i], p), eps, max_iter, tol)
            out.append(ab - 0.5 * (aa + bb))
    return torch.stack(out)


def sinkhorn_divergence(
    x: Any,
    y: Any,
    p: float = 2,
    blur: float = 0.05,
    *,
    scaling: float = 0.9,
    backend: str = "auto",
    x_weights: Any = None,
    y_weights: Any = None,
    max_iter: int = 2000,
    tol: float = 1e-7,
    batch_size: int = 512,
    memory_cap: int | None = None,
    device: Any = None,
) -> float | np.ndarray | torch.Tensor:
    r"""Debiased Sinkhorn divergence with ground cost ``||x - y||^p`` and ``eps = blur^p``.

    .. math::

        OT_\varepsilon(\alpha, \beta) = \min_{\pi \in \Pi(a, b)} \langle \pi, C \rangle
            + \varepsilon\, \mathrm{KL}(\pi \,\|\, a \otimes b), \qquad C_{ij} = \|x_i - y_j\|^p,

        S_\varepsilon(\alpha, \beta) = OT_\varepsilon(\alpha, \beta)
            - \tfrac12 OT_\varepsilon(\alpha, \alpha) - \tfrac12 OT_\varepsilon(\beta, \beta).

    Convention: the cost is ``||x-y||^p`` (not GeomLoss's ``||x-y||^p / p``) and
    :math:`\varepsilon = \text{blur}^p`, so :math:`S_\varepsilon \to W_p^p` as ``blur -> 0`` (no p-th root is
    taken) and :math:`S_\varepsilon \ge 0`, with equality iff the measures coincide. Both backends are
    log-domain and stay finite at small blur.

    Backends
    --------
    ``'geomloss'``
        ``geomloss.SamplesLoss('sinkhorn', backend='tensorized')`` with the cost above passed as a
        custom cost; epsilon-scaling from the point cloud's diameter down to ``blur`` with ratio
        ``scaling``. Dense (B, n, m) matrices. Batched natively; gradients by GeomLoss's envelope trick.
    ``'pot'``
        ``ot.sinkhorn(..., method='sinkhorn_log')`` per problem (no epsilon-scaling, so ``max_iter`` and
        ``tol`` matter at small blur); the value is evaluated at the returned plan and differentiated by
        the envelope theorem (plan held fixed). When ``n * m`` exceeds ``LAZY_THRESHOLD`` (5000^2) and
        no gradient is needed it uses POT's block-wise ``empirical_sinkhorn(isLazy=True)`` (p = 1 or 2
        only), whose memory is O((n + m) * batch_size): the bounded-memory path for n = 20k.
    ``'auto'``
        GeomLoss while ``n * m <= LAZY_THRESHOLD``, because it is much faster: it does one sweep per
        annealing level, ~log(diameter/blur)/log(1/scaling) sweeps in all, while POT's solver is
        iterated to ``tol`` (measured, n = 1000 in 2-D, blur 0.05: GeomLoss 3.2 s, POT 302 s on the
        shared 2-core machine). The price is accuracy: GeomLoss stops at the target temperature
        under-converged and is biased low, measured -0.04% (that case) and -0.9% (40 vs 30 points in
        3-D, blur 0.3) at scaling 0.9, -0.01% at 0.999; raise ``scaling`` or use ``backend='pot'``
        when the digits matter. Beyond the threshold (and without gradient): ``'blocked'``.
    ``'blocked'``
        The bounded-memory path for large n (no gradient): GeomLoss's Sinkhorn loop (the same
        iterations as ``'geomloss'``) with a row-blocked softmin. C(x, y), C(x, x), C(y, y) are
        stored in float32 when their ``4 (nm + n^2 + m^2)`` bytes fit ``memory_cap``, and recomputed
        block by block otherwise (slower, memory O((n + m) * rows)); see
        :mod:`latentdist.distances._blocked`. float32 costs the digits measured in
        ``benchmarks/README.md`` (large n) against the float64 ``'geomloss'`` value.

    Parameters
    ----------
    x : array or tensor, shape (n, D) or (B, n, D)
    y : array or tensor, shape (m, D) or (B, m, D)
    p : float, default 2
        Cost exponent (>= 1).
    blur : float, default 0.05
        Entropic length scale; ``eps = blur ** p``.
    scaling : float in (0, 1), default 0.9
        Epsilon-scaling ratio (GeomLoss backend only).
    backend : {'auto', 'pot', 'geomloss'}
    x_weights, y_weights : array or tensor, shape (n,) / (m,) or (B, n) / (B, m), optional
    max_iter, tol : int, float
        Iteration cap and marginal-error tolerance of the POT backend.
    batch_size : int
        Row-block size of POT's lazy solver.
    memory_cap : int, optional
        Bytes the ``'blocked'`` backend may allocate beside its inputs (default: half the available
        RAM, or ``$LATENTDIST_MAX_BYTES``).
    device : str or torch.device, optional
        Where to compute ('cpu', 'cuda', 'cuda:N', 'auto'); default: the inputs' device (CPU for numpy).

    Returns
    -------
    float, numpy.ndarray of shape (B,), or torch.Tensor
        A float for 2-D inputs, a length-B array for batched inputs; a differentiable tensor (0-d or
        (B,)) when any input requires grad.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 1.0
    >>> s = sinkhorn_divergence(x, y, blur=0.01)
    >>> 1.5 < s < 2.5  # close to W_2^2 = ||shift||^2 = 2 plus sampling error
    True
    """
    p = check_p(p)
    blur = check_scalar(blur, "blur", low=0.0, low_inclusive=False)
    scaling = check_scalar(scaling, "scaling", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    backend = check_option(backend, "backend", SINKHORN_BACKENDS)
    max_iter = check_int(max_iter, "max_iter", low=1)
    tol = check_scalar(tol, "tol", low=0.0)
    batch_size = check_int(batch_size, "batch_size", low=1)
    cap = resolve_cap(memory_cap)
    x, y, a, b, batched, grad = _check_batch(x, y, x_weights, y_weights, device)
    # S_eps is translation invariant and, with blur scaled alongside, homogeneous of degree p:
    # S(cX, cY; c blur) = c^p S(X, Y; blur). It is computed at unit scale (no overflow of
    # ||x - y||^p near 1e150, no underflow near 1e-150) with blur / 2^e, then scaled back.
    x, y, exponent = normalize_scale(x, y)
    diameter = _diameter(x.detach().cpu().numpy(), y.detach().cpu().numpy())
    blur = _unit_blur(blur, exponent, p, scaling, diameter)
    big = x.shape[1] * y.shape[1] > LAZY_THRESHOLD
    if backend == "auto":
        backend = "blocked" if big and not grad else "geomloss"
    if backend == "blocked" and grad:
        raise ValueError("backend='blocked' computes no gradient; use backend='geomloss' for a "
                         "differentiable Sinkhorn divergence")
    lazy = backend == "pot" and big and not grad
    if lazy and p not in (1.0, 2.0):
        raise ValueError(f"backend='pot' at n*m > {LAZY_THRESHOLD} uses POT's lazy solver, which supports "
                         f"p=1 or p=2 only; got p={p}")
    if backend == "geomloss":
        values = _divergence_geomloss(x, y, a, b, p, blur, scaling)
    elif backend == "blocked":
        values = _divergence_blocked(x, y, a, b, p, blur, scaling, cap)
    else:
        values = _divergence_pot(x, y, a, b, p, blur, scaling, max_iter, tol, lazy, batch_size)
    values = unscale(values, exponent, p, "Sinkhorn divergence")
    if grad:
        return values if batched else values.reshape(())
    out = values.detach().cpu().numpy().astype(np.float64)
    return out if batched else float(out[0])


def _unit_blur(blur: float, exponent: int, p: float, scaling: float, diameter: float) -> float:
    """``blur / 2**exponent`` (the blur for data rescaled by :func:`normalize_scale`), refused with a
    ``ValueError`` when eps = blur^p leaves float64 (the cost / eps ratios then overflow) or when the
    epsilon-scaling schedule from the diameter down to blur would exceed ``MAX_SWEEPS``."""
    unit = float(times_pow2(blur, -exponent))
    # Costs at unit scale are at most 2^p; cost / eps must stay finite, hence eps > 1e-300.
    eps = unit**p if 0.0 < unit < 1e100 else 0.0
    if not 1e-300 < eps < 1e300:
        raise ValueError(
            f"blur={blur!r} is out of proportion with the data scale (about 2**{exponent}): eps = "
            f"(blur / scale)^p = {eps:.1e} is outside float64's safe range; pass a blur near the "
            "data's spread"
        )
    # eps far above diameter^p: the dual potentials are eps * log(1 + O(C / eps)), whose rounding
    # error (1e-16 * eps) swamps S_eps ~ diameter^p; at a ratio of 1e8 it is 1e-8 relative.
    if diameter > 0 and eps > 1e8 * diameter**p:
        raise ValueError(
            f"blur={blur!r} is {unit / diameter:.1e} times the data's diameter (data scale about "
            f"2**{exponent}): eps = blur^p exceeds diameter^p by more than 1e8 and the divergence is lost "
            "to rounding; pass a blur near the data's spread"
        )
    sweeps = _eps_scaling_sweeps(max(diameter, unit), unit, scaling)
    if sweeps > MAX_SWEEPS:
        raise ValueError(
            f"blur={blur!r} is {diameter / unit:.1e} times smaller than the data's diameter: epsilon "
            f"scaling at scaling={scaling} would take {sweeps} sweeps (limit {MAX_SWEEPS}); raise blur "
            "or lower scaling"
        )
    return unit


def _eps_scaling_sweeps(diameter: float, blur: float, scaling: float) -> int:
    """Number of GeomLoss epsilon-scaling sweeps (for documentation and benchmarks)."""
    return int(math.ceil(math.log(max(diameter, blur) / blur) / math.log(1.0 / scaling))) + 1
