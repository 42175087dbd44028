"""Encoders and critics, in the style of :mod:`latentdist.generators`, plus decoder weakening.

Each network is a small frozen config object (a :class:`~latentdist.generators.Family`): ``.build(in_dim,
out_dim=None, *, seed=0)`` returns a freshly initialised ``nn.Module``. Encoders default ``out_dim`` to their
``latent_dim`` and critics to 1. Convolutional networks are for 1x28x28 images and accept either images
(n, 1, 28, 28) or flat vectors (n, 784); MLP networks flatten whatever they get.

The Decoupled Autoencoder (docs/theory.md §4) trains its encoder against a *weaker* auxiliary decoder. The
weakening is one swept parameter: :func:`weaken` shrinks a family's width (``channels`` or ``width``) by a
multiplier, changes its depth, or adds dropout after every hidden activation.

>>> enc = ConvEncoder(channels=8, latent_dim=4).build(784, seed=0)
>>> enc(torch.zeros(2, 1, 28, 28)).shape
torch.Size([2, 4])
>>> weaken(ConvDecoder(channels=32), width_mult=0.25).channels
8
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from latentdist._validation import check_int, check_scalar
from latentdist.generators import ACTIVATIONS, MLP, ConvDecoder, Family, _capacity_field, _check_mlp_fields

__all__ = ["MLPEncoder", "ConvEncoder", "MLPCritic", "ConvCritic", "Dropout", "weaken", "add_dropout"]

# Modules after which add_dropout inserts a dropout layer: every activation the generator families use.
_ACTIVATION_TYPES = tuple(ACTIVATIONS.values()) + (nn.Sigmoid,)


class AsImage(nn.Module):
    """Reshape (n, ...) with 784 entries per sample to (n, 1, 28, 28), so conv nets also take flat vectors."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], 1, 28, 28)


def _mlp(in_dim: int, out_dim: int, width: int, depth: int, activation: str) -> nn.Sequential:
    """The generators' MLP behind a Flatten, so that images (n, C, H, W) are accepted as inputs."""
    body = MLP(width=width, depth=depth, activation=activation)._build(in_dim, out_dim)
    return nn.Sequential(nn.Flatten(), *body)


