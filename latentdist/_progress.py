"""tqdm progress bars that users can silence per call or globally.

``progress=False`` on any long-running function, or ``LATENTDIST_PROGRESS=0`` in
the environment (CI sets it), turns every bar off.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar", "progress_enabled"]


def progress_enabled(progress: bool = True) -> bool:
    """Whether a bar should be shown, honouring ``LATENTDIST_PROGRESS=0``."""
    return bool(progress) and os.environ.get("LATENTDIST_PROGRESS", "1") not in ("0", "false", "False")


def progress_bar(iterable: Iterable | None = None, *, progress: bool = True, **kwargs: Any) -> tqdm:
    """A ``tqdm`` bar over ``iterable`` (or ``total=``) that is disabled when progress is off."""
    return tqdm(iterable, disable=not progress_enabled(progress), leave=False, dynamic_ncols=True, **kwargs)
