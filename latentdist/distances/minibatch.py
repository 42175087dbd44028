"""Exact minibatch optimal-transport plans for B members at once: the ``'w1'``/``'w2'`` training form.

For equal batch sizes with uniform weights the optimal plan between two minibatches is a permutation
(Birkhoff), found exactly by an assignment solver. :class:`OTPlanLoss` forms the B cost matrices in one
batched float64 operation, solves the B assignment problems with lapx's Jonker-Volgenant ``lapjvh``
(scipy's ``linear_sum_assignment`` when lapx is missing) over a small thread pool (both release the GIL),
and returns the transport cost under each plan. In 1-D the sorted (monotone) coupling is optimal for
every p >= 1 and is used instead.

Example
-------
>>> import torch
>>> y, x = torch.zeros(2, 3, 2), torch.ones(2, 3, 2)
>>> OTPlanLoss(2.0)(y, x)
tensor([2., 2.])
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

__all__ = ["OT_LOSSES", "OT_THREADS", "OTPlanLoss", "ot_plan_loss", "sorted_rows", "assignments"]

#: Training losses solved by an exact minibatch OT plan (value = transport cost under the plan).
OT_LOSSES = {"w1": 1.0, "w2": 2.0}

#: Threads for the per-member exact assignment problems of ``'w1'``/``'w2'`` training; None (default) uses
#: the cores this process may run on (at most 8), 1 solves them in the calling thread.
OT_THREADS: int | None = None
_LSA_POOL: list[ThreadPoolExecutor] = []


def _lsa_workers() -> int:
    if OT_THREADS is not None:
        return max(1, int(OT_THREADS))
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, min(8, os.cpu_count() or 1))


def _scipy_columns(cost: np.ndarray) -> np.ndarray:
    return linear_sum_assignment(cost)[1]


try:  # lapx (a core dependency; it installs the module 'lap'): Jonker-Volgenant with a faster inner loop
    from lap import lapjvh as _lapjvh

    def _solve_assignment(cost: np.ndarray) -> np.ndarray:
        """Optimal column of each row of one square cost matrix (exact)."""
        return _lapjvh(cost, return_cost=False)[1]

except ImportError:  # pragma: no cover - lapx missing, or the older 'lap' package without lapjvh
    _solve_assignment = _scipy_columns


def _pool_workers(batch: int) -> int:
    """Threads that solve B assignment problems: at least two problems a thread."""
    return min(_lsa_workers(), batch // 2)


def assignments(costs: np.ndarray) -> np.ndarray:
    """Optimal column of every row for each of the B cost matrices (B, m, m): shape (B, m).

    Each problem is solved exactly by lapx's ``lapjvh`` (``scipy.optimize.linear_sum_assignment`` when lapx
    is not importable). On the 64 x 64 squared-distance matrices of 2-D training it takes ~115 us against
    scipy's ~160 us; both are exact and return the same plan except between tied optima (e.g. two equal
    generated points), where the choice is the solver's own. Both release the GIL, so with B >= 4 the
    problems are split over a small thread pool (the main thread takes one share); the result does not
    depend on the number of threads.
    """
    if not np.isfinite(costs).all():
        raise FloatingPointError("non-finite transport costs: the generators' outputs diverged "
                                 "(lower lr, or check the data scale)")
    batch = costs.shape[0]
    workers = _pool_workers(batch)
    if workers <= 1:
        return np.stack([_solve_assignment(c) for c in costs])
    if not _LSA_POOL or _LSA_POOL[0]._max_workers < workers - 1:
        _LSA_POOL[:] = [ThreadPoolExecutor(workers - 1, thread_name_prefix="latentdist-lsa")]
    cols = np.empty(costs.shape[:2], dtype=np.int64)

    def solve(members: np.ndarray) -> None:
        for b in members:
            cols[b] = _solve_assignment(costs[b])

    shares = np.array_split(np.arange(batch), workers)
    futures = [_LSA_POOL[0].submit(solve, share) for share in shares[1:]]
    solve(shares[0])
    for future in futures:
        future.result()
    return cols


def sorted_rows(t: torch.Tensor) -> torch.Tensor:
    """``torch.sort(t, dim=1).values`` for t of shape (B, n) or (B, n, P), differentiable.

    On CPU the order comes from numpy: for the many short columns of a batched 1-D or sliced coupling
    (16 x 128 columns of 64 values) ``torch.sort`` takes ~4 ms and numpy's argsort + a gather ~0.8 ms.
    Tied values may be ordered differently, which changes nothing but which tied entry gets which gradient.
    """
    if t.device.type != "cpu":
        return torch.sort(t, dim=1).values
    columns_last = np.ascontiguousarray(np.moveaxis(t.detach().numpy(), 1, -1))
    if not t.requires_grad:  # the data side: values suffice, and np.sort is ~4x faster than argsort
        return torch.from_numpy(np.moveaxis(np.sort(columns_last, axis=-1), -1, 1))
    order = torch.from_numpy(np.moveaxis(np.argsort(columns_last, axis=-1), -1, 1))
    return torch.gather(t, 1, order)


def _plan_costs(y: torch.Tensor, x: torch.Tensor, p: float) -> np.ndarray:
    """The B detached cost matrices ||y_i - x_j||^p, shape (B, n, n), float64 numpy (for the solver)."""
    with torch.no_grad():
        yd, xd = y.detach().double(), x.detach().double()
        # ||y||^2 + ||x||^2 - 2 <y, x> in float64 (relative round-off ~1e-16 of the data scale).
        cost = torch.baddbmm((xd * xd).sum(-1)[:, None, :], yd, xd.transpose(1, 2), alpha=-2.0)
        cost = (cost + (yd * yd).sum(-1)[:, :, None]).clamp_min_(0.0)
        cost = cost if p == 2.0 else cost.sqrt() ** p
    return cost.cpu().numpy()


def ot_plan_loss(y: torch.Tensor, x: torch.Tensor, p: float) -> torch.Tensor:
    """Exact minibatch OT loss per member: (1/n) sum_i ||y_i - x_sigma(i)||^p, shape (B,).

    Envelope theorem: the optimal assignment sigma is solved on detached costs, so the gradient is the
    gradient of the transport cost under the fixed optimal plan, which is the gradient of W_p^p.
    Equal batch sizes with uniform weights make the optimal plan a permutation (Birkhoff), found exactly
    by the Hungarian algorithm; in 1-D the monotone (sorted) coupling is optimal for every p >= 1.
    The B cost matrices are formed in one batched float64 operation and handed to numpy once; the B
    assignment problems are then solved by :func:`assignments`.
    """
    if y.shape[-1] == 1:
        ys, xs = sorted_rows(y[..., 0]), sorted_rows(x[..., 0])
        return ((ys - xs).abs() ** p).mean(1)
    cols_t = torch.as_tensor(assignments(_plan_costs(y, x, p)), device=y.device)
    # Only the matched pairs enter the graph: backward costs O(B n D), not O(B n^2 D).
    matched = ((y - torch.gather(x, 1, cols_t[:, :, None].expand(-1, -1, x.shape[2]))) ** 2).sum(-1)
    # The floor keeps the W1 gradient finite when a point sits on its match.
    cost = matched if p == 2.0 else matched.clamp_min(1e-12) ** (p / 2)
    return cost.mean(1)


class OTPlanLoss:
    """Per-member loss ``(y, x) -> (B,)``: W_p^p under the exact minibatch plan (:func:`ot_plan_loss`).

    :meth:`uses_pool` tells the fit loop whether the assignment threads will need the cores (it then holds
    torch to one intra-op thread).
    """

    def __init__(self, p: float):
        self.p = float(p)

    def __call__(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return ot_plan_loss(y, x, self.p)

    def uses_pool(self, members: int, dim: int) -> bool:
        """Whether B = ``members`` problems of dimension ``dim`` are solved on the thread pool."""
        return dim > 1 and _pool_workers(members) > 1

    def __repr__(self) -> str:
        return f"OTPlanLoss(p={self.p:g})"
