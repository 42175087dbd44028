"""Writing an experiment's figures (PNG and PDF) and numbers (CSV and JSON), atomically.

Every file goes through :mod:`latentdist._io`, so an interrupted run never leaves a torn figure or a
half-written table behind.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentdist._io import atomic_write_bytes, atomic_write_text

__all__ = ["save_figure", "save_table", "save_json", "to_jsonable"]


def save_figure(fig: Any, out_dir: str | os.PathLike, name: str, *, close: bool = True) -> list[Path]:
    """Save a matplotlib figure as ``<out_dir>/<name>.png`` and ``.pdf``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    out_dir : path
        Created when missing.
    name : str
        File stem, without extension.
    close : bool
        Close the figure afterwards (experiments draw many figures; open ones leak memory).

    Returns
    -------
    list of Path
        The two files written.
    """
    paths = []
    for ext, kwargs in (("png", {"dpi": 150}), ("pdf", {})):
        buf = io.BytesIO()
        # PDF metadata carries a creation date by default; drop it so reruns give identical bytes.
        meta = {"CreationDate": None} if ext == "pdf" else {}
        fig.savefig(buf, format=ext, bbox_inches="tight", metadata=meta, **kwargs)
        paths.append(atomic_write_bytes(Path(out_dir) / f"{name}.{ext}", buf.getvalue()))
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return paths


def save_table(df: pd.DataFrame, out_dir: str | os.PathLike, name: str) -> Path:
    """Write a DataFrame as ``<out_dir>/<name>.csv`` (no index, full float precision)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    return atomic_write_text(Path(out_dir) / f"{name}.csv", df.to_csv(index=False))


def to_jsonable(obj: Any) -> Any:
    """Recursively turn numpy scalars/arrays, tuples and paths into plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None  # JSON has no NaN/inf; None reads back as "not measured"
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_json(obj: Any, out_dir: str | os.PathLike, name: str) -> Path:
    """Write ``obj`` as ``<out_dir>/<name>.json`` (sorted keys, NaN written as null)."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=True, default=str) + "\n"
    return atomic_write_text(Path(out_dir) / f"{name}.json", text)
