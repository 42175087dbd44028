"""Batched ensemble fits: a compatibility module gathering :mod:`latentdist.stacked` (stacking),
:mod:`latentdist.distances.minibatch` (exact minibatch OT plans) and :mod:`latentdist.fitting` (the fit).

Example
-------
>>> from latentdist.ensemble import fit_ensemble
>>> fit_ensemble.__module__
'latentdist.fitting'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from latentdist.distances.minibatch import OT_LOSSES
from latentdist.distances.registry import training_loss
from latentdist.fitting import EnsembleFit, fit_ensemble, member_seeds
from latentdist.stacked import LoopGenerators, StackedGenerators, batch_groups, make_generators

__all__ = [
    "OT_LOSSES",
    "EnsembleFit",
    "StackedGenerators",
    "LoopGenerators",
    "batch_groups",
    "make_generators",
    "minibatch_loss",
    "fit_ensemble",
    "member_seeds",
]


def minibatch_loss(
    distance: str | Callable, **kwargs: Any
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-member training loss ``loss(y, x) -> (B,)``: :func:`latentdist.distances.training_loss`."""
    return training_loss(distance, **kwargs)
