"""One registry of sample distances: every other module resolves distances through ``get_distance``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from .critic import critic_distance
from .gaussian import bures_wasserstein
from .kernel import energy_distance, mmd2
from .sinkhorn import sinkhorn_divergence
from .sliced import max_sliced_wasserstein, sliced_wasserstein
from .wasserstein import wasserstein

__all__ = ["get_distance", "available_distances", "register_distance", "DIFFERENTIABLE"]

DistanceFn = Callable[..., Any]

# name -> (function, arguments the name fixes)
_REGISTRY: dict[str, tuple[DistanceFn, dict[str, Any]]] = {
    "w1": (wasserstein, {"p": 1}),
    "w2": (wasserstein, {"p": 2}),
    "sinkhorn": (sinkhorn_divergence, {}),
    "sliced": (sliced_wasserstein, {}),
    "max_sliced": (max_sliced_wasserstein, {}),
    "mmd": (mmd2, {}),
    "energy": (energy_distance, {}),
    "critic": (critic_distance, {}),
    "bures": (bures_wasserstein, {}),
}

#: Names whose distance returns a differentiable tensor when an input requires grad.
DIFFERENTIABLE = ("w1", "w2", "sinkhorn", "sliced", "max_sliced", "mmd", "energy")


def available_distances() -> list[str]:
    """Names accepted by :func:`get_distance`, sorted.

    Examples
    --------
    >>> "w2" in available_distances()
    True
    """
    return sorted(_REGISTRY)


def register_distance(name: str, fn: DistanceFn, *, overwrite: bool = False) -> None:
    """Add ``fn(x, y, **kwargs)`` under ``name``; an existing name needs ``overwrite=True``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"distance {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = (fn, {})


def _bind(fn: DistanceFn, fixed: dict[str, Any], kwargs: dict[str, Any], label: str) -> DistanceFn:
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
    if name_or_callable not in _REGISTRY:
        raise ValueError(f"unknown distance {name_or_callable!r}; expected one of {available_distances()}")
    fn, fixed = _REGISTRY[name_or_callable]
    return _bind(fn, fixed, kwargs, name_or_callable)
