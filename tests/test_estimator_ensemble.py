"""Batched ensembles: exact equivalence to single fits, masking of padded units, grouping, fallback."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from latentdist.ensemble import (
    LoopGenerators,
    StackedGenerators,
    batch_groups,
    fit_ensemble,
    make_generators,
    minibatch_loss,
)
from latentdist.generators import MLP, ConvDecoder, Family, Linear, LipschitzMLP
from latentdist.latents import Gaussian


@pytest.mark.parametrize(
    ("families", "in_dim", "out_dim"),
    [
        (MLP(depth=2).at([3, 5, 8]), 2, 3),
        (MLP(depth=1, activation="softplus").at([2, 6]), 1, 2),  # softplus(0) != 0: masks must still cut
        (LipschitzMLP(1.0, width=4).at([0.5, 2.0, 7.0]), 2, 1),
        ([LipschitzMLP(2.0, width=2), LipschitzMLP(3.0, width=6)], 1, 1),
        (ConvDecoder(1).at([1, 2]), 2, 784),
        ([Linear(), Linear()], 3, 2),
    ],
)
def test_stacked_forward_equals_standalone_members(families, in_dim, out_dim):
    stacked = StackedGenerators(families, list(range(10, 10 + len(families))), in_dim, out_dim)
    z = torch.randn(len(families), 7, in_dim, generator=torch.Generator().manual_seed(0))
    out = stacked(z)
    for i, fam in enumerate(families):
        alone = fam.build(in_dim, out_dim, seed=10 + i)  # same seed: same initial weights
        torch.testing.assert_close(out[i], alone(z[i]).flatten(1), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(stacked.member(i)(z[i]).flatten(1), alone(z[i]).flatten(1))
        assert type(stacked.member(i)) is type(alone)


def test_padded_entries_are_zero_and_get_no_gradient():
    # softplus(0) != 0: a padded unit is active, so the raw gradient of the next layer's padded weights
    # is not zero and only the gradient mask keeps them at 0
    stacked = StackedGenerators(MLP(depth=2, activation="softplus").at([2, 8]), [0, 1], 2, 2)
    for key, p in stacked.params.items():
        mask = getattr(stacked, f"mask__{key}")
        assert torch.all(p.detach()[mask == 0] == 0), key
    z = torch.randn(2, 16, 2)
    stacked(z).pow(2).sum().backward()
    for key, p in stacked.params.items():
        mask = getattr(stacked, f"mask__{key}")
        assert torch.all(p.grad[mask == 0] == 0), key
        assert torch.any(p.grad[mask == 1] != 0), key
    assert any(torch.any(mask == 0) for mask in (getattr(stacked, f"mask__{k}") for k in stacked.params))


def test_gradient_mask_follows_the_module_to_another_dtype():
    stacked = StackedGenerators(MLP(depth=1).at([2, 5]), [0, 1], 2, 2).double()
    stacked(torch.randn(2, 8, 2, dtype=torch.float64)).sum().backward()
    for key, p in stacked.params.items():
        assert p.grad.dtype == torch.float64
        assert torch.all(p.grad[getattr(stacked, f"mask__{key}") == 0] == 0), key


def test_ensemble_equals_sequential_fits_same_seeds():
    x = np.random.default_rng(0).normal(size=(300, 2)) * [2.0, 0.5]
    fams = MLP(depth=2).at([3, 6, 12])
    seeds = [5, 6, 7]
    together = fit_ensemble(fams, seeds, Gaussian(2), x, "w2", steps=15, batch_size=16, progress=False)
    for i, (fam, s) in enumerate(zip(fams, seeds, strict=True)):
        alone = fit_ensemble([fam], [s], Gaussian(2), x, "w2", steps=15, batch_size=16, progress=False)
        pairs = zip(together.models[i].named_parameters(), alone.models[0].parameters(), strict=True)
        for (name, p), q in pairs:
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
        np.testing.assert_allclose(together.final_loss[i], alone.final_loss[0], rtol=1e-4)


def test_ensemble_equals_sequential_lipschitz_1d_sorting_plan():
    x = np.concatenate([np.full((100, 1), -2.0), np.full((100, 1), 2.0)])
    fams = LipschitzMLP(1.0, width=4).at([1.0, 3.0])
    together = fit_ensemble(fams, [1, 2], Gaussian(1), x, "w1", steps=20, progress=False)
    for i, fam in enumerate(fams):
        alone = fit_ensemble([fam], [1 + i], Gaussian(1), x, "w1", steps=20, progress=False)
        for p, q in zip(together.models[i].parameters(), alone.models[0].parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_padded_parameters_stay_zero_after_training():
    x = np.random.default_rng(1).normal(size=(200, 2))
    gens = make_generators(MLP(depth=2).at([2, 9]), [0, 1], 2, 2)
    opt = torch.optim.Adam(gens.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        minibatch_loss("w2")(gens(torch.randn(2, 32, 2)), torch.as_tensor(x[:32], dtype=torch.float32)
                             .expand(2, -1, -1)).sum().backward()
        opt.step()
    for key, p in gens.params.items():
        assert torch.all(p.detach()[getattr(gens, f"mask__{key}") == 0] == 0), key


def test_batch_groups():
    fams = [MLP(width=4), LipschitzMLP(2.0), MLP(width=16), MLP(width=4, depth=3), LipschitzMLP(4.0, width=8),
            MLP(width=4, activation="tanh")]
    assert batch_groups(fams) == [[0, 2], [1, 4], [3], [5]]
    with pytest.raises(TypeError, match=r"families\[0\]"):
        batch_groups(["mlp"])


@dataclasses.dataclass(frozen=True)
class _ItemFamily(Family):
    """A family whose forward calls .item(): vmap cannot batch it, so the loop fallback must run."""

    width: int = 4
    capacity_param: str = dataclasses.field(default="width", kw_only=True, repr=False)

    def _build(self, in_dim, out_dim):
        class Net(nn.Module):
            def __init__(self, width):
                super().__init__()
                self.a = nn.Linear(in_dim, width)
                self.b = nn.Linear(width, out_dim)

            def forward(self, z):
                scale = 1.0 + 0.0 * float(self.a.weight.sum().item())
                return self.b(torch.relu(self.a(z))) * scale

        return Net(self.width)


def test_unbatchable_family_falls_back_to_loop():
    gens = make_generators([_ItemFamily(), _ItemFamily()], [0, 1], 2, 2)
    assert isinstance(gens, LoopGenerators)
    x = np.random.default_rng(0).normal(size=(100, 2))
    fit = fit_ensemble([_ItemFamily(), _ItemFamily(8)], [0, 1], Gaussian(2), x, steps=5, progress=False)
    assert len(fit.models) == 2 and fit.models[1].a.out_features == 8


def test_ot_loss_is_exact_assignment_cost():
    """The minibatch loss equals the exact W_p^p of the two batches (checked against POT)."""
    import ot

    gen = torch.Generator().manual_seed(3)
    y, x = torch.randn(2, 20, 2, generator=gen), torch.randn(2, 20, 2, generator=gen)
    for name, p in (("w2", 2), ("w1", 1)):
        got = minibatch_loss(name)(y, x)
        for b in range(2):
            cost = ot.dist(y[b].double().numpy(), x[b].double().numpy(), metric="euclidean") ** p
            want = ot.emd2(np.full(20, 1 / 20), np.full(20, 1 / 20), cost)
            assert abs(float(got[b]) - want) < 1e-5


@pytest.mark.parametrize(
    ("families", "in_dim", "out_dim"),
    [
        (MLP(depth=2, activation="softplus").at([3, 8]), 2, 3),
        (LipschitzMLP(1.0, width=4).at([0.5, 3.0]), 2, 2),
        ([Linear(bias=False), Linear(bias=False)], 3, 2),
    ],
)
def test_matmul_path_equals_vmap_path(families, in_dim, out_dim):
    """The batched-matmul forward of plain layer stacks matches the generic vmap path, values and grads."""
    fast = StackedGenerators(families, [3, 4], in_dim, out_dim)
    slow = StackedGenerators(families, [3, 4], in_dim, out_dim, use_vmap=True)
    assert fast._plan is not None and slow._plan is None
    z = torch.randn(2, 9, in_dim, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(fast(z), slow(z), rtol=1e-5, atol=1e-6)
    fast(z).sin().sum().backward()
    slow(z).sin().sum().backward()
    for key in fast.params:
        torch.testing.assert_close(fast.params[key].grad, slow.params[key].grad, rtol=1e-4, atol=1e-6)


def test_conv_decoder_keeps_vmap_path():
    assert StackedGenerators(ConvDecoder(1).at([1, 2]), [0, 1], 2, 784)._plan is None


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("mmd", {}),
        ("mmd", {"kernel": "laplacian", "bandwidth": 0.7, "unbiased": False}),
        ("mmd", {"kernel": "imq"}),
        ("energy", {}),
        ("energy", {"unbiased": False}),
        ("sliced", {"n_projections": 16, "seed": 4}),
        ("sliced", {"p": 1}),
    ],
)
def test_batched_losses_equal_registry_per_member(name, kwargs):
    """The batched mmd/energy/sliced training losses give the registry function's value and gradient."""
    from latentdist.distances import get_distance, get_entry

    assert get_entry(name).batched(**kwargs) is not None  # the batched path is the one under test
    gen = torch.Generator().manual_seed(7)
    # float64: in float32 the norm kernels' Gram-expansion round-off (sqrt(eps) ~ 3e-4) would dominate
    y = torch.randn(3, 24, 2, generator=gen, dtype=torch.float64).requires_grad_(True)
    x = torch.randn(3, 24, 2, generator=gen, dtype=torch.float64) * 1.5 + 0.3
    got = minibatch_loss(name, **kwargs)(y, x)
    (g_got,) = torch.autograd.grad(got.sum(), y)
    fn = get_distance(name, **kwargs)
    want = torch.stack([fn(yb, xb) for yb, xb in zip(y, x, strict=True)])
    (g_want,) = torch.autograd.grad(want.sum(), y)
    torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(g_got, g_want, rtol=1e-6, atol=1e-9)


