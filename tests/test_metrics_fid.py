"""FID and KID on feature arrays (no MNIST needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import special_ortho_group

from latentdist.metrics import fid, frechet_distance, gaussian_stats, kid


def _whitened(n: int, d: int, seed: int) -> np.ndarray:
    """n samples whose empirical mean is exactly 0 and unbiased covariance exactly I."""
    z = np.random.default_rng(seed).normal(size=(n, d))
    z -= z.mean(0)
    c = np.cov(z, rowvar=False)
    return z @ np.linalg.inv(np.linalg.cholesky(c)).T


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    q = special_ortho_group.rvs(d, random_state=rng) if d > 1 else np.ones((1, 1))
    return (q * rng.uniform(0.05, 5.0, size=d)) @ q.T


def _closed_form_2d(mu1, s1, mu2, s2) -> float:
    # For 2x2 PSD M: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)), applied to M = S1 S2 (same spectrum
    # as S1^1/2 S2 S1^1/2); an independent route to the Fréchet distance.
    cross = np.sqrt(np.trace(s1 @ s2) + 2.0 * np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * cross)


@given(seed=st.integers(0, 10_000), n=st.integers(3, 60), d=st.integers(1, 12))
def test_fid_of_a_set_with_itself_is_zero(seed, n, d):
    x = np.random.default_rng(seed).normal(size=(n, d)) * np.random.default_rng(seed + 1).uniform(0.1, 10, d)
    scale = np.trace(np.atleast_2d(np.cov(x, rowvar=False)))
    assert 0.0 <= fid(x, x) <= 1e-9 * max(scale, 1.0)


@given(seed=st.integers(0, 10_000), d=st.integers(1, 8))
def test_fid_is_symmetric(seed, d):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(40, d)), rng.normal(size=(25, d)) * 2 + 1
    assert fid(x, y) == pytest.approx(fid(y, x), rel=1e-9, abs=1e-12)


@given(seed=st.integers(0, 10_000))
def test_frechet_distance_matches_2d_closed_form(seed):
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.normal(size=2), rng.normal(size=2)
    s1, s2 = _random_spd(rng, 2), _random_spd(rng, 2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_closed_form_2d(mu1, s1, mu2, s2), rel=1e-9)


@given(seed=st.integers(0, 10_000), d=st.integers(1, 10))
def test_frechet_distance_of_commuting_covariances(seed, d):
    # Shared eigenvectors: W2^2 = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    rng = np.random.default_rng(seed)
    q = special_ortho_group.rvs(d, random_state=rng) if d > 1 else np.ones((1, 1))
    a, b = rng.uniform(0.0, 4.0, d), rng.uniform(0.0, 4.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, (q * a) @ q.T, mu2, (q * b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_fid_on_samples_equals_closed_form_when_sample_moments_are_exact():
    rng = np.random.default_rng(3)
    mu1, mu2 = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    s1, s2 = _random_spd(rng, 2), _random_spd(rng, 2)
    x = mu1 + _whitened(500, 2, 0) @ np.linalg.cholesky(s1).T
    y = mu2 + _whitened(700, 2, 1) @ np.linalg.cholesky(s2).T
    stats = gaussian_stats(x)
    np.testing.assert_allclose(stats.mu, mu1, atol=1e-12)
    np.testing.assert_allclose(stats.sigma, s1, atol=1e-12)
    assert fid(x, y) == pytest.approx(_closed_form_2d(mu1, s1, mu2, s2), rel=1e-9)


def test_fid_converges_to_population_value():
    rng = np.random.default_rng(0)
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, 0.0])
    s1, s2 = np.diag([1.0, 2.0, 0.5]), np.diag([4.0, 2.0, 0.5])
    expected = 1.0 + (1.0 - 2.0) ** 2  # mean shift plus (sqrt 1 - sqrt 4)^2
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    # Delta-method sd of the estimate: mean term 2|dmu| sqrt((1 + 4)/n) = 0.010, covariance terms
    # sqrt(2/n) * 1 and sqrt(32/n) * 0.5 -> 0.007; total ~0.012, so 0.04 is ~3 sd.
    assert fid(x, y) == pytest.approx(expected, abs=0.04)


def test_fid_is_stable_for_singular_covariances():
    # n < d: rank-deficient covariances, where sqrtm-based code returns complex parts or NaN.
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 64)), rng.normal(size=(12, 64)) + 0.5
    v = fid(x, y)
    assert np.isfinite(v) and v > 0
    assert fid(x, x) < 1e-9
    assert v == pytest.approx(fid(y, x), rel=1e-9)


def test_fid_accepts_torch_and_numpy_alike():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    assert fid(torch.from_numpy(x), torch.from_numpy(y).float()) == pytest.approx(fid(x, y), rel=1e-5)


def _naive_unbiased_mmd2_cubic(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], x.shape[0]

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    return xx + yy - 2 * xy


@given(seed=st.integers(0, 10_000), m=st.integers(2, 12), d=st.integers(1, 5))
def test_kid_matches_naive_unbiased_mmd(seed, m, d):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d)) + rng.normal()
    # A subset of the full size is a permutation, and MMD^2 is permutation invariant.
    res = kid(x, y, n_subsets=3, subset_size=m, seed=seed)
    assert res.mean == pytest.approx(_naive_unbiased_mmd2_cubic(x, y), rel=1e-9, abs=1e-9)
    assert res.std == pytest.approx(0.0, abs=1e-9)


def test_kid_of_identical_distributions_is_zero_within_its_spread():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3000, 16)), rng.normal(size=(3000, 16))
    res = kid(x, y, n_subsets=50, subset_size=300, seed=0)
    assert res.std > 0
    assert abs(res.mean) < res.std


def test_kid_separates_shifted_distributions():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1000, 16)), rng.normal(size=(1000, 16)) + 0.3
    res = kid(x, y, n_subsets=20, subset_size=300, seed=0)
    assert res.mean > 5 * res.std


def test_kid_same_seed_same_numbers():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 3)), rng.normal(size=(150, 3))
    assert kid(x, y, n_subsets=5, subset_size=100, seed=7) == kid(x, y, n_subsets=5, subset_size=100, seed=7)
    assert kid(x, y, n_subsets=5, subset_size=100, seed=7) != kid(x, y, n_subsets=5, subset_size=100, seed=8)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda x: fid(x, np.full((5, 3), np.nan)), ValueError, "fake_feats.*NaN"),
        (lambda x: fid(x, x[:, :2]), ValueError, "same number of features"),
        (lambda x: fid(x[:1], x), ValueError, "real_feats needs at least 2"),
        (lambda x: fid(x[:, 0], x), ValueError, "real_feats must be 2-D"),
        (lambda x: fid("abc", x), TypeError, "real_feats"),
        (lambda x: kid(x, x, subset_size=50), ValueError, "subset_size must be <= "),
        (lambda x: kid(x, x, n_subsets=0, subset_size=5), ValueError, "n_subsets"),
        (lambda x: kid(x, x, subset_size=2.5), TypeError, "subset_size"),
        (lambda x: frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3)), ValueError, "sigma1"),
        (lambda x: frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3)),
         ValueError, "mu1 and mu2"),
        (lambda x: frechet_distance(np.zeros(2), np.triu(np.ones((2, 2))), np.zeros(2), np.eye(2)),
         ValueError, "symmetric"),
    ],
)
def test_bad_input_raises(call, exc, match):
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(exc, match=match):
        call(x)
