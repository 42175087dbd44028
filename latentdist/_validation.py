"""Input validation shared by every public entry point.

Every public function funnels its arguments through these helpers so that bad
input fails the same way everywhere: ``TypeError`` for the wrong kind of
object, ``ValueError`` for the right kind with the wrong content. Messages name
the argument and say what was expected.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | Sequence

__all__ = [
    "ArrayLike",
    "is_tensor",
    "check_array",
    "check_samples",
    "check_pair",
    "check_weights",
    "check_scalar",
    "check_int",
    "check_option",
    "check_device",
    "check_seed",
    "check_lr",
    "check_memory",
    "memory_limit",
    "check_cast",
    "check_gaussian",
    "check_bool",
    "check_batch_size",
    "check_steps",
    "MAX_STEPS",
    "probe_module",
    "to_numpy",
    "to_tensor",
]


def is_tensor(x: Any) -> bool:
    """True when ``x`` is a ``torch.Tensor``."""
    return isinstance(x, torch.Tensor)


def _describe(x: Any) -> str:
    if is_tensor(x):
        return f"torch.Tensor of dtype {x.dtype} and shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"numpy array of dtype {x.dtype} and shape {x.shape}"
    return type(x).__name__


def check_array(
    x: ArrayLike,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    allow_int: bool = True,
    finite: bool = True,
) -> np.ndarray | torch.Tensor:
    """Check that ``x`` is a real numeric array or tensor and return it.

    Tensors are returned as tensors (gradients preserved); everything else is
    returned as a numpy array. Integer inputs are cast to float64 (numpy) or
    float32 (torch) when ``allow_int`` is true.

    Raises
    ------
    TypeError
        If ``x`` is not numeric (strings, objects, complex, bool).
    ValueError
        If ``x`` has the wrong number of dimensions or non-finite entries.
    """
    if x is None:
        raise TypeError(f"{name} must be an array or tensor, got None")
    if is_tensor(x):
        if x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"{name} must hold real numbers, got {_describe(x)}")
        if not x.is_floating_point():
            if not allow_int:
                raise TypeError(f"{name} must be floating point, got {_describe(x)}")
            x = x.float()
        arr = x
    else:
        if isinstance(x, (str, bytes)) or np.isscalar(x) and not isinstance(x, Real):
            raise TypeError(f"{name} must be an array or tensor, got {_describe(x)}")
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as exc:  # ragged lists and the like
            raise ValueError(f"{name} could not be read as a rectangular array: {exc}") from exc
        if arr.dtype == bool or arr.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got {_describe(arr)}")
        if arr.dtype.kind in "iu":
            if not allow_int:
                raise TypeError(f"{name} must be floating point, got {_describe(arr)}")
            arr = arr.astype(np.float64)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            shape = tuple(arr.shape)
            want = " or ".join(f"{d}-D" for d in allowed)
            hint = " (use x.reshape(-1, 1) for 1-D data)" if arr.ndim == 1 and 2 in allowed else ""
            raise ValueError(f"{name} must be {want}, got shape {shape}{hint}")
    if finite:
        bad = (~torch.isfinite(arr.detach())).any().item() if is_tensor(arr) else not np.isfinite(arr).all()
        if bad:
            raise ValueError(f"{name} contains NaN or inf; clean or drop those entries first")
    return arr


def check_samples(
    x: ArrayLike,
    name: str = "x",
    *,
    min_samples: int = 1,
    dim: int | None = None,
) -> np.ndarray | torch.Tensor:
    """Validate a sample matrix of shape ``(n_samples, n_features)``.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, D)
    name : str
        Argument name used in error messages.
    min_samples : int
        Smallest allowed ``n``.
    dim : int, optional
        Required ``D``.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``x`` itself (tensors keep their graph), floating point.

    Examples
    --------
    >>> check_samples([[0.0, 1.0], [1.0, 2.0]], "x").shape
    (2, 2)
    """
    arr = check_array(x, name, ndim=2)
    n, d = arr.shape
    if n < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} samples, got {n}")
    if d == 0:
        raise ValueError(f"{name} must have at least one feature, got shape {tuple(arr.shape)}")
    if dim is not None and d != dim:
        raise ValueError(f"{name} must have {dim} features (columns), got {d}")
    return arr


def check_pair(
    x: ArrayLike,
    y: ArrayLike,
    names: tuple[str, str] = ("x", "y"),
    *,
    min_samples: int = 1,
) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
    """Validate two sample matrices that must share their feature dimension."""
    x = check_samples(x, names[0], min_samples=min_samples)
    y = check_samples(y, names[1], min_samples=min_samples)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of features, "
            f"got {x.shape[1]} and {y.shape[1]}"
        )
    return x, y


def check_weights(w: ArrayLike | None, n: int, name: str = "weights") -> np.ndarray | torch.Tensor | None:
    """Validate non-negative sample weights of length ``n``; returns them normalized to sum 1.

    ``None`` passes through (uniform weights).
    """
    if w is None:
        return None
    arr = check_array(w, name, ndim=1)
    if arr.shape[0] != n:
        raise ValueError(f"{name} must have length {n} (one per sample), got {arr.shape[0]}")
    total = arr.sum()
    if (arr < 0).any():
        raise ValueError(f"{name} must be non-negative")
    if float(total.detach() if is_tensor(total) else total) <= 0:
        raise ValueError(f"{name} must not be all zero")
    return arr / total


def _zero_dim_item(value: Any) -> Any:
    """Unwrap 0-d real numpy arrays and tensors to Python scalars; leave everything else alone."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
        return value.item()
    if is_tensor(value) and value.ndim == 0 and not value.is_complex() and value.dtype != torch.bool:
        return value.item()
    return value