def test_batched_loss_rejects_bad_options_and_falls_back():
    with pytest.raises(ValueError, match="kernel"):
        minibatch_loss("mmd", kernel="cosine")
    # median heuristic on a pool over 1000 points: the registry's seeded subsample, member by member
    from latentdist.distances import mmd2

    # float64 and seeded: the two paths then differ only by summation order, ~1e-15, far below 1e-10;
    # a bandwidth from another subsample (the argument-order bug) shows up at ~1e-6.
    gen = torch.Generator().manual_seed(0)
    y, x = torch.randn(2, 600, 2, generator=gen, dtype=torch.float64), torch.randn(
        2, 600, 2, generator=gen, dtype=torch.float64)
    got = minibatch_loss("mmd")(y, x)
    for b in range(2):
        assert abs(float(got[b]) - mmd2(y[b], x[b])) < 1e-10
        assert abs(float(got[b]) - mmd2(x[b], y[b])) < 1e-10


@pytest.mark.parametrize("threads", [1, 3])
def test_threaded_assignments_equal_serial(threads, monkeypatch):
    import latentdist.distances.minibatch as ens

    gen = torch.Generator().manual_seed(2)
    y, x = torch.randn(7, 30, 3, generator=gen), torch.randn(7, 30, 3, generator=gen)
    monkeypatch.setattr(ens, "OT_THREADS", threads)
    got = minibatch_loss("w2")(y, x)
    from scipy.optimize import linear_sum_assignment

    for b in range(7):
        cost = ((y[b, :, None].double() - x[b, None].double()) ** 2).sum(-1).numpy()
        rows, cols = linear_sum_assignment(cost)
        assert abs(float(got[b]) - cost[rows, cols].mean()) < 1e-5


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 40), dim=st.integers(2, 4), seed=st.integers(0, 2**31 - 1),
       duplicates=st.booleans())
