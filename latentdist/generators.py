"""Capacity-indexed generator families G_c (docs/theory.md §1).

A family is a small frozen config object. ``family.build(in_dim, out_dim, seed=...)`` returns a fresh
``torch.nn.Module`` g: R^in_dim -> R^out_dim, and ``family.capacity`` is the number that indexes the
nested sequence G_c ⊆ G_c' for c <= c'. ``family.at(values)`` gives the nested sequence itself:

>>> [f.capacity for f in MLP(depth=2).at([8, 16, 32])]
[8, 16, 32]

Nesting holds by construction: a width-w MLP is a width-w' MLP (w <= w') with the extra units
zeroed; an L-Lipschitz network is an L'-Lipschitz one for L <= L'.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import ClassVar

import torch
from torch import nn

from latentdist._seeding import seeded
from latentdist._validation import check_bool, check_int, check_memory, check_option, check_scalar

__all__ = [
    "Family",
    "Linear",
    "MLP",
    "LipschitzMLP",
    "ConvDecoder",
    "MaxMin",
    "NormConstrainedLinear",
    "ACTIVATIONS",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
}


def _seeded_build(seed, fn):
    """Run ``fn`` under a private torch RNG so building a model never moves the global RNG."""
    with seeded(seed):
        return fn()


@dataclasses.dataclass(frozen=True)
class Family:
    """Base class of generator families.

    Subclasses declare a keyword-only field ``capacity_param`` naming the field that indexes
    capacity, and implement ``_build``. They declare how members stack into one batched ensemble
    (:mod:`latentdist.stacked`): ``padded_fields`` may differ between members that share one skeleton
    (smaller members are zero-padded to the largest), and ``input_scale_field``, if set, is realised as a
    per-member input scale ``z -> value * z`` on a skeleton built with that field set to 1.
    """

    #: Fields along which members may differ and still share one zero-padded skeleton.
    padded_fields: ClassVar[tuple[str, ...]] = ()
    #: Field realised as a per-member input scale (the skeleton is built with it set to 1), or None.
    input_scale_field: ClassVar[str | None] = None

    @property
    def capacity(self) -> float:
        """The capacity index c of this family (the value of its ``capacity_param`` field)."""
        param = getattr(self, "capacity_param", None)
        return getattr(self, param) if param else 1

    def at(self, values: Iterable[float], param: str | None = None) -> list[Family]:
        """The nested sequence of families with ``param`` set to each value.

        ``param`` defaults to the current capacity field; naming another field (e.g. ``'depth'``)
        makes that field the capacity of the returned families.
        """
        fields = {f.name for f in dataclasses.fields(self)} - {"capacity_param"}
        param = param or getattr(self, "capacity_param", None)
        if param not in fields:
            raise ValueError(f"param must be one of {sorted(fields)}, got {param!r}")
        values = list(values)
        if not values:
            raise ValueError("values must contain at least one capacity")
        return [dataclasses.replace(self, **{param: v, "capacity_param": param}) for v in values]

    def build(self, in_dim: int, out_dim: int, *, seed: int = 0) -> nn.Module:
        """A freshly initialised member g: R^in_dim -> R^out_dim (deterministic in ``seed``)."""
        in_dim = check_int(in_dim, "in_dim", low=1)
        out_dim = check_int(out_dim, "out_dim", low=1)
        return _seeded_build(seed, lambda: self._build(in_dim, out_dim))

    def _build(self, in_dim: int, out_dim: int) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def label(self) -> str:
        """Short human-readable name, e.g. ``'MLP(width=32, depth=2)'``."""
        fields = [f.name for f in dataclasses.fields(self) if f.name != "capacity_param"]
        args = ", ".join(f"{name}={getattr(self, name)}" for name in fields)
        return f"{type(self).__name__}({args})"


def _capacity_field(default: str):
    """The keyword-only, repr-hidden ``capacity_param`` field naming a family's capacity field."""
    return dataclasses.field(default=default, kw_only=True, repr=False)


