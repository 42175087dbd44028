"""B generators of one family shape as one module: stacked, zero-padded, gradient-masked parameters.

Fitting many small generators one by one pays Python and kernel-launch overhead on tiny matrices. Here B
members of one *family shape* become ONE model with stacked weights:

* parameters of the B members are stacked and the forward pass is batched: explicit ``baddbmm`` matmuls
  for plain stacks of linear layers and element-wise maps, ``vmap(functional_call)`` otherwise;
* members may differ along the fields their family declares in ``Family.padded_fields`` (MLP and
  LipschitzMLP widths, ConvDecoder channels): they are zero-padded to the largest one, and the gradient
  of every parameter is multiplied by a fixed 0/1 mask. A padded entry therefore starts at exactly 0 and
  never moves (Adam turns a zero gradient history into a zero step), and a zero weight into or out of a
  padded unit removes its effect on the output: member b stays exactly a width-w_b network (nesting
  G_w ⊆ G_w' made literal). Masking the gradient rather than the parameter gives the same numbers, bit for
  bit, without a masked copy of every weight in the forward pass;
* the field a family declares in ``Family.input_scale_field`` (LipschitzMLP's ``lipschitz``) is realised
  as ``L_b * z`` on a skeleton built with L = 1, the same product the standalone network's first
  (scaling) layer computes.

Families that cannot be batched (different depths, other fixed fields) fall into separate groups
(:func:`batch_groups`); a group whose modules ``vmap`` cannot run is held by :class:`LoopGenerators`, a
plain loop over members with the same interface. A new family needs nothing here: it declares its free
fields on its class.

Example
-------
>>> import torch
>>> from latentdist.generators import MLP
>>> gens = make_generators(MLP(depth=1).at([4, 8]), [0, 1], 2, 3)
>>> gens(torch.zeros(2, 5, 2)).shape
torch.Size([2, 5, 3])
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from latentdist.generators import ACTIVATIONS, Family, MaxMin, NormConstrainedLinear, _Scale

__all__ = ["StackedGenerators", "LoopGenerators", "batch_groups", "make_generators"]


def _batch_key(family: Family) -> tuple:
    """Families with equal keys can share one stacked skeleton: the same type and the same values of every
    field the family does not declare free (``padded_fields``, ``input_scale_field``)."""
    free = set(family.padded_fields) | {family.input_scale_field or ""}
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
    >>> from latentdist.generators import MLP
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
        padded = families[0].padded_fields
        scale_field = families[0].input_scale_field
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
