"""Metric properties of the sample distances (hypothesis over small random point clouds)."""

from __future__ import annotations

import numpy as np
import ot
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import ortho_group

from latentdist.distances import (
    energy_distance,
    get_distance,
    mmd2,
    sinkhorn_divergence,
    sliced_wasserstein,
    wasserstein,
)

seeds = st.integers(0, 2**31 - 1)
sizes = st.integers(2, 12)
dims = st.integers(1, 4)
powers = st.sampled_from([1.0, 1.5, 2.0, 3.0])


def clouds(seed, n, m, d, k=2):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(s, d)) * rng.uniform(0.5, 3) + rng.normal(size=d) for s in (n, m, max(n, m))[:k]]


# Distances that are symmetric and vanish on identical samples (V-statistic MMD / energy).
SYMMETRIC = {
    "w1": get_distance("w1"),
    "w2": get_distance("w2"),
    "w3": lambda x, y: wasserstein(x, y, p=3),
    "sliced": get_distance("sliced", n_projections=16),
    "mmd_v": get_distance("mmd", unbiased=False, bandwidth=1.0),
    "energy_v": get_distance("energy", unbiased=False),
    "bures": get_distance("bures"),
}


@pytest.mark.parametrize("name", sorted(SYMMETRIC))
@given(seed=seeds, n=sizes, m=sizes, d=dims)
def test_symmetry_and_identity(name, seed, n, m, d):
    fn = SYMMETRIC[name]
    x, y = clouds(seed, n, m, d)
    if name in ("mmd_v", "energy_v"):  # computed in a canonical argument order: symmetric bit for bit
        assert fn(x, y) == fn(y, x)
    else:
        assert fn(x, y) == pytest.approx(fn(y, x), rel=1e-9, abs=1e-10)
    if name == "bures":  # a root of a difference of traces: round-off is sqrt(eps * tr S)
        assert fn(x, x) ** 2 < 1e-12 * (1.0 + np.sum(x.var(0)))
    elif name == "energy_v":  # distances from the Gram expansion: round-off sqrt(eps) * scale
        assert abs(fn(x, x)) < 1e-7 * (1.0 + np.sqrt(np.sum(x.var(0))))
    else:
        assert abs(fn(x, x)) < 1e-9
    assert fn(x, y) >= -1e-12


@given(seed=seeds, n=sizes, m=sizes, d=dims)
def test_unbiased_mmd_symmetric(seed, n, m, d):
    x, y = clouds(seed, n, m, d)
    for kernel in ("gaussian", "laplacian", "imq", "energy"):
        assert mmd2(x, y, kernel=kernel) == pytest.approx(mmd2(y, x, kernel=kernel), rel=1e-9, abs=1e-12)


@given(seed=seeds, n=sizes, d=dims, p=powers)
def test_triangle_inequality_wp(seed, n, d, p):
    rng = np.random.default_rng(seed)
    x, y, z = (rng.normal(size=(rng.integers(2, 10), d)) * rng.uniform(0.2, 3) for _ in range(3))
    assert wasserstein(x, z, p) <= wasserstein(x, y, p) + wasserstein(y, z, p) + 1e-9


@pytest.mark.parametrize("name", ["w1", "w2", "sliced", "mmd", "energy", "sinkhorn", "bures"])
@given(seed=seeds, n=st.integers(3, 10), m=st.integers(3, 10), d=st.integers(2, 3))
def test_permutation_and_rigid_motion_invariance(name, seed, n, m, d):
    x, y = clouds(seed, n, m, d)
    rng = np.random.default_rng(seed + 1)
    fn = get_distance(name, **({"bandwidth": 1.0} if name == "mmd" else {}))
    base = fn(x, y)
    assert fn(x[rng.permutation(n)], y[rng.permutation(m)]) == pytest.approx(base, rel=1e-7, abs=1e-9)
    if name == "sliced":  # random directions are not rotated along; only translations are exact
        q = np.eye(d)
    else:
        q = ortho_group.rvs(d, random_state=seed % (2**32))
    t = rng.normal(size=d) * 5
    assert fn(x @ q.T + t, y @ q.T + t) == pytest.approx(base, rel=1e-6, abs=1e-8)


@given(seed=seeds, n=sizes, m=sizes, d=dims, p=powers, s=st.floats(0.01, 100))
def test_homogeneity(seed, n, m, d, p, s):
    x, y = clouds(seed, n, m, d)
    assert wasserstein(s * x, s * y, p) == pytest.approx(s * wasserstein(x, y, p), rel=1e-7)
    scaled = sliced_wasserstein(s * x, s * y, p, 8)
    assert scaled == pytest.approx(s * sliced_wasserstein(x, y, p, 8), rel=1e-7)


@given(seed=seeds, n=st.integers(2, 15), m=st.integers(2, 15), d=dims)
def test_w2_translation_decomposition(seed, n, m, d):
    """W2^2(x, y + delta) = W2^2(x - mean x, y - mean y) + ||mean x - mean y - delta||^2 (exact for
    empirical measures: the cross term vanishes for any coupling with the right marginals)."""
    x, y = clouds(seed, n, m, d)
    xc, yc = x - x.mean(0), y - y.mean(0)
    lhs = wasserstein(x, y) ** 2
    rhs = wasserstein(xc, yc) ** 2 + np.sum((x.mean(0) - y.mean(0)) ** 2)
    assert lhs == pytest.approx(rhs, rel=1e-7, abs=1e-9)