def _check_mlp_fields(width: int, depth: int, activation: str) -> None:
    """Validation shared by every MLP-shaped family (generators, encoders, critics)."""
    check_int(width, "width", low=1)
    check_int(depth, "depth", low=0)
    check_option(activation, "activation", ACTIVATIONS)
    # (depth - 1) hidden width x width float32 matrices, times 4 for gradients and Adam's two moments.
    check_memory(16.0 * width * width * max(depth - 1, 0), f"width={width} with depth={depth}")


@dataclasses.dataclass(frozen=True)
class Linear(Family):
    """Affine maps g(z) = A z (+ b). Capacity is fixed at 1.

    With ``bias=False`` and P_z = N(0, I), g#P_z = N(0, A A^T): the family of anchor A1 (docs/theory.md A1).
    """

    bias: bool = True
    capacity_param: str = _capacity_field("")

    def __post_init__(self):
        check_bool(self.bias, "bias")

    def _build(self, in_dim, out_dim):
        return nn.Linear(in_dim, out_dim, bias=self.bias)


@dataclasses.dataclass(frozen=True)
class MLP(Family):
    """Fully connected network with ``depth`` hidden layers of ``width`` units; capacity = width.

    g(z) = W_{depth+1} σ(... σ(W_1 z + b_1) ...) + b_{depth+1}. The first layer is an unconstrained
    affine map, so the family is invariant under invertible affine reparameterisations of the
    latent (docs/theory.md P4).
    """

    width: int = 64
    depth: int = 2
    activation: str = "relu"
    capacity_param: str = _capacity_field("width")
    padded_fields: ClassVar[tuple[str, ...]] = ("width",)

    def __post_init__(self):
        _check_mlp_fields(self.width, self.depth, self.activation)

    def _build(self, in_dim, out_dim):
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(self.depth):
            layers += [nn.Linear(d, self.width), ACTIVATIONS[self.activation]()]
            d = self.width
        layers.append(nn.Linear(d, out_dim))
        return nn.Sequential(*layers)


