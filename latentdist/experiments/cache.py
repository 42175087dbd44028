"""Result cache for experiments, keyed by a hash of the full configuration.

A cached entry holds what :func:`compute` returned (the tidy table plus the arrays the figures need),
so a rerun with the same configuration only redraws figures. Any change of a configuration value, of
the seed, or of an experiment's ``VERSION`` changes the key.

Entries are pickles framed with a SHA-256 digest (:func:`latentdist._io.write_verified_bytes`) and
verified before they are unpickled, so a torn, bit-flipped or foreign file is never used: :func:`load`
warns and reports a miss, and the runner recomputes. Entries of the older, unframed format count as
corrupted once and are rewritten. The digest guards against accidents, not against an attacker who can
write to the cache directory (who could equally replace the package).

An unwritable cache (``$LATENTDIST_CACHE`` on a read-only mount, or under a regular file) is reported
by :func:`unwritable`, which the runner asks *before* computing.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

from latentdist._io import (
    CheckpointError,
    cache_root,
    read_verified_bytes,
    unwritable_reason,
    write_verified_bytes,
)

__all__ = ["config_hash", "cache_path", "load", "store", "load_file", "store_file", "unwritable"]


def _canonical(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, float):
        return repr(obj)  # repr round-trips exactly, so 0.1 and 0.1000001 hash differently
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    raise TypeError(
        f"configuration values must be JSON-like (dict, list, str, number), got {type(obj).__name__}"
    )


def config_hash(claim: str, config: dict, version: int) -> str:
    """SHA-256 (first 16 hex digits) of the claim name, its code version and its configuration."""
    payload = json.dumps({"claim": claim, "version": version, "config": _canonical(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cache_path(claim: str, key: str) -> Path:
    """Where the entry for ``claim`` with hash ``key`` lives (under ``cache_root('experiments')``)."""
    return cache_root("experiments") / f"{claim}-{key}.pkl"


def unwritable() -> str | None:
    """``None`` when the experiment cache can be written, else a message naming the cache directory
    and ``LATENTDIST_CACHE``."""
    reason = unwritable_reason(cache_root("experiments"))
    if reason is None:
        return None
    return (f"the experiment cache is unusable: {reason}; set LATENTDIST_CACHE to a writable directory "
            "to cache results")


def load_file(path: str | os.PathLike) -> Any | None:
    """The object pickled at ``path`` by :func:`store_file`, or ``None`` when absent.

    An entry that fails its digest check, or whose verified pickle no longer loads (a class that
    moved), is reported with a ``RuntimeWarning`` and treated as absent, so the caller recomputes and
    overwrites it. Use this pair for any per-claim cache (for example per-unit results that let an
    interrupted run resume).
    """
    path = Path(path)
    try:
        if not path.is_file():
            return None
        payload = read_verified_bytes(path, what="cached result", remedy="recomputing it")
        return pickle.loads(payload)
    except CheckpointError as exc:
        warnings.warn(str(exc), RuntimeWarning, stacklevel=3)
    except Exception as exc:  # noqa: BLE001 - an intact pickle of code that changed: recompute it
        warnings.warn(f"cached result {path} no longer loads ({type(exc).__name__}: {exc}); recomputing it",
                      RuntimeWarning, stacklevel=3)
    return None


def store_file(path: str | os.PathLike, obj: Any) -> Path:
    """Pickle ``obj`` to ``path`` atomically, framed with its SHA-256 digest (raises ``OSError`` when
    the cache cannot be written; check :func:`unwritable` first)."""
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return write_verified_bytes(path, payload)


def load(claim: str, key: str) -> Any | None:
    """The cached result of ``claim`` under ``key``, or ``None`` (absent, or corrupted: see
    :func:`load_file`)."""
    return load_file(cache_path(claim, key))


def store(claim: str, key: str, result: Any) -> Path:
    """Write ``result`` to the cache atomically, framed with its SHA-256 digest."""
    return store_file(cache_path(claim, key), result)