def test_assignment_solver_is_optimal(n, dim, seed, duplicates):
    """The batched solver (lapx when installed) reaches scipy's optimum, also with tied costs."""
    from scipy.optimize import linear_sum_assignment

    import latentdist.distances.minibatch as ens

    rng = np.random.default_rng(seed)
    y, x = rng.normal(size=(3, n, dim)), rng.normal(size=(3, n, dim))
    if duplicates:  # minibatches drawn with replacement repeat points: many optimal plans
        x = x[:, rng.integers(0, max(1, n // 3), n)]
    costs = ((y[:, :, None] - x[:, None]) ** 2).sum(-1)
    cols = ens.assignments(costs)
    for b in range(3):
        assert sorted(cols[b]) == list(range(n))
        rows, best = linear_sum_assignment(costs[b])
        np.testing.assert_allclose(costs[b][np.arange(n), cols[b]].sum(), costs[b][rows, best].sum(),
                                   rtol=1e-12, atol=1e-12)


def test_diverged_outputs_raise_instead_of_a_meaningless_plan():
    y = torch.randn(4, 8, 2)
    y[2, 3, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="diverged"):
        minibatch_loss("w2")(y, torch.randn(4, 8, 2))


def test_pooled_fit_runs_on_one_intra_op_thread_and_restores_the_setting(monkeypatch):
    import latentdist.distances.minibatch as ot
    import latentdist.fitting as ens

    seen = []
    train = ens._train_group
    monkeypatch.setattr(ens, "_train_group", lambda *a: seen.append(torch.get_num_threads()) or train(*a))
    monkeypatch.setattr(ot, "OT_THREADS", 2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = np.random.default_rng(0).normal(size=(100, 2))
        fit_ensemble(MLP(depth=1).at([4] * 4), range(4), Gaussian(2), x, "w2", steps=3, progress=False)
        fit_ensemble(MLP(depth=1).at([4] * 4), range(4), Gaussian(2), x, "energy", steps=3, progress=False)
        assert seen == [1, 2]  # w2 with the assignment pool: one thread; energy: torch's setting
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