class MaxMin(nn.Module):
    """GroupSort with groups of 2: each pair (a, b) -> (max(a, b), min(a, b)). 1-Lipschitz and gradient
    norm preserving (Anil, Lucas & Grosse, 2019), which lets Lipschitz networks represent clamps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.unflatten(-1, (-1, 2)).unbind(-1)
        return torch.stack((torch.maximum(a, b), torch.minimum(a, b)), dim=-1).flatten(-2)

    def lipschitz_bound(self) -> float:
        """Sorting each pair is a permutation on each linear piece, hence 1-Lipschitz."""
        return 1.0


class NormConstrainedLinear(nn.Module):
    """Affine layer whose weight is rescaled to spectral norm <= 1 on every forward pass.

    W_eff = W / max(1, sigma_max(W)), with sigma_max computed exactly by SVD (the matrices are small),
    so the bound holds exactly rather than up to power-iteration error.
    """

    def __init__(self, in_features: int, out_features: int):
        in_features = check_int(in_features, "in_features", low=1)
        out_features = check_int(out_features, "out_features", low=1)
        size = f"in_features={in_features}, out_features={out_features}"
        check_memory(16.0 * in_features * out_features, size)
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.orthogonal_(self.weight)

    def effective_weight(self) -> torch.Tensor:
        sigma = torch.linalg.matrix_norm(self.weight, ord=2)
        return self.weight / torch.clamp(sigma, min=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.effective_weight(), self.bias)

    def lipschitz_bound(self) -> float:
        """sigma_max(W_eff) <= 1, computed exactly."""
        return float(torch.linalg.matrix_norm(self.effective_weight().detach(), ord=2))


class _Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def lipschitz_bound(self) -> float:
        return abs(self.factor)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class LipschitzNet(nn.Sequential):
    """Sequential network with a provable Lipschitz bound (see :class:`LipschitzMLP`)."""

    def lipschitz_bound(self) -> float:
        """L * prod_i sigma_max(W_eff,i): an upper bound on the Lipschitz constant (<= L)."""
        return math.prod(m.lipschitz_bound() for m in self)


@dataclasses.dataclass(frozen=True)
class LipschitzMLP(Family):
    """Provably L-Lipschitz MLP: g(z) = W_k MaxMin(... MaxMin(W_1 (L z) + b_1) ...) + b_k.

    Every weight has spectral norm <= 1 exactly and MaxMin is 1-Lipschitz, so Lip(g) <= L; capacity = L.
    The family represents clamps such as clip(L z, -a, a) exactly (docs/theory.md A2), which per-layer
    spectral normalisation with ReLU cannot. ``width`` must be even (MaxMin acts on pairs).
    """

    lipschitz: float = 1.0
    width: int = 32
    depth: int = 2
    capacity_param: str = _capacity_field("lipschitz")
    padded_fields: ClassVar[tuple[str, ...]] = ("width",)
    input_scale_field: ClassVar[str | None] = "lipschitz"

    def __post_init__(self):
        check_scalar(self.lipschitz, "lipschitz", low=0.0, low_inclusive=False)
        check_int(self.width, "width", low=2)
        if self.width % 2:
            raise ValueError(f"width must be even for MaxMin activations, got {self.width}")
        check_int(self.depth, "depth", low=1)
        size = f"width={self.width} with depth={self.depth}"
        check_memory(16.0 * self.width * self.width * self.depth, size)

    def _build(self, in_dim, out_dim):
        layers: list[nn.Module] = [_Scale(self.lipschitz)]
        d = in_dim
        for _ in range(self.depth):
            layers += [NormConstrainedLinear(d, self.width), MaxMin()]
            d = self.width
        layers.append(NormConstrainedLinear(d, out_dim))
        return LipschitzNet(*layers)


@dataclasses.dataclass(frozen=True)
class ConvDecoder(Family):
    """DCGAN-style decoder R^d -> [0, 1]^{1x28x28}; capacity = channel multiplier ``channels``.

    Linear(d -> 2c·7·7) -> ReLU -> ConvT(2c -> c, 4, stride 2) -> ReLU -> [Conv(c -> c, 3) -> ReLU] x depth
    -> ConvT(c -> 1, 4, stride 2) -> sigmoid (or identity with ``output='linear'``, e.g. logits for a
    BCE-with-logits loss). ``out_dim`` must be 784; the module returns images of shape (n, 1, 28, 28).
    Distances treat them as flat vectors.

    The three knobs that weaken a DAE's auxiliary decoder (docs/theory.md §4) are ``channels`` (width),
    ``depth`` (extra 3x3 convolutions at 14x14) and ``dropout``: ``Dropout2d(dropout)`` (whole feature maps
    dropped, active in train mode only) after every hidden activation.
    """

    channels: int = 32
    output: str = "sigmoid"
    depth: int = 0
    dropout: float = 0.0
    capacity_param: str = _capacity_field("channels")
    padded_fields: ClassVar[tuple[str, ...]] = ("channels",)

    def __post_init__(self):
        check_int(self.channels, "channels", low=1)
        check_option(self.output, "output", ("sigmoid", "linear"))
        check_int(self.depth, "depth", low=0)
        check_scalar(self.dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)

    def _build(self, in_dim, out_dim):
        if out_dim != 784:
            raise ValueError(f"out_dim must be 784 (1x28x28) for ConvDecoder, got {out_dim}")
        c = self.channels
        # Dropout2d after the Unflatten: on the linear layer's output it drops whole 7x7 feature maps too.
        drop = [nn.Dropout2d(self.dropout)] if self.dropout > 0 else []
        layers: list[nn.Module] = [
            nn.Linear(in_dim, 2 * c * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (2 * c, 7, 7)),
            *drop,
            nn.ConvTranspose2d(2 * c, c, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            *drop,
        ]
        for _ in range(self.depth):
            layers += [nn.Conv2d(c, c, kernel_size=3, padding=1), nn.ReLU(), *drop]
        layers.append(nn.ConvTranspose2d(c, 1, kernel_size=4, stride=2, padding=1))
        if self.output == "sigmoid":
            layers.append(nn.Sigmoid())
        return nn.Sequential(*layers)