def _conv_trunk(c: int) -> list[nn.Module]:
    """Mirror image of ConvDecoder: 28 -> 14 -> 7 with channels c then 2c, LeakyReLU(0.2)."""
    return [
        AsImage(),
        nn.Conv2d(1, c, kernel_size=4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(c, 2 * c, kernel_size=4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
    ]


def _check_784(in_dim: int, name: str) -> None:
    if in_dim != 784:
        raise ValueError(f"in_dim must be 784 (1x28x28) for {name}, got {in_dim}")


class _WithDefaultOut(Family):
    """A family whose ``build`` has a default ``out_dim`` (the latent dimension, or 1 for a critic)."""

    def _default_out(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def build(self, in_dim: int, out_dim: int | None = None, *, seed: int = 0) -> nn.Module:
        """A freshly initialised network R^in_dim -> R^out_dim (``out_dim`` defaults as documented)."""
        return super().build(in_dim, self._default_out() if out_dim is None else out_dim, seed=seed)


@dataclasses.dataclass(frozen=True)
class MLPEncoder(_WithDefaultOut):
    """MLP encoder f: R^D -> R^latent_dim, ``depth`` hidden layers of ``width`` units; capacity = width.

    f(x) = W_{depth+1} σ(... σ(W_1 flatten(x) + b_1) ...) + b_{depth+1}; the code is unconstrained.
    """

    width: int = 128
    depth: int = 2
    latent_dim: int = 2
    activation: str = "relu"
    capacity_param: str = _capacity_field("width")

    def __post_init__(self):
        _check_mlp_fields(self.width, self.depth, self.activation)
        check_int(self.latent_dim, "latent_dim", low=1)

    def _default_out(self):
        return self.latent_dim

    def _build(self, in_dim, out_dim):
        return _mlp(in_dim, out_dim, self.width, self.depth, self.activation)


@dataclasses.dataclass(frozen=True)
class ConvEncoder(_WithDefaultOut):
    """Convolutional encoder for 1x28x28 images; capacity = channel multiplier ``channels``.

    Conv(1 -> c, 4, stride 2) -> LeakyReLU -> Conv(c -> 2c, 4, stride 2) -> LeakyReLU -> Linear(2c·7·7 -> d):
    the mirror of :class:`~latentdist.generators.ConvDecoder`. ``in_dim`` must be 784.
    """

    channels: int = 32
    latent_dim: int = 16
    capacity_param: str = _capacity_field("channels")

    def __post_init__(self):
        check_int(self.channels, "channels", low=1)
        check_int(self.latent_dim, "latent_dim", low=1)

    def _default_out(self):
        return self.latent_dim

    def _build(self, in_dim, out_dim):
        _check_784(in_dim, "ConvEncoder")
        c = self.channels
        return nn.Sequential(*_conv_trunk(c), nn.Linear(2 * c * 7 * 7, out_dim))


@dataclasses.dataclass(frozen=True)
class MLPCritic(_WithDefaultOut):
    """MLP critic (discriminator) R^D -> R; capacity = width. No normalisation layers, so the WGAN-GP
    gradient penalty, which is per sample, stays well defined."""

    width: int = 128
    depth: int = 3
    activation: str = "leaky_relu"
    capacity_param: str = _capacity_field("width")

    def __post_init__(self):
        _check_mlp_fields(self.width, self.depth, self.activation)

    def _default_out(self):
        return 1

    def _build(self, in_dim, out_dim):
        return _mlp(in_dim, out_dim, self.width, self.depth, self.activation)


@dataclasses.dataclass(frozen=True)
class ConvCritic(_WithDefaultOut):
    """Convolutional critic for 1x28x28 images (the ConvEncoder trunk, one output); capacity = channels."""

    channels: int = 32
    capacity_param: str = _capacity_field("channels")

    def __post_init__(self):
        check_int(self.channels, "channels", low=1)

    def _default_out(self):
        return 1

    def _build(self, in_dim, out_dim):
        _check_784(in_dim, "ConvCritic")
        c = self.channels
        return nn.Sequential(*_conv_trunk(c), nn.Linear(2 * c * 7 * 7, out_dim))


def add_dropout(module: nn.Module, p: float) -> nn.Module:
    """A copy of ``module`` with ``nn.Dropout(p)`` after every hidden activation.

    The final output activation (e.g. a decoder's sigmoid) is left alone: dropping output pixels would change
    what the network predicts rather than how hard its hidden code is to use.

    Parameters
    ----------
    module : nn.Module
        Built from ``nn.Sequential`` blocks (every family in this toolkit is).
    p : float in [0, 1)

    Raises
    ------
    ValueError
        When ``module`` has no hidden activation to put dropout after.
    """
    p = check_scalar(p, "p", low=0.0, high=1.0, high_inclusive=False)
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    out = copy.deepcopy(module)
    if p == 0.0:
        return out
    last = [m for m in out.modules() if isinstance(m, _ACTIVATION_TYPES)]
    final = last[-1] if last and _is_final(out, last[-1]) else None
    count = _insert_dropout(out, p, final)
    if count == 0:
        raise ValueError(
            "module has no hidden activation inside an nn.Sequential to put dropout after: "
            f"{type(module).__name__}"
        )
    return out


def _is_final(root: nn.Module, m: nn.Module) -> bool:
    return isinstance(root, nn.Sequential) and len(root) > 0 and root[-1] is m


def _insert_dropout(seq: nn.Module, p: float, skip: nn.Module | None) -> int:
    count = 0
    for child in list(seq.children()):
        count += _insert_dropout(child, p, skip)
    if isinstance(seq, nn.Sequential):
        layers: list[nn.Module] = []
        for child in seq:
            layers.append(child)
            if isinstance(child, _ACTIVATION_TYPES) and child is not skip:
                layers.append(nn.Dropout(p))
                count += 1
        if count:
            for key in list(seq._modules):
                del seq._modules[key]
            for i, layer in enumerate(layers):
                seq.add_module(str(i), layer)
    return count


@dataclasses.dataclass(frozen=True)
class Dropout(Family):
    """The family ``base`` with dropout ``p`` after every hidden activation (see :func:`add_dropout`)."""

    base: Family = dataclasses.field(default_factory=ConvDecoder)
    p: float = 0.1

    def __post_init__(self):
        if not isinstance(self.base, Family):
            raise TypeError(f"base must be a Family, got {type(self.base).__name__}")
        check_scalar(self.p, "p", low=0.0, high=1.0, high_inclusive=False)

    @property
    def capacity(self) -> float:
        return self.base.capacity

    def _build(self, in_dim, out_dim):
        return add_dropout(self.base._build(in_dim, out_dim), self.p)


def weaken(
    family: Family, *, width_mult: float = 1.0, depth: int | None = None, dropout: float = 0.0
) -> Family:
    """A weaker copy of a network family, for the DAE's auxiliary decoder.

    Parameters
    ----------
    family : Family
        Must have a ``channels`` or ``width`` field for ``width_mult`` != 1, a ``depth`` field for ``depth``.
    width_mult : float > 0
        New width = max(1, round(width * width_mult)) (``channels`` for conv families).
    depth : int, optional
        New number of hidden layers.
    dropout : float in [0, 1)
        Dropout after every hidden activation (wraps the result in :class:`Dropout`).

    Examples
    --------
    >>> from latentdist.generators import MLP
    >>> weaken(MLP(width=64, depth=3), width_mult=0.5, depth=1)
    MLP(width=32, depth=1, activation='relu')
    """
    if not isinstance(family, Family):
        raise TypeError(f"family must be a Family (e.g. ConvDecoder(...)), got {type(family).__name__}")
    width_mult = check_scalar(width_mult, "width_mult", low=0.0, low_inclusive=False)
    dropout = check_scalar(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
    fields = {f.name for f in dataclasses.fields(family)}
    changes: dict = {}
    if width_mult != 1.0:
        key = "channels" if "channels" in fields else "width" if "width" in fields else None
        if key is None:
            raise ValueError(
                f"width_mult needs a family with a 'channels' or 'width' field, got {family.label()}"
            )
        changes[key] = max(1, round(getattr(family, key) * width_mult))
    if depth is not None:
        if "depth" not in fields:
            raise ValueError(f"depth needs a family with a 'depth' field, got {family.label()}")
        changes["depth"] = check_int(depth, "depth", low=0)
    out = dataclasses.replace(family, **changes) if changes else family
    return Dropout(out, dropout) if dropout > 0 else out
