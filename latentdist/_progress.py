"""tqdm progress bars that are off in logs and can be silenced per call or globally.

Whether a bar is drawn, in order of precedence:

1. ``progress=False`` on the call turns it off;
2. ``LATENTDIST_PROGRESS=1`` forces bars on, ``LATENTDIST_PROGRESS=0`` forces them off;
3. otherwise bars are drawn only when standard error is a terminal, or inside a Jupyter kernel (where
   ``tqdm.auto`` draws one widget per bar). A CI log, a redirected file or a pipe gets none: tqdm
   would redraw nested bars thousands of times into it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar", "progress_enabled"]

_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _stderr_is_terminal() -> bool:
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def _in_jupyter_kernel() -> bool:
    shell = sys.modules.get("IPython")
    get_ipython = getattr(shell, "get_ipython", None)
    return get_ipython is not None and type(get_ipython()).__name__ == "ZMQInteractiveShell"


def progress_enabled(progress: bool = True) -> bool:
    """Whether a bar should be shown: ``progress`` and ``LATENTDIST_PROGRESS``, else a terminal or Jupyter.

    Examples
    --------
    >>> progress_enabled(False)
    False
    """
    if not progress:
        return False
    forced = os.environ.get("LATENTDIST_PROGRESS", "").strip().lower()
    if forced in _ON:
        return True
    if forced in _OFF:
        return False
    return _stderr_is_terminal() or _in_jupyter_kernel()


def progress_bar(iterable: Iterable | None = None, *, progress: bool = True, **kwargs: Any) -> tqdm:
    """A ``tqdm`` bar over ``iterable`` (or ``total=``) that is disabled when progress is off."""
    return tqdm(iterable, disable=not progress_enabled(progress), leave=False, dynamic_ncols=True, **kwargs)
