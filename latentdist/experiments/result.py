"""The object every experiment's ``compute`` returns and the cache stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["ExperimentResult"]


@dataclass
class ExperimentResult:
    """What one claim's experiment measured.

    Attributes
    ----------
    claim : str
        ``'R1'`` … ``'R6'``.
    table : pandas.DataFrame
        Tidy numbers, one row per measurement (written as ``<claim>.csv``).
    summary : dict
        Headline numbers and verdict inputs (written into ``<claim>.json``).
    extras : dict
        Arrays the figures need (e.g. found latents); cached, not written as numbers.
    config : dict
        The configuration that produced it.
    seconds : float
        Wall-clock seconds of the computation (of the original run when read from the cache).
    cached : bool
        Whether this object came from the cache.
    key : str
        The configuration hash.
    """

    claim: str
    table: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = float("nan")
    cached: bool = False
    key: str = ""
