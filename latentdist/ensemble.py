"""Batched fitting of many generators at once (restarts x capacities of one family shape).

Fitting D_G(P_z, P_x) = inf_{g in G} d(g#P_z, P_x) means many small, independent training runs:
several restarts for every capacity of a profile. Run one by one, each run pays Python and kernel-launch
overhead on tiny matrices. Here B runs of one *family shape* become ONE model with stacked weights:

* parameters of the B members are stacked (:func:`torch.func.stack_module_state`) and the forward pass
  is ``vmap(functional_call)`` over the stack, so forward and backward are single batched kernels;
* members of different widths (MLP widths, LipschitzMLP widths, ConvDecoder channels) are zero-padded to
  the largest one, and the gradient of every parameter is multiplied by a fixed 0/1 mask. A padded entry
  therefore starts at exactly 0 and never moves (Adam turns a zero gradient history into a zero step), and
  a zero weight into or out of a padded unit removes its effect on the output: member b stays exactly a
  width-w_b network (nesting G_w ⊆ G_w' made literal). Masking the gradient rather than the parameter
  gives the same numbers, bit for bit, without a masked copy of every weight in the forward pass;
* LipschitzMLP members of different L share the skeleton built with L = 1 and get ``L_b * z`` as input,
  which is the same product the standalone network's first (scaling) layer computes;
* members keep their own random streams (initialisation, latent batches, data batches), so a member
  of an ensemble follows the same trajectory as the same seed fitted alone (to float round-off).

The per-member minibatch OT plans for ``'w1'``/``'w2'`` training are exact: the B cost matrices are formed
in one batched operation and the B assignment problems solved by lapx's Jonker-Volgenant ``lapjvh`` (scipy's
``linear_sum_assignment`` when lapx is missing) over a small thread pool (both release the GIL; in 1-D the
sorted coupling, batched); only they are per member. While that pool runs, torch is held to one intra-op
thread, since its OpenMP workers would otherwise spin on the cores the assignment threads need.

Families that cannot be batched (unknown types, different depths) fall into separate groups, and a group
whose modules ``vmap`` cannot run is fitted by a plain loop over members with the same interface.

Example
-------
>>> import torch
>>> from latentdist.generators import MLP
>>> from latentdist.latents import Gaussian
>>> x = torch.randn(500, 2) * torch.tensor([2.0, 0.5])
>>> fit = fit_ensemble(MLP(depth=1).at([4, 8]), [0, 1], Gaussian(2), x, steps=20, progress=False)
>>> [type(m).__name__ for m in fit.models]
['Sequential', 'Sequential']
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.func import functional_call, vmap

from latentdist._progress import progress_bar
from latentdist._seeding import SeedLike, make_torch_generator, spawn_seeds
from latentdist._validation import check_device, check_int, check_scalar, to_tensor
from latentdist.generators import (
    ACTIVATIONS,
    MLP,
    ConvDecoder,
    Family,
    LipschitzMLP,
    MaxMin,
    NormConstrainedLinear,
    _Scale,
)
from latentdist.latents import Latent

__all__ = [
    "OT_LOSSES",
    "OT_THREADS",
    "EnsembleFit",
    "StackedGenerators",
    "LoopGenerators",
    "batch_groups",
    "make_generators",
    "minibatch_loss",
    "fit_ensemble",
    "member_seeds",
]

#: Training losses solved by an exact minibatch OT plan (value = transport cost under the plan).
OT_LOSSES = {"w1": 1.0, "w2": 2.0}

# Fields along which members may differ and still share one padded skeleton.
_PADDED_FIELDS: dict[type, tuple[str, ...]] = {
    MLP: ("width",),
    LipschitzMLP: ("width",),
    ConvDecoder: ("channels",),
}
# Fields realised as a per-member input scale (the skeleton is built with the field set to 1).
_INPUT_SCALE_FIELD: dict[type, str] = {LipschitzMLP: "lipschitz"}


def _batch_key(family: Family) -> tuple:
    """Families with equal keys can share one stacked skeleton."""
    free = set(_PADDED_FIELDS.get(type(family), ())) | {_INPUT_SCALE_FIELD.get(type(family), "")}
    fixed = tuple(
        (f.name, getattr(family, f.name))
        for f in dataclasses.fields(family)
        if f.name not in free and f.name != "capacity_param"
    )
    return (type(family), fixed)


def batch_groups(families: Sequence[Family]) -> list[list[int]]:
    """Partition indices of ``families`` into groups that one :class:`StackedGenerators` can hold.

    Examples
    --------
    >>> batch_groups([MLP(width=4), MLP(width=8), MLP(width=8, depth=3)])
    [[0, 1], [2]]
    """
    groups: dict[tuple, list[int]] = {}
    for i, fam in enumerate(families):
        if not isinstance(fam, Family):
            raise TypeError(f"families[{i}] must be a generators.Family, got {type(fam).__name__}")
        groups.setdefault(_batch_key(fam), []).append(i)
    return list(groups.values())


def _flat_out(out: torch.Tensor, lead: int) -> torch.Tensor:
    return out.reshape(*out.shape[:lead], -1)


class LoopGenerators(nn.Module):
    """B independent modules behind the stacked interface: the fallback for families ``vmap`` cannot run.

    ``forward(z)`` takes z of shape (B, n, d) and returns the flattened outputs (B, n, D).
    """

    def __init__(self, modules: Sequence[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(modules)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.stack([_flat_out(m(zb), 1) for m, zb in zip(self.members, z, strict=True)])

    def member(self, i: int) -> nn.Module:
        """A standalone copy of member ``i``."""
        return copy.deepcopy(self.members[i])

    def __len__(self) -> int:
        return len(self.members)


_ELEMENTWISE = (*ACTIVATIONS.values(), MaxMin, _Scale)


def _matmul_plan(skeleton: nn.Module) -> list[tuple[str, Any]] | None:
    """Layer plan of the batched-matmul forward, or None when ``skeleton`` is not a plain stack of
    (norm-constrained) linear layers and stateless element-wise maps (MLP, LipschitzMLP, Linear)."""
    layers = list(skeleton.named_children()) if isinstance(skeleton, nn.Sequential) else [("", skeleton)]
    plan: list[tuple[str, Any]] = []
    for name, module in layers:
        prefix = f"{name}." if name else ""
        if type(module) is nn.Linear:
            plan.append(("linear" if module.bias is not None else "linear_nobias", prefix))
        elif type(module) is NormConstrainedLinear:
            plan.append(("norm_linear", prefix))
        elif type(module) in _ELEMENTWISE:
            plan.append(("map", module))
        else:
            return None
    return plan


class StackedGenerators(nn.Module):
    """B generators of one family shape as one module with stacked, masked parameters.

    Parameters
    ----------
    families : sequence of Family, length B
        Members; they must form one group of :func:`batch_groups`.
    seeds : sequence of int, length B
        Initialisation seed of each member: member b starts from ``families[b].build(.., seed=seeds[b])``.
    in_dim, out_dim : int
    device : torch.device

    Notes
    -----
    Parameter ``k`` of member b is stored zero-padded in ``self.params[k][b]``; its gradient is multiplied
    by ``masks[k][b]`` (1 on the member's own block, 0 on the padding) by a hook, so the padding stays 0
    under any optimizer that does not move a parameter whose gradients are all zero (SGD, Adam, AdamW, ...).
    ``forward(z)`` maps z of shape (B, n, in_dim) to outputs flattened to (B, n, prod(out_shape)).

    Skeletons that are plain stacks of linear layers and element-wise maps (MLP, LipschitzMLP, Linear)
    run as explicit batched matmuls (``torch.baddbmm`` on the (B, out, in) weights), which on small
    networks costs a fraction of ``vmap(functional_call)``; every other skeleton (ConvDecoder, ...) uses
    the generic ``vmap`` path. ``use_vmap=True`` forces the generic path (for tests).
    """

    def __init__(self, families: Sequence[Family], seeds: Sequence[int], in_dim: int, out_dim: int,
                 device: torch.device | str = "cpu", *, use_vmap: bool = False):
        super().__init__()
        families = list(families)
        if len(batch_groups(families)) != 1:
            raise ValueError("families must share one family shape (see batch_groups)")
        self.families, self.seeds = families, [int(s) for s in seeds]
        self.in_dim, self.out_dim = in_dim, out_dim
        kind = type(families[0])
        padded = _PADDED_FIELDS.get(kind, ())
        scale_field = _INPUT_SCALE_FIELD.get(kind)
        skeleton_fields = {f: max(getattr(fam, f) for fam in families) for f in padded}
        if scale_field:
            skeleton_fields[scale_field] = 1.0
        skeleton_family = dataclasses.replace(families[0], **skeleton_fields)
        skeleton = skeleton_family.build(in_dim, out_dim, seed=0)
        shapes = {k: v.shape for k, v in skeleton.named_parameters()}
        members = [fam.build(in_dim, out_dim, seed=s) for fam, s in zip(families, self.seeds, strict=True)]
        padded_members, masks, self.needs_mask = [], [], False
        for member in members:
            own, pad, mask = dict(member.named_parameters()), {}, {}
            if set(own) != set(shapes):
                raise ValueError("members do not share the skeleton's parameter names; cannot stack them")
            for k, shape in shapes.items():
                block = tuple(slice(0, s) for s in own[k].shape)
                pad[k] = torch.zeros(shape, dtype=own[k].dtype)
                pad[k][block] = own[k].detach()
                mask[k] = torch.zeros(shape, dtype=own[k].dtype)
                mask[k][block] = 1.0
                self.needs_mask |= tuple(own[k].shape) != tuple(shape)
            padded_members.append(pad)
            masks.append(mask)
        self._member_shapes = [{k: tuple(v.shape) for k, v in m.named_parameters()} for m in members]
        stacked = {k: torch.stack([p[k] for p in padded_members]) for k in shapes}
        self.params = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v) for k, v in stacked.items()})
        self._names = {k.replace(".", "__"): k for k in shapes}
        for key in self._names:
            self.register_buffer(f"mask__{key}", torch.stack([m[self._names[key]] for m in masks]))
            if self.needs_mask:
                self.params[key].register_hook(self._gradient_mask(key))
        scales = [float(getattr(f, scale_field)) if scale_field else 1.0 for f in families]
        self.register_buffer("input_scale", torch.tensor(scales).view(-1, 1, 1))
        self._has_scale = scale_field is not None
        # Kept out of the module tree: the skeleton only lends its forward code to functional_call.
        self._skeleton = [skeleton.to("meta")]
        self._plan = None if use_vmap else _matmul_plan(self._skeleton[0])
        self.to(device)

    def __len__(self) -> int:
        return len(self.families)

    def _gradient_mask(self, key: str) -> Callable[[torch.Tensor], torch.Tensor]:
        # Looked up at call time so that the hook follows the buffer through .to(device).
        return lambda grad: grad * getattr(self, f"mask__{key}")

    def effective_params(self) -> dict[str, torch.Tensor]:
        """Stacked parameters under the skeleton's names (padding included: it is held at 0)."""
        return {self._names[k]: p for k, p in self.params.items()}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 3 or z.shape[0] != len(self):
            raise ValueError(f"z must have shape ({len(self)}, n, {self.in_dim}), got {tuple(z.shape)}")
        if self._has_scale:
            z = z * self.input_scale.to(z.dtype)
        if self._plan is not None:
            return self._matmul_forward(self.effective_params(), z)

        def one(params, zb):
            return functional_call(self._skeleton[0], params, (zb,))

        return _flat_out(vmap(one)(self.effective_params(), z), 2)

    def _matmul_forward(self, params: dict[str, torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        """The skeleton's layers with stacked weights: y_b = h_b W_b^T + c_b as one ``baddbmm``."""
        for kind, arg in self._plan:
            if kind == "map":
                h = arg(h)
                continue
            w = params[f"{arg}weight"]
            if kind == "norm_linear":  # NormConstrainedLinear.effective_weight, per member
                w = w / torch.clamp(torch.linalg.matrix_norm(w, ord=2), min=1.0)[:, None, None]
            if kind == "linear_nobias":
                h = torch.bmm(h, w.transpose(1, 2))
            else:
                h = torch.baddbmm(params[f"{arg}bias"][:, None, :], h, w.transpose(1, 2))
        return h

    def member(self, i: int) -> nn.Module:
        """Member ``i`` as a standalone module of its own family and width (weights copied, unpadded)."""
        module = self.families[i].build(self.in_dim, self.out_dim, seed=self.seeds[i])
        with torch.no_grad():
            for name, p in module.named_parameters():
                block = tuple(slice(0, s) for s in self._member_shapes[i][name])
                p.copy_(self.params[name.replace(".", "__")][i][block].to(p.device))
        return module.to(self.input_scale.device)


def make_generators(families: Sequence[Family], seeds: Sequence[int], in_dim: int, out_dim: int,
                    device: torch.device | str = "cpu") -> StackedGenerators | LoopGenerators:
    """A :class:`StackedGenerators` for one batchable group, or :class:`LoopGenerators` when ``vmap``
    cannot run the family's modules (the fallback) or there is a single member (a plain module is
    faster than a vmap of one)."""
    if len(families) == 1:
        return LoopGenerators([families[0].build(in_dim, out_dim, seed=seeds[0])]).to(device)
    try:
        stacked = StackedGenerators(families, seeds, in_dim, out_dim, device)
        with torch.no_grad():
            stacked(torch.zeros(len(families), 2, in_dim, device=stacked.input_scale.device))
        return stacked
    except (RuntimeError, NotImplementedError):  # vmap has no batching rule for some module
        mods = [f.build(in_dim, out_dim, seed=s) for f, s in zip(families, seeds, strict=True)]
        return LoopGenerators(mods).to(device)


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


def _assignments(costs: np.ndarray) -> np.ndarray:
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


def _sorted_rows(t: torch.Tensor) -> torch.Tensor:
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


def _ot_plan_loss(y: torch.Tensor, x: torch.Tensor, p: float) -> torch.Tensor:
    """Exact minibatch OT loss per member: (1/n) sum_i ||y_i - x_sigma(i)||^p, shape (B,).

    Envelope theorem: the optimal assignment sigma is solved on detached costs, so the gradient is the
    gradient of the transport cost under the fixed optimal plan, which is the gradient of W_p^p.
    Equal batch sizes with uniform weights make the optimal plan a permutation (Birkhoff), found exactly
    by the Hungarian algorithm; in 1-D the monotone (sorted) coupling is optimal for every p >= 1.
    The B cost matrices are formed in one batched float64 operation and handed to numpy once; the B
    assignment problems are then solved by :func:`_assignments`.
    """
    if y.shape[-1] == 1:
        ys, xs = _sorted_rows(y[..., 0]), _sorted_rows(x[..., 0])
        return ((ys - xs).abs() ** p).mean(1)
    with torch.no_grad():
        yd, xd = y.detach().double(), x.detach().double()
        # ||y||^2 + ||x||^2 - 2 <y, x> in float64 (relative round-off ~1e-16 of the data scale).
        plan_cost = torch.baddbmm((xd * xd).sum(-1)[:, None, :], yd, xd.transpose(1, 2), alpha=-2.0)
        plan_cost = (plan_cost + (yd * yd).sum(-1)[:, :, None]).clamp_min_(0.0)
        plan_cost = plan_cost if p == 2.0 else plan_cost.sqrt() ** p
    cols_t = torch.as_tensor(_assignments(plan_cost.cpu().numpy()), device=y.device)
    # Only the matched pairs enter the graph: backward costs O(B n D), not O(B n^2 D).
    matched = ((y - torch.gather(x, 1, cols_t[:, :, None].expand(-1, -1, x.shape[2]))) ** 2).sum(-1)
    # The floor keeps the W1 gradient finite when a point sits on its match.
    cost = matched if p == 2.0 else matched.clamp_min(1e-12) ** (p / 2)
    return cost.mean(1)


def _batched_mmd2(kernel: str, bandwidth: float | str, unbiased: bool, seed: SeedLike) -> Callable:
    """:func:`latentdist.distances.mmd2` (unweighted) for (B, n, D) batches: (B, n, n) kernel matrices
    from the module's own ``kernel_matrix``, the same centring, U- or V-statistic; shape (B,). The
    median-heuristic bandwidth is the registry's own :func:`median_bandwidth` of each member (a median
    over the pooled pairs is a partition, which batching would not make cheaper)."""
    from latentdist.distances.kernel import kernel_matrix, median_bandwidth

    def loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        n, m = y.shape[1], x.shape[1]
        if kernel == "energy":
            h: Any = 1.0
        elif isinstance(bandwidth, str):
            h = torch.tensor([median_bandwidth(yb, xb, seed=seed) for yb, xb in zip(y, x, strict=True)],
                             dtype=y.dtype, device=y.device)[:, None, None]
        else:
            h = float(bandwidth)
        centre = torch.cat([y, x], dim=1).detach().mean(1, keepdim=True)
        y, x = y - centre, x - centre
        kyy, kxx = kernel_matrix(y, y, kernel, h), kernel_matrix(x, x, kernel, h)
        kxy = kernel_matrix(y, x, kernel, h)
        if unbiased:
            syy = (kyy.sum((1, 2)) - kyy.diagonal(dim1=1, dim2=2).sum(1)) / (n * (n - 1))
            sxx = (kxx.sum((1, 2)) - kxx.diagonal(dim1=1, dim2=2).sum(1)) / (m * (m - 1))
        else:
            syy, sxx = kyy.mean((1, 2)), kxx.mean((1, 2))
        return syy + sxx - 2.0 * kxy.mean((1, 2))

    return loss


def _batched_sliced(p: float, n_projections: int, seed: SeedLike) -> Callable:
    """:func:`latentdist.distances.sliced_wasserstein` (unweighted, equal sizes) for (B, n, D) batches:
    the same directions (POT's generator, ``seed``) applied to all members at once; each 1-D W_p^p is
    the sorted coupling, which is what ``ot.wasserstein_1d`` computes for equal uniform weights."""
    import ot

    from latentdist._seeding import seed_int
    from latentdist.distances._common import safe_root

    directions: dict[tuple, torch.Tensor] = {}  # the same every step: drawn once per shape and device

    def loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        key = (y.shape[2], y.dtype, y.device)
        if key not in directions:
            theta = ot.sliced.get_random_projections(y.shape[2], n_projections, seed_int(seed))
            directions[key] = torch.as_tensor(theta, dtype=y.dtype, device=y.device)
        theta = directions[key]
        ys, xs = _sorted_rows(y @ theta), _sorted_rows(x @ theta)
        wpp = ((ys - xs).abs() ** p).mean(1).mean(1)
        return safe_root(wpp.clamp_min(0.0), p)

    return loss


def _batched_loss(distance: Any, kwargs: dict[str, Any]) -> Callable | None:
    """The batched form of a registry distance with these keyword arguments, or None when only the
    per-member loop computes it."""
    if not isinstance(distance, str):
        return None
    if distance in ("mmd", "energy"):
        if set(kwargs) - {"kernel", "bandwidth", "unbiased", "chunk_size", "seed"}:
            return None  # weights or unknown options: the registry function decides
        kernel = "energy" if distance == "energy" else kwargs.get("kernel", "gaussian")
        return _batched_mmd2(kernel, kwargs.get("bandwidth", "median"), bool(kwargs.get("unbiased", True)),
                             kwargs.get("seed", 0))
    if distance == "sliced" and not set(kwargs) - {"p", "n_projections", "seed", "chunk_size"}:
        return _batched_sliced(float(kwargs.get("p", 2)), int(kwargs.get("n_projections", 128)),
                               kwargs.get("seed", 0))
    return None


def minibatch_loss(
    distance: str | Callable, **kwargs: Any
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-member training loss ``loss(y, x) -> (B,)`` for outputs y and data x of shape (B, n, D).

    ``'w1'``/``'w2'``: transport cost W_p^p under the exact minibatch plan (:func:`_ot_plan_loss`);
    ``'sinkhorn'``: the batched debiased Sinkhorn divergence; ``'mmd'``, ``'energy'`` and ``'sliced'``:
    batched forms of the registry functions for equal-size batches (the same value to float round-off:
    (B, n, n) kernel matrices, one projection matrix for all members), where their options allow it
    (no weights); any other registry name or callable,
    and the remaining cases: the registry function's differentiable value, member by member.
    """
    if isinstance(distance, str) and distance in OT_LOSSES:
        p = OT_LOSSES[distance]
        return lambda y, x: _ot_plan_loss(y, x, p)
    if distance == "sinkhorn":
        from latentdist.distances import sinkhorn_divergence

        return lambda y, x: sinkhorn_divergence(y, x, **kwargs)
    from latentdist.distances import get_distance

    fn = get_distance(distance, **kwargs)  # validates the keyword arguments
    batched = _batched_loss(distance, kwargs)
    if batched is not None:  # invalid option values raise here, as in the per-member path
        fn(torch.zeros(2, 1), torch.ones(2, 1))

    def per_member(y, x):
        if batched is not None and y.shape[1] == x.shape[1] and y.shape[1] >= 2:
            return batched(y, x)
        return torch.stack([torch.as_tensor(fn(yb, xb)) for yb, xb in zip(y, x, strict=True)])

    return per_member


@dataclasses.dataclass
class EnsembleFit:
    """Result of :func:`fit_ensemble`.

    Attributes
    ----------
    models : list of nn.Module
        Fitted members, each a standalone module of its own family (order of the input).
    history : pandas.DataFrame
        Columns ``step``, ``member``, ``loss`` (the minibatch training loss, e.g. W_2^2 for ``'w2'``).
    final_loss : numpy.ndarray, shape (B,)
        Mean training loss of each member over the last 10% of steps.
    fit_time : float
        Wall-clock seconds of the whole fit.
    """

    models: list[nn.Module]
    history: pd.DataFrame
    final_loss: np.ndarray
    fit_time: float


def member_seeds(seed: SeedLike) -> dict[str, int]:
    """The independent streams of one member: initialisation, latent batches, data batches."""
    init, z_stream, x_stream = spawn_seeds(seed, 3)
    return {"init": init, "z": z_stream, "x": x_stream}


def _train_group(gens: StackedGenerators | LoopGenerators, streams: list[dict[str, int]], latent: Latent,
                 x: torch.Tensor, loss_fn: Callable, steps: int, batch_size: int, lr: float, progress: bool,
                 log_every: int) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Adam with cosine decay on one stacked group.

    Returns each member's mean loss over the last 10% of steps, and the logged (step, member, loss).
    """
    z_gens = [make_torch_generator(s["z"]) for s in streams]
    x_gens = [make_torch_generator(s["x"]) for s in streams]
    opt = torch.optim.Adam(gens.parameters(), lr=lr, foreach=True)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t / steps))
    )
    tail = max(1, steps // 10)
    tail_sum = np.zeros(len(streams))
    log = []
    for step in progress_bar(range(steps), progress=progress, desc=f"fitting {len(streams)} generators"):
        z = latent.sample_each(batch_size, z_gens, device=x.device)
        idx = torch.stack([torch.randint(x.shape[0], (batch_size,), generator=g) for g in x_gens])
        losses = loss_fn(gens(z), x[idx.to(x.device)])
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()
        sched.step()
        vals = losses.detach().cpu().numpy()
        if step >= steps - tail:
            tail_sum += vals
        if step % log_every == 0 or step == steps - 1:
            log += [(step, j, float(v)) for j, v in enumerate(vals)]
    return tail_sum / tail, log


@contextlib.contextmanager
def _intra_op_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: leave them), then restore the setting."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def fit_ensemble(
    families: Sequence[Family],
    seeds: Sequence[SeedLike],
    latent: Latent,
    x_train: Any,
    distance: str | Callable = "w2",
    *,
    steps: int = 500,
    batch_size: int = 64,
    lr: float = 1e-2,
    device: str | torch.device = "cpu",
    progress: bool = True,
    distance_kwargs: dict | None = None,
    log_every: int = 10,
) -> EnsembleFit:
    r"""Fit B generators g_b in G_{c_b} to minimise minibatch estimates of d(g_b#P_z, P_x), batched.

    Each member minimises :math:`\mathbb{E}\,\ell(g_b(z_{1:m}), x_{1:m})` with Adam (cosine decay of the
    learning rate to ``lr / 20``), where :math:`z_i \sim P_z` and :math:`x_i` are drawn with replacement
    from ``x_train``, and :math:`\ell` is :func:`minibatch_loss` of ``distance``. The summed loss of all
    members is back-propagated once; members do not interact (their gradients are disjoint).

    Parameters
    ----------
    families : sequence of Family, length B
    seeds : sequence of int or Generator, length B
        One seed per member; it fixes the member's initialisation and its batch streams
        (:func:`member_seeds`), so member b matches a single fit with ``seeds[b]``.
    latent : Latent
        Source P_z of dimension d.
    x_train : array or tensor, shape (n, ...)
        Training data; rows are flattened to length D.
    distance : str or callable
        Training loss (see :func:`minibatch_loss`).
    steps, batch_size, lr : int, int, float
    device : str or torch.device
    progress : bool
    distance_kwargs : dict, optional
        Keyword arguments of the training distance.
    log_every : int
        History is recorded every ``log_every`` steps (and at the last step).

    Returns
    -------
    EnsembleFit
    """
    import time

    families = list(families)
    seeds = list(seeds)
    if len(families) != len(seeds) or not families:
        raise ValueError(f"families and seeds must be non-empty and of equal length, got {len(families)} "
                         f"and {len(seeds)}")
    steps = check_int(steps, "steps", low=1)
    batch_size = check_int(batch_size, "batch_size", low=2)
    lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
    log_every = check_int(log_every, "log_every", low=1)
    dev = check_device(device)
    x = to_tensor(x_train, dtype=torch.float32, device=dev).detach()
    x = x.reshape(x.shape[0], -1)
    loss_fn = minibatch_loss(distance, **(distance_kwargs or {}))
    streams = [member_seeds(s) for s in seeds]
    start = time.perf_counter()

    models: list[nn.Module | None] = [None] * len(families)
    final = np.zeros(len(families))
    records: list[tuple[int, int, float]] = []
    for group in batch_groups(families):
        gens = make_generators([families[i] for i in group], [streams[i]["init"] for i in group],
                               latent.dim, x.shape[1], dev)
        # The per-member assignment threads of w1/w2 need the cores, and torch's OpenMP workers, spinning
        # between the tiny batched ops, would take them (16 width-16 fits, w2, 2 cores: 1.15-1.23 s with
        # torch's 2 threads, 0.75-1.07 s with 1; benchmarks/README.md).
        pooled = (isinstance(distance, str) and distance in OT_LOSSES and x.shape[1] > 1
                  and _pool_workers(len(group)) > 1)
        with _intra_op_threads(1 if pooled and dev.type == "cpu" else None):
            tail_loss, log = _train_group(gens, [streams[i] for i in group], latent, x, loss_fn, steps,
                                          batch_size, lr, progress, log_every)
        records += [(step, group[j], v) for step, j, v in log]
        for j, i in enumerate(group):
            models[i] = gens.member(j).eval()
            final[i] = tail_loss[j]
    history = pd.DataFrame(records, columns=["step", "member", "loss"]).sort_values(["member", "step"])
    return EnsembleFit(models, history.reset_index(drop=True), final, time.perf_counter() - start)
