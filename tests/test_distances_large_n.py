"""Bounded-memory large-n paths (issue 17 item 5): the blocked sums give the dense numbers, and the
block sizes follow ``memory_cap``.

Tolerances. A blocked path sums the same terms as the dense one in another grouping, and its BLAS
products may accumulate in another order for another block shape. In float64 (unit roundoff
u = 1.1e-16) a pairwise/blocked sum of N terms is off by at most ~log2(N) u of the sum of magnitudes
(~2e-15 for N = 1e5), and one Gram-expanded squared distance by ~D u ||x||^2 (~1e-14 of the scale
after centring); 1e-12 of the value's scale leaves a margin of ~50. A bookkeeping error (a block
missed or counted twice) moves the value by about 1 / (number of blocks)^2 ~ 1e-2, far above it.
"""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch

import latentdist.distances.kernel as kn
import latentdist.distances.sinkhorn as sk
from latentdist.distances import (
    energy_distance,
    max_sliced_wasserstein,
    mmd2,
    sinkhorn_divergence,
    sliced_wasserstein,
)
from latentdist.distances._blocked import _kernel, block_rows, sinkhorn_blocked, square_block

RTOL = 1e-12


def _samples(seed: int, n: int = 120, m: int = 100, d: int = 6):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 0.3


def test_block_sizes_follow_the_cap():
    assert block_rows(1000, 100, 50, "rows") == 10
    assert block_rows(10**9, 100, 50, "rows") == 50  # never more rows than there are
    assert square_block(4 * 8 * 100, 8, 4, 1000, "blocks") == 10
    assert square_block(10**12, 8, 4, 37, "blocks") == 37
    with pytest.raises(ValueError, match="memory_cap=99"):
        block_rows(99, 100, 50, "rows")
    with pytest.raises(ValueError, match="memory_cap=31"):
        square_block(31, 8, 4, 10, "blocks")


@pytest.mark.parametrize("kernel", ["gaussian", "energy"])
@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd_blocks_match_one_dense_block(kernel, unbiased, monkeypatch):
    x, y = _samples(0)
    dense = mmd2(x, y, kernel, 1.5, unbiased, chunk_size=10**6, memory_cap=2**40)
    sides = []
    real = kn.kernel_matrix

    def spy(u, v, *args):
        sides.append(max(u.shape[0], v.shape[0]))
        return real(u, v, *args)

    monkeypatch.setattr(kn, "kernel_matrix", spy)
    cap = kn.BLOCK_COPIES * 8 * 17**2  # 17 x 17 float64 blocks
    blocked = mmd2(x, y, kernel, 1.5, unbiased, memory_cap=cap)
    assert max(sides) == 17 and len(sides) > 20
    # the kernel values are <= 1 (gaussian) or about the mean distance (energy): the value's scale
    scale = 1.0 if kernel == "gaussian" else float(np.linalg.norm(x[:, None] - y[None], axis=-1).mean())
    assert abs(blocked - dense) <= RTOL * scale
    with pytest.raises(ValueError, match="memory_cap"):
        mmd2(x, y, kernel, 1.5, unbiased, memory_cap=kn.BLOCK_COPIES * 8 - 1)


def test_sliced_chunks_match_pot_and_respect_the_cap():
    import tracemalloc

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2000, 10)), rng.normal(size=(1500, 10))
    ref = ot.sliced_wasserstein_distance(x, y, n_projections=64, p=2, seed=3)
    cap = 2 * 10**6  # ~4 directions of 14 * 3500 float64 numbers per chunk
    tracemalloc.start()
    val = sliced_wasserstein(x, y, 2, 64, seed=3, memory_cap=cap)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert val == pytest.approx(ref, rel=RTOL)
    # beside the cap: the validated copies of the inputs (at most two of each) and the directions
    assert peak <= cap + 2 * (x.nbytes + y.nbytes) + 10 * 64 * 8
    with pytest.raises(ValueError, match="memory_cap"):
        sliced_wasserstein(x, y, 2, 64, memory_cap=1000)


def _unit_problem(seed: int, dtype=torch.float64):
    x, y = _samples(seed, 90, 70, 4)
    xt, yt = torch.tensor(x, dtype=dtype)[None], torch.tensor(y, dtype=dtype)[None]
    a = torch.full((1, 90), 1 / 90, dtype=dtype)
    b = torch.full((1, 70), 1 / 70, dtype=dtype)
    return xt, yt, a, b


