"""Result cache for experiments, keyed by a hash of the full configuration.

A cached entry holds what :func:`compute` returned (the tidy table plus the arrays the figures need),
so a rerun with the same configuration only redraws figures. Any change of a configuration value, of
the seed, or of an experiment's ``VERSION`` changes the key.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from latentdist._io import atomic_write_bytes, cache_dir

__all__ = ["config_hash", "cache_path", "load", "store"]


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
    """Where the entry for ``claim`` with hash ``key`` lives (under ``cache_dir('experiments')``)."""
    return cache_dir("experiments") / f"{claim}-{key}.pkl"


def load(claim: str, key: str) -> Any | None:
    """The cached result, or ``None`` when absent or unreadable (a stale pickle is recomputed)."""
    path = cache_path(claim, key)
    if not path.exists():
        return None
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception:  # noqa: BLE001 - any unreadable entry simply means "recompute"
        return None


def store(claim: str, key: str, result: Any) -> Path:
    """Write ``result`` to the cache atomically."""
    return atomic_write_bytes(cache_path(claim, key), pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
