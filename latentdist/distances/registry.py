"""One registry of sample distances: an entry is the whole distance, evaluation and training.

Every other module resolves distances through this registry. A :class:`DistanceEntry` carries

* ``fn(x, y, **kwargs)``, the evaluation function (samples (n, D) and (m, D) -> float or 0-d tensor);
* ``train(**kwargs)``, optionally, a factory of the differentiable *training form*: a loss
  ``(y, x) -> (B,)`` on B members' minibatches of shape (B, n, D) (``'w1'``/``'w2'``: the transport cost
  under the exact minibatch plan; ``'sinkhorn'``: the batched divergence);
* ``batched(**kwargs)``, optionally, a factory of the *batched form* of ``fn`` for equal-size (B, n, D)
  batches (returning None for options it does not cover);
* ``differentiable``: whether ``fn`` returns a differentiable tensor when an input requires grad.

A distance can train (``entry.trainable``) when it has a training form or is differentiable; the
training loss of :func:`training_loss` then comes from the first of: the training form, the batched
form, the evaluation function member by member. Overriding a name (``register_distance(..., overwrite=True)``)
therefore changes evaluation *and* training.

Example
-------
>>> import torch
>>> def mean_gap(x, y):
...     return (torch.as_tensor(x).mean(0) - torch.as_tensor(y).mean(0)).norm()
>>> register_distance("mean_gap", mean_gap)
>>> get_entry("mean_gap").trainable
True
>>> float(training_loss("mean_gap")(torch.zeros(2, 3, 1), torch.ones(2, 3, 1))[0])
1.0
>>> unregister_distance("mean_gap")
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .batched import batched_energy, batched_mmd, batched_sliced
from .critic import critic_distance
from .gaussian import bures_wasserstein
from .kernel import energy_distance, mmd2
from .minibatch import OTPlanLoss
from .sinkhorn import sinkhorn_divergence
from .sliced import max_sliced_wasserstein, sliced_wasserstein
from .wasserstein import wasserstein

__all__ = [
    "DistanceEntry",
    "get_distance",
    "get_entry",
    "available_distances",
    "trainable_distances",
    "register_distance",
    "unregister_distance",
    "training_loss",
    "DIFFERENTIABLE",
]

DistanceFn = Callable[..., Any]
#: A per-member loss on B minibatches: (y, x) of shape (B, n, D) -> tensor of shape (B,).
BatchLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class DistanceEntry:
    """Everything the package knows about one named distance.

    Attributes
    ----------
    name : str
    fn : callable
        ``fn(x, y, **kwargs)``: the evaluation function.
    fixed : mapping
        Keyword arguments the name fixes (``'w2'`` fixes ``p=2`` of :func:`wasserstein`).
    train : callable, optional
        ``train(**kwargs) -> loss``: the differentiable training form, a loss (B, n, D) x (B, n, D) -> (B,).
    batched : callable, optional
        ``batched(**kwargs) -> loss or None``: ``fn`` for equal-size (B, n, D) batches, or None for
        options it does not cover.
    differentiable : bool
        ``fn`` returns a differentiable tensor when an input requires grad.
    """

    name: str
    fn: DistanceFn
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    train: Callable[..., BatchLoss] | None = None
    batched: Callable[..., BatchLoss | None] | None = None
    differentiable: bool = False

    @property
    def trainable(self) -> bool:
        """Whether generators can be trained on this distance (a training form or a differentiable ``fn``)."""
        return self.train is not None or self.differentiable


def _ot_train(p: float) -> Callable[..., BatchLoss]:
    # The minibatch plan is exact for equal uniform batches: the evaluation options (weights, the
    # solver's iteration cap) do not apply to it.
    return lambda **kwargs: OTPlanLoss(p)


def _sinkhorn_train(**kwargs: Any) -> BatchLoss:
    # sinkhorn_divergence accepts (B, n, D) batches and returns (B,)
    return lambda y, x: sinkhorn_divergence(y, x, **kwargs)


_BUILTIN = [
    DistanceEntry("w1", wasserstein, {"p": 1}, train=_ot_train(1.0), differentiable=True),
    DistanceEntry("w2", wasserstein, {"p": 2}, train=_ot_train(2.0), differentiable=True),
    DistanceEntry("sinkhorn", sinkhorn_divergence, train=_sinkhorn_train, differentiable=True),
    DistanceEntry("sliced", sliced_wasserstein, batched=batched_sliced, differentiable=True),
    DistanceEntry("max_sliced", max_sliced_wasserstein, differentiable=True),
    DistanceEntry("mmd", mmd2, batched=batched_mmd, differentiable=True),
    DistanceEntry("energy", energy_distance, batched=batched_energy, differentiable=True),
    DistanceEntry("critic", critic_distance),
    DistanceEntry("bures", bures_wasserstein),
]
_REGISTRY: dict[str, DistanceEntry] = {e.name: e for e in _BUILTIN}
_DEFAULTS: dict[str, DistanceEntry] = dict(_REGISTRY)

#: Built-in names whose distance returns a differentiable tensor when an input requires grad.
DIFFERENTIABLE = tuple(e.name for e in _BUILTIN if e.differentiable)


def available_distances() -> list[str]:
    """Names accepted by :func:`get_distance`, sorted.

    Examples
    --------
    >>> "w2" in available_distances()
    True
    """
    return sorted(_REGISTRY)


def trainable_distances() -> list[str]:
    """Registered names that generators can be trained on (``get_entry(name).trainable``), sorted.

    Examples
    --------
    >>> "w2" in trainable_distances(), "bures" in trainable_distances()
    (True, False)
    """
    return sorted(name for name, entry in _REGISTRY.items() if entry.trainable)


def get_entry(name: str) -> DistanceEntry:
    """The registry entry of ``name``; ValueError (listing the known names) for an unknown one."""
    if not isinstance(name, str):
        raise TypeError(f"distance must be a name, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown distance {name!r}; expected one of {available_distances()}")
    return _REGISTRY[name]


def register_distance(name: str, fn: DistanceFn, *, train: Callable[..., BatchLoss] | None = None,
                      batched: Callable[..., BatchLoss | None] | None = None, differentiable: bool = True,
                      overwrite: bool = False) -> None:
    """Add the distance ``fn(x, y, **kwargs)`` under ``name``; an existing name needs ``overwrite=True``.

    Parameters
    ----------
    name : str
    fn : callable
        Evaluation function on samples (n, D), (m, D).
    train : callable, optional
        ``train(**kwargs)`` returning a training loss (B, n, D) x (B, n, D) -> (B,).
    batched : callable, optional
        ``batched(**kwargs)`` returning ``fn`` for equal-size (B, n, D) batches, or None.
    differentiable : bool, default True
        Whether ``fn`` is differentiable in its inputs (then it trains member by member when no other
        form is given); pass False for a distance that can only evaluate.
    overwrite : bool
        Replace an existing entry (built-ins included) as a whole: its old training and batched forms
        are dropped with it.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    for arg, value in (("fn", fn), ("train", train), ("batched", batched)):
        if value is not None and not callable(value):
            raise TypeError(f"{arg} must be callable, got {type(value).__name__}")
    if fn is None:
        raise TypeError("fn must be callable, got NoneType")
    if not isinstance(differentiable, bool):
        raise TypeError(f"differentiable must be a bool, got {type(differentiable).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"distance {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = DistanceEntry(name, fn, {}, train=train, batched=batched, differentiable=differentiable)


def unregister_distance(name: str) -> None:
    """Remove ``name``; a built-in name is restored to its built-in entry instead."""
    get_entry(name)
    if name in _DEFAULTS:
        _REGISTRY[name] = _DEFAULTS[name]
    else:
        del _REGISTRY[name]


def _bind(fn: DistanceFn, fixed: Mapping[str, Any], kwargs: dict[str, Any], label: str) -> DistanceFn:
    clash = sorted(set(fixed) & set(kwargs))
    if clash:
        raise ValueError(f"distance {label!r} fixes {clash}; do not pass them (got {kwargs})")
    bound = {**fixed, **kwargs}
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: trust the caller
        sig = None
    if sig is not None:
        try:
            sig.bind_partial(None, None, **bound)
        except TypeError as exc:
            raise TypeError(f"invalid arguments for distance {label!r}: {exc}") from exc
    out = functools.partial(fn, **bound)
    functools.update_wrapper(out, fn)
    out.__name__ = label  # type: ignore[attr-defined]
    return out


def get_distance(name_or_callable: str | DistanceFn, **kwargs: Any) -> DistanceFn:
    """Resolve a distance by name (or pass a callable through) with ``kwargs`` bound.

    Names: ``'w1'``, ``'w2'`` (exact OT, :func:`wasserstein` with p fixed), ``'sinkhorn'``,
    ``'sliced'``, ``'max_sliced'``, ``'mmd'``, ``'energy'``, ``'critic'``, ``'bures'``, plus anything
    added by :func:`register_distance`. The result is called as ``d(x, y)``.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known ones) or a keyword the name already fixes.
    TypeError
        A keyword the distance does not accept, or neither a string nor a callable.

    Examples
    --------
    >>> import numpy as np
    >>> d = get_distance("mmd", bandwidth=1.0, unbiased=False)
    >>> d(np.zeros((3, 2)), np.zeros((4, 2)))
    0.0
    """
    if callable(name_or_callable):
        label = getattr(name_or_callable, "__name__", type(name_or_callable).__name__)
        return _bind(name_or_callable, {}, kwargs, label)
    if not isinstance(name_or_callable, str):
        raise TypeError(f"distance must be a name or a callable, got {type(name_or_callable).__name__}")
    entry = get_entry(name_or_callable)
    return _bind(entry.fn, entry.fixed, kwargs, name_or_callable)


def training_loss(distance: str | DistanceFn, **kwargs: Any) -> BatchLoss:
    """Per-member training loss ``loss(y, x) -> (B,)`` for outputs y and data x of shape (B, n, D).

    The registry entry decides: its training form when it has one (``'w1'``/``'w2'``: the transport cost
    W_p^p under the exact minibatch plan, :class:`~latentdist.distances.minibatch.OTPlanLoss`;
    ``'sinkhorn'``: the batched debiased divergence); else its batched form for equal-size batches
    (``'mmd'``, ``'energy'``, ``'sliced'``: the same value to float round-off) where the options allow it;
    else the evaluation function's differentiable value, member by member. A callable that is not
    registered is used member by member.

    Raises
    ------
    ValueError
        An unknown name, or a distance that cannot train (``get_entry(name).trainable`` is False).
    TypeError
        Keyword arguments the distance does not accept.
    """
    fn = get_distance(distance, **kwargs)  # validates the name and the keyword arguments
    entry = _REGISTRY[distance] if isinstance(distance, str) else None
    if entry is not None and not entry.trainable:
        raise ValueError(f"distance {distance!r} cannot train generators (no differentiable form); choose "
                         f"one of {trainable_distances()} as the training distance")
    if entry is not None and entry.train is not None:
        return entry.train(**kwargs)
    batched = entry.batched(**kwargs) if entry is not None and entry.batched is not None else None
    if batched is not None:  # invalid option values raise here, as in the per-member path
        fn(torch.zeros(2, 1), torch.ones(2, 1))

    def per_member(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if batched is not None and y.shape[1] == x.shape[1] and y.shape[1] >= 2:
            return batched(y, x)
        return torch.stack([torch.as_tensor(fn(yb, xb)) for yb, xb in zip(y, x, strict=True)])

    return per_member