@given(seed=seeds, n=st.integers(2, 30), m=st.integers(2, 30), p=powers, weighted=st.booleans())
def test_1d_quantile_closed_form(seed, n, m, p, weighted):
    """1-D W_p against an independent evaluation: the 1-D LP solved by the network simplex."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 1)), rng.exponential(size=(m, 1)) * 2
    a = rng.uniform(0.1, 1, n) if weighted else None
    b = rng.uniform(0.1, 1, m) if weighted else None
    cost = ot.dist(x, y, "minkowski", p=1) ** p
    ref = ot.emd2(a / a.sum() if weighted else [], b / b.sum() if weighted else [], cost)
    assert wasserstein(x, y, p, x_weights=a, y_weights=b) == pytest.approx(ref ** (1 / p), rel=1e-7)


def test_weights_equal_duplication():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(7, 2))
    w = np.array([1, 2, 1, 3, 1.0])
    dup = np.repeat(x, w.astype(int), axis=0)
    assert wasserstein(x, y, x_weights=w) == pytest.approx(wasserstein(dup, y), rel=1e-9)
    assert sliced_wasserstein(x, y, x_weights=w) == pytest.approx(sliced_wasserstein(dup, y), rel=1e-9)
    assert mmd2(x, y, unbiased=False, bandwidth=1.0, x_weights=w) == pytest.approx(
        mmd2(dup, y, unbiased=False, bandwidth=1.0), rel=1e-9)
    assert sinkhorn_divergence(x, y, blur=0.3, backend="pot", x_weights=w) == pytest.approx(
        sinkhorn_divergence(dup, y, blur=0.3, backend="pot"), rel=1e-5)


def test_energy_matches_scipy_1d():
    from scipy.stats import energy_distance as scipy_energy

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 1)), rng.normal(size=(55, 1)) + 0.5
    ref = scipy_energy(x[:, 0], y[:, 0]) ** 2
    assert energy_distance(x, y, unbiased=False) == pytest.approx(ref, rel=1e-9)


def test_chunking_does_not_change_values():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(37, 3)), rng.normal(size=(23, 3))
    for unbiased in (True, False):
        for kernel in ("gaussian", "laplacian", "imq", "energy"):
            full = mmd2(x, y, kernel=kernel, unbiased=unbiased, chunk_size=1000)
            chunked = mmd2(x, y, kernel=kernel, unbiased=unbiased, chunk_size=5)
            assert chunked == pytest.approx(full, rel=1e-10)


def test_seed_reproducible_and_numpy_torch_agree():
    import torch

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(20, 4))
    for name in ("sliced", "max_sliced", "mmd"):
        fn = get_distance(name, seed=7)
        assert fn(x, y) == fn(x, y)
        assert fn(torch.tensor(x), torch.tensor(y)) == pytest.approx(fn(x, y), rel=1e-12)
    assert sliced_wasserstein(x, y, seed=1) != sliced_wasserstein(x, y, seed=2)
    # same directions as the POT call it wraps
    assert sliced_wasserstein(x, y, n_projections=50, seed=4) == pytest.approx(
        ot.sliced_wasserstein_distance(x, y, n_projections=50, seed=4), rel=1e-12)


def test_max_sliced_beats_random_directions_and_finds_shift():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 6))
    shift = np.zeros(6)
    shift[2] = 2.0
    y = rng.normal(size=(300, 6)) + shift
    opt = get_distance("max_sliced")(x, y)
    rand = get_distance("max_sliced", n_iter=0)(x, y)
    pot_rand = ot.max_sliced_wasserstein_distance(x, y, n_projections=64, seed=0)
    assert opt >= rand - 1e-12
    assert opt > pot_rand
    assert opt >= wasserstein(x[:, 2:3], y[:, 2:3]) - 1e-9  # at least the best axis


@pytest.mark.parametrize("kernel", ["energy", "gaussian", "laplacian"])
def test_kernel_statistics_are_exactly_symmetric_with_weights_and_ties(kernel):
    # Equal sizes that differ late in the data, and identical data with different weights: both orders
    # must give the same bits (the canonical order covers the data and then the weights).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3)) * 1e3 + 7.0
    y = x.copy()
    y[-1, -1] += 1e-3
    w = rng.uniform(0.1, 1.0, size=5)
    fn = get_distance("mmd", kernel=kernel, unbiased=False, bandwidth=1.0)
    assert fn(x, y) == fn(y, x)
    assert fn(x, x, x_weights=w) == fn(x, x, y_weights=w)
    assert fn(x, y, x_weights=w, y_weights=w[::-1]) == fn(y, x, x_weights=w[::-1], y_weights=w)
    assert energy_distance(x, y[:4], unbiased=True) == energy_distance(y[:4], x, unbiased=True)
