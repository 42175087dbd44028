"""A family declares its own stacking: a toy family defined here alone is grouped, padded and fitted."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from latentdist.fitting import fit_ensemble
from latentdist.generators import Family
from latentdist.latents import Gaussian
from latentdist.stacked import StackedGenerators, batch_groups, make_generators


@dataclasses.dataclass(frozen=True)
class Bottleneck(Family):
    """z -> tanh(W1 z) -> W2 (.) with ``rank`` hidden units: a family nobody in the package knows."""

    rank: int = 2
    gain: float = 1.0
    capacity_param: str = dataclasses.field(default="rank", kw_only=True, repr=False)
    padded_fields: ClassVar[tuple[str, ...]] = ("rank",)

    def _build(self, in_dim, out_dim):
        return nn.Sequential(nn.Linear(in_dim, self.rank), nn.Tanh(), nn.Linear(self.rank, out_dim))


def test_toy_family_groups_by_its_declared_fields():
    fams = [*Bottleneck().at([1, 3]), Bottleneck(rank=2, gain=2.0)]
    assert batch_groups(fams) == [[0, 1], [2]]  # rank is free, gain is not


def test_toy_family_stacks_and_matches_its_members():
    fams = Bottleneck().at([1, 2, 4])
    gens = make_generators(fams, [5, 6, 7], 2, 3)
    assert isinstance(gens, StackedGenerators) and gens.needs_mask
    z = torch.randn(3, 10, 2, generator=torch.Generator().manual_seed(0))
    out = gens(z)
    for b, (fam, seed) in enumerate(zip(fams, [5, 6, 7], strict=True)):
        torch.testing.assert_close(out[b], fam.build(2, 3, seed=seed)(z[b]))


def test_toy_family_ensemble_fits_like_single_fits():
    x = np.random.default_rng(0).normal(size=(200, 2)) * [2.0, 0.5]
    fams = Bottleneck().at([1, 3])
    fit = fit_ensemble(fams, [0, 1], Gaussian(2), x, "w2", steps=15, progress=False)
    assert fit.history["loss"].notna().all() and len(fit.models) == 2
    assert fit.models[0][0].weight.shape == (1, 2)  # each member keeps its own (unpadded) rank
    assert fit.models[1][0].weight.shape == (3, 2)
    for i, fam in enumerate(fams):  # member i follows the trajectory of a fit of it alone
        alone = fit_ensemble([fam], [i], Gaussian(2), x, "w2", steps=15, progress=False)
        np.testing.assert_allclose(fit.final_loss[i], alone.final_loss[0], rtol=1e-4)
