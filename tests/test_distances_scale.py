"""Scale: every distance and statistic is correct from 1e-150 to 1e150, or says the scale is the problem.

W_p, sliced, max-sliced, energy and Bures are homogeneous of degree 1 (d(cX, cY) = |c| d(X, Y)), the
Sinkhorn divergence of degree p when blur scales with the data, and MMD with the median bandwidth is
scale-free. The property tests draw a scale exponent and compare with the unit-scale value.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from latentdist.distances import (
    bootstrap,
    bures_wasserstein,
    energy_distance,
    gaussian_w2,
    max_sliced_wasserstein,
    median_bandwidth,
    mmd2,
    noise_floor,
    sinkhorn_divergence,
    sliced_wasserstein,
    two_sample_test,
    wasserstein,
)
from latentdist.distances._common import normalize_scale, times_pow2, unscale

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 2))
Y = RNG.normal(size=(10, 2)) + 0.7

# name -> (function of (x, y, c), degree of homogeneity)
CASES = {
    "w2": (lambda x, y, c: wasserstein(x, y), 1),
    "w1": (lambda x, y, c: wasserstein(x, y, p=1), 1),
    "w2_1d": (lambda x, y, c: wasserstein(x[:, :1], y[:, :1]), 1),
    "sliced": (lambda x, y, c: sliced_wasserstein(x, y, n_projections=16), 1),
    "max_sliced": (lambda x, y, c: max_sliced_wasserstein(x, y, n_iter=3, n_starts=8), 1),
    "mmd_median": (lambda x, y, c: mmd2(x, y), 0),
    "mmd_fixed": (lambda x, y, c: mmd2(x, y, kernel="laplacian", bandwidth=1.3 * c), 0),
    "energy": (lambda x, y, c: energy_distance(x, y), 1),
    "sinkhorn": (lambda x, y, c: sinkhorn_divergence(x, y, blur=0.3 * c), 2),
    "bures": (lambda x, y, c: bures_wasserstein(x, y), 1),
    "median_bandwidth": (lambda x, y, c: median_bandwidth(x, y), 1),
    "two_sample_mmd": (lambda x, y, c: two_sample_test(x, y, n_permutations=5, progress=False).statistic, 0),
    "two_sample_energy": (
        lambda x, y, c: two_sample_test(x, y, "energy", n_permutations=5, progress=False).statistic, 1),
    "bootstrap": (lambda x, y, c: bootstrap(x, y, "w1", n_boot=2, progress=False).value, 1),
    "noise_floor": (lambda x, y, c: noise_floor(x, "w1", n_repeats=2, progress=False).mean, 1),
}
BASE = {name: fn(X, Y, 1.0) for name, (fn, _) in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=8, deadline=None)
@given(exponent=st.integers(-150, 150))
def test_homogeneous_across_scales(name, exponent):
    fn, degree = CASES[name]
    c = 10.0**exponent
    value = fn(X * c, Y * c, c)
    expected = BASE[name] * c**degree
    assert value != 0.0 and math.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_extreme_scale_is_exact_or_a_clear_error(name):
    """At 1e300 and 1e-300 a result is either right or a ValueError that names the scale."""
    fn, degree = CASES[name]
    for c in (1e-300, 1e300):
        try:
            value = fn(X * c, Y * c, c)
        except ValueError as exc:
            assert "scale" in str(exc)
        else:
            assert value == pytest.approx(BASE[name] * c**degree, rel=1e-6)


def test_spread_of_replicates_at_large_scale():
    c = 1e300
    boot = bootstrap(X * c, Y * c, "w1", n_boot=4, progress=False)
    floor = noise_floor(X * c, "w1", n_repeats=3, progress=False)
    assert math.isfinite(boot.std) and boot.std > 0
    assert math.isfinite(floor.std) and floor.std > 0


def test_translation_far_from_origin():
    """Distinct samples far from the origin keep their distance (centring before the cost)."""
    value = wasserstein(X + 1e10, Y + 1e10)
    assert value == pytest.approx(BASE["w2"], rel=1e-5)


def test_two_sample_test_never_significant_on_nan():
    bad = lambda a, b: float("nan")  # noqa: E731
    with pytest.raises(ValueError, match="NaN"):
        two_sample_test(X, Y, bad, n_permutations=5, progress=False)


def test_gaussian_w2_scales_and_rejects_non_psd():
    m1, m2 = np.zeros(2), np.ones(2)
    s1, s2 = np.diag([4.0, 1.0]), np.eye(2)
    base = gaussian_w2(m1, s1, m2, s2)
    for c in (1e-150, 1e150):
        assert gaussian_w2(m1 * c, s1 * c * c, m2 * c, s2 * c * c) == pytest.approx(base * c, rel=1e-12)
    with pytest.raises(ValueError, match="cov1 must be positive semi-definite"):
        gaussian_w2(m1, -np.eye(2), m2, s2)
    with pytest.raises(ValueError, match="cov2 must be a symmetric"):
        gaussian_w2(m1, s1, m2, np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="cov1 must have shape"):
        gaussian_w2(m1, np.eye(3), m2, s2)


def test_sinkhorn_refuses_a_blur_out_of_proportion():
    with pytest.raises(ValueError, match="blur"):
        sinkhorn_divergence(X * 1e-20, Y * 1e-20, blur=0.05)


def test_fixed_bandwidth_out_of_proportion():
    with pytest.raises(ValueError, match="bandwidth"):
        mmd2(X * 1e300, Y * 1e300, bandwidth=1e-300)


def test_half_precision_is_upcast():
    xt, yt = torch.tensor(X, dtype=torch.float16), torch.tensor(Y, dtype=torch.float16)
    assert wasserstein(xt, yt) == pytest.approx(wasserstein(xt.double(), yt.double()), rel=1e-5)


def test_helpers_are_exact_powers_of_two():
    x = torch.tensor([[1e-40, 2e-40]], dtype=torch.float32)
    xs, ys, e = normalize_scale(x, x * 3)
    assert torch.isfinite(xs).all() and xs.abs().max() < 1
    assert times_pow2(3.0, 1100 - 1100) == 3.0
    assert unscale(1.5, -4, 1.0) == 1.5 / 16
    with pytest.raises(ValueError, match="scale"):
        unscale(1.5, 1000, 2.0)
    with pytest.raises(ValueError, match="scale"):
        unscale(1.5, -1000, 2.0)


def test_fid_and_kid_across_scales():
    from latentdist.metrics import fid, frechet_distance, kid

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=(60, 3)) + 0.4
    base_fid = fid(x, y)
    base_kid = kid(x, y, n_subsets=3, subset_size=30)
    for c in (1e-150, 1e-20, 1e20, 1e150):
        assert fid(x * c, y * c) == pytest.approx(base_fid * c * c, rel=1e-9)
    # KID's kernel (x.y/D + 1)^3 is not homogeneous: at small scale the linear term dominates (c^2),
    # so the value must be non-zero and of order c^2, never 0.0 from 1 + 3u rounding to 1.
    tiny = kid(x * 1e-100, y * 1e-100, n_subsets=3, subset_size=30)
    assert tiny.mean != 0.0 and 1e-203 < abs(tiny.mean) < 1e-197
    assert math.isfinite(tiny.std)
    assert kid(x, y, n_subsets=3, subset_size=30).mean == pytest.approx(base_kid.mean, rel=1e-12)
    with pytest.raises(ValueError, match="scale"):
        kid(x * 1e150, y * 1e150, n_subsets=3, subset_size=30)
    with pytest.raises(ValueError, match="sigma2 must be positive semi-definite"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2))