def test_blocked_sinkhorn_matches_geomloss_dense(monkeypatch):
    """Same loop, same temperatures; only the softmin's summation grouping differs (float64)."""
    x, y = _samples(2)
    dense = sinkhorn_divergence(x, y, 2, 0.2, backend="geomloss")
    monkeypatch.setattr(sk, "BLOCKED_DTYPE", torch.float64)
    blocked = sinkhorn_divergence(x, y, 2, 0.2, backend="blocked", memory_cap=10**9)
    # The potentials are O(diameter^p) ~ 40 and S is their O(1) difference; ~60 averaged sweeps carry
    # the per-softmin rounding along without growing it (the averaged map is a contraction).
    assert blocked == pytest.approx(dense, rel=1e-11)
    monkeypatch.setattr(sk, "BLOCKED_DTYPE", torch.float32)
    f32 = sinkhorn_divergence(x, y, 2, 0.2, backend="blocked")
    # float32 (u = 6e-8) on potentials of ~40 at S ~ 1: measured 1e-6 relative here; 1e-4 bounds it
    assert f32 == pytest.approx(dense, rel=1e-4)


def test_blocked_sinkhorn_recomputes_under_a_small_cap():
    xt, yt, a, b = _unit_problem(3)
    eps = [4.0, 1.0, 0.25, 0.1]

    def cost(u, v):
        return sk._cost(u, v, 2.0)

    stored, info = sinkhorn_blocked(xt, yt, a, b, cost, eps, 10**9)
    assert info["dense"] and info["rows"] == 90
    cap = 5 * 8 * 90 * 7  # 7 rows of 90 float64 entries (block + 4 temporaries); the costs do not fit
    recomputed, info = sinkhorn_blocked(xt, yt, a, b, cost, eps, cap)
    assert not info["dense"] and info["rows"] == 7
    assert float(recomputed[0]) == pytest.approx(float(stored[0]), rel=RTOL, abs=RTOL)
    with pytest.raises(ValueError, match="memory_cap"):
        sinkhorn_blocked(xt, yt, a, b, cost, eps, 100)


def test_auto_takes_blocked_beyond_the_threshold_and_needs_no_grad(monkeypatch):
    x, y = _samples(4, 40, 30, 3)
    monkeypatch.setattr(sk, "LAZY_THRESHOLD", 10)
    assert sinkhorn_divergence(x, y, 2, 0.3) == sinkhorn_divergence(x, y, 2, 0.3, backend="blocked")
    xt = torch.tensor(x, requires_grad=True)
    assert sinkhorn_divergence(xt, y, 2, 0.3).requires_grad  # 'auto' keeps GeomLoss for a gradient
    with pytest.raises(ValueError, match="no gradient"):
        sinkhorn_divergence(xt, y, 2, 0.3, backend="blocked")


@pytest.mark.slow
def test_fused_softmin_equals_eager():
    """torch.compile's fused log-sum-exp (the n = 20k path) against the eager kernel, float32."""
    g = torch.Generator().manual_seed(0)
    c = torch.rand(37, 501, generator=g) * 4
    inv = torch.tensor(20.0)
    for name, h in (("rows", torch.randn(501, generator=g)), ("cols", torch.randn(37, generator=g))):
        eager, fused = _kernel(name, False), _kernel(name, True)
        # float32 log-sum-exp of ~500 terms: relative error ~ log2(500) u ~ 1e-6 of |h - C/eps| ~ 80
        torch.testing.assert_close(fused(c, h, inv), eager(c, h, inv), rtol=1e-5, atol=1e-4)


DEVICE_CALLS = {
    "mmd2": lambda x, y, **kw: mmd2(x, y, bandwidth=1.0, **kw),
    "energy_distance": lambda x, y, **kw: energy_distance(x, y, **kw),
    "sliced_wasserstein": lambda x, y, **kw: sliced_wasserstein(x, y, 2, 16, **kw),
    "max_sliced_wasserstein": lambda x, y, **kw: max_sliced_wasserstein(x, y, 2, 3, n_starts=4, **kw),
    "sinkhorn_divergence": lambda x, y, **kw: sinkhorn_divergence(x, y, 2, 0.5, **kw),
}


@pytest.mark.parametrize("name", sorted(DEVICE_CALLS))
def test_device_argument(name):
    """Issue 17 item 6: every torch-heavy distance takes device=; CPU numbers are the reference."""
    call = DEVICE_CALLS[name]
    x, y = _samples(5, 40, 30, 3)
    ref = call(x, y)
    assert call(x, y, device="cpu") == ref
    with pytest.raises(ValueError, match="device"):
        call(x, y, device="nonsense")
    if torch.cuda.is_available():
        # another BLAS and reduction order: float64 agreement to ~1e-12, far above any device bug
        assert call(x, y, device="cuda") == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_uncertainty_helpers_pass_device_through():
    from latentdist.distances import bootstrap, two_sample_test

    x, y = _samples(6, 40, 40, 3)
    # device= takes the per-permutation path (mmd2 on that device); same seeded permutations
    fast = two_sample_test(x, y, "mmd", n_permutations=30, progress=False)
    moved = two_sample_test(x, y, "mmd", n_permutations=30, progress=False, device="cpu")
    assert moved.p_value == fast.p_value
    assert moved.statistic == pytest.approx(fast.statistic, rel=1e-9)
    with pytest.raises(ValueError, match="device"):
        bootstrap(x, y, "mmd", n_boot=2, progress=False, device="nonsense")