def check_scalar(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Check a finite real scalar within optional bounds and return it as ``float``."""
    value = _zero_dim_item(value)
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (not low_inclusive and value == low)):
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {op} {low}, got {value}")
    if high is not None and (value > high or (not high_inclusive and value == high)):
        op = "<=" if high_inclusive else "<"
        raise ValueError(f"{name} must be {op} {high}, got {value}")
    return value


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """Check an integer (not bool) within optional inclusive bounds and return it."""
    if isinstance(value, bool) or not isinstance(value, (Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """Check a real bool (``numpy.bool_`` too); strings like ``'yes'`` and ``None`` raise ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def probe_module(module: Any, inputs: torch.Tensor, name: str) -> torch.Tensor:
    """Run ``module`` once on ``inputs`` (eval mode, no grad, training flag restored) before training.

    A module built for another input size fails here with a ``ValueError`` naming ``name`` and the
    per-sample shape, instead of torch's "mat1 and mat2 shapes cannot be multiplied" mid-training.
    """
    if not callable(module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
    was_training = getattr(module, "training", False)
    if hasattr(module, "eval"):
        module.eval()
    try:
        with torch.no_grad():
            return module(inputs)
    except RuntimeError as exc:
        raise ValueError(f"{name} does not accept inputs of shape {tuple(inputs.shape[1:])} per sample "
                         f"(the size the data or latent gives it): {exc}") from exc
    finally:
        if hasattr(module, "train"):
            module.train(was_training)


def check_option(value: Any, name: str, options: Iterable[str]) -> str:
    """Check that ``value`` is one of the known option names (case-sensitive)."""
    options = list(options)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {options}, got {type(value).__name__}")
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; expected one of {options}")
    return value


#: Seeds are unsigned 64-bit integers: numpy's SeedSequence takes more, but torch's manual_seed does not.
SEED_LIMIT = 2**64


def check_seed(seed: Any, name: str = "seed") -> Any:
    """Check a seed (int in [0, 2**64), numpy or torch Generator, or None) without consuming it."""
    if seed is None or isinstance(seed, (np.random.Generator, torch.Generator)):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (Integral, np.integer)):
        raise TypeError(
            f"{name} must be an int, numpy Generator, torch Generator or None, got {type(seed).__name__}"
        )
    if not 0 <= int(seed) < SEED_LIMIT:
        raise ValueError(f"{name} must be non-negative and below 2**64, got {seed}")
    return int(seed)


def check_lr(lr: Any, name: str = "lr") -> float:
    """A learning rate: finite, > 0 and at most 1e6 (beyond that every optimiser step overflows)."""
    return check_scalar(lr, name, low=0.0, high=1e6, low_inclusive=False)


def memory_limit() -> int:
    """Bytes one allocation may take: ``$LATENTDIST_MAX_BYTES`` if set, else half the available RAM.

    Half, because an estimate counts only the main buffer, and the call needs temporaries beside it.
    """
    env = os.environ.get("LATENTDIST_MAX_BYTES")
    if env:
        try:
            return int(float(env))
        except ValueError as exc:
            raise ValueError(f"LATENTDIST_MAX_BYTES must be a number of bytes, got {env!r}") from exc
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): assume 8 GiB
        avail = 8 * 2**30
    return int(avail // 2)


def check_memory(nbytes: float, what: str, *, limit: int | None = None) -> None:
    """Raise ``ValueError`` before allocating when the estimate ``nbytes`` exceeds the memory limit.

    ``what`` names the argument(s) that set the size, e.g. ``"n=10**12 (float32 samples of D=2)"``.
    The limit is ``limit`` if given, else :func:`memory_limit` (``$LATENTDIST_MAX_BYTES`` or half
    the available RAM).

    Examples
    --------
    >>> check_memory(8 * 10**12, "n=10**12", limit=2**30)
    Traceback (most recent call last):
    ...
    ValueError: n=10**12 needs about 8.0e+12 bytes (8000.0 GB), over the 1.1e+09-byte limit ...
    """
    cap = memory_limit() if limit is None else int(limit)
    if nbytes > cap:
        raise ValueError(
            f"{what} needs about {float(nbytes):.1e} bytes ({float(nbytes) / 1e9:.1f} GB), over the "
            f"{float(cap):.1e}-byte limit (half the available memory, or $LATENTDIST_MAX_BYTES); "
            "use a smaller size"
        )


#: Optimisation steps above this are refused: at a millisecond a step 10**8 steps is a day of compute,
#: and a typo like steps=10**12 would otherwise run until killed.
MAX_STEPS = 10**8


def check_steps(value: Any, name: str = "steps", *, low: int = 1) -> int:
    """An integer number of optimisation steps in ``[low, MAX_STEPS]``."""
    return check_int(value, name, low=low, high=MAX_STEPS)


def check_batch_size(value: Any, name: str = "batch_size", *, width: int = 1, low: int = 1) -> int:
    """An integer batch size whose (batch, width) float32 activations and gradients (16 bytes a number,
    a lower bound on what a step allocates) fit :func:`check_memory`."""
    value = check_int(value, name, low=low)
    check_memory(16.0 * value * max(int(width), 1), f"{name}={value} (rows of width {width})")
    return value


def check_cast(x: np.ndarray | torch.Tensor, dtype: Any, name: str) -> np.ndarray | torch.Tensor:
    """Cast ``x`` to ``dtype`` (numpy or torch), raising ``ValueError`` naming ``name`` when an entry
    is or becomes non-finite (values beyond float32's 3.4e38 silently turn into inf otherwise)."""
    if is_tensor(x):
        out = x.to(dtype)
        bad = not bool(torch.isfinite(out.detach()).all())
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.asarray(x).astype(dtype)
        bad = not bool(np.isfinite(out).all())
    if bad:
        top = float(torch.finfo(out.dtype).max if is_tensor(out) else np.finfo(out.dtype).max)
        raise ValueError(
            f"{name} has values beyond the range of {out.dtype} (|v| <= {top:.1e}) or not finite; "
            "reduce the scale (e.g. normalize)" + ("" if top > 1e300 else " or keep float64")
        )
    return out


def check_gaussian(
    mean: Any, cov: Any, names: tuple[str, str] = ("mean", "cov")
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a Gaussian's mean (D,) and covariance (D, D): finite, symmetric, positive semi-definite.

    Returns float64 numpy arrays (a scalar mean / 1x1 covariance is accepted for D = 1). Symmetry is
    checked to 1e-8 relative to the largest entry, PSD as ``min eigenvalue >= -1e-8 * max |eigenvalue|``
    (round-off in a sample covariance stays well inside both).
    """
    mu = to_numpy(check_array(mean, names[0], ndim=(0, 1))).reshape(-1)
    sigma = to_numpy(check_array(cov, names[1], ndim=(0, 2)))
    sigma = sigma.reshape(1, 1) if sigma.ndim == 0 else sigma
    d = mu.shape[0]
    if d == 0:
        raise ValueError(f"{names[0]} must have at least one entry")
    if sigma.shape != (d, d):
        raise ValueError(f"{names[1]} must have shape ({d}, {d}) to match {names[0]}, got {sigma.shape}")
    peak = float(np.abs(sigma).max())
    # Compare at unit scale (np.ldexp is exact) so covariances of 1e300 or 1e-300 are judged alike.
    unit = np.ldexp(sigma, -math.frexp(peak)[1]) if peak > 0 else sigma
    if not np.allclose(unit, unit.T, rtol=1e-8, atol=1e-8):
        raise ValueError(f"{names[1]} must be a symmetric covariance matrix")
    eig = np.linalg.eigvalsh((unit + unit.T) / 2)
    if eig.min() < -1e-8 * max(float(np.abs(eig).max()), 0.0):
        raise ValueError(
            f"{names[1]} must be positive semi-definite (a covariance), but has eigenvalue "
            f"{eig.min() * peak / max(np.abs(unit).max(), 1e-300):.3g}"
        )
    return mu, sigma


def check_device(device: str | torch.device | None) -> torch.device:
    """Resolve ``device`` ('cpu', 'cuda', 'cuda:1', 'auto', torch.device or None -> cpu)."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use device='cpu'")
    return dev


def to_numpy(x: np.ndarray | torch.Tensor, dtype: Any = np.float64) -> np.ndarray:
    """Detach, move to CPU and convert to a numpy array of ``dtype``."""
    if is_tensor(x):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def to_tensor(
    x: np.ndarray | torch.Tensor,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Convert to a tensor without breaking autograd; numpy float64 stays float64 unless ``dtype``."""
    if is_tensor(x):
        return x.to(device=device or x.device, dtype=dtype or x.dtype)
    arr = np.asarray(x)
    t = torch.from_numpy(np.ascontiguousarray(arr))
    return t.to(device=device or "cpu", dtype=dtype or t.dtype)
