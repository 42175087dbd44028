"""Permutation tests (calibration and power), bootstrap, noise floor, registry."""

from __future__ import annotations

import numpy as np
import pytest

from latentdist.distances import (
    available_distances,
    bootstrap,
    get_distance,
    mmd2,
    noise_floor,
    register_distance,
    two_sample_test,
    wasserstein,
)
from latentdist.distances import registry as reg


def _false_positive_rate(n_draws, seed):
    rng = np.random.default_rng(seed)
    rejections = 0
    for _ in range(n_draws):
        x, y = rng.normal(size=(12, 2)), rng.normal(size=(12, 2))
        res = two_sample_test(x, y, "mmd", n_permutations=99, seed=rng, progress=False)
        rejections += res.p_value <= 0.05
    return rejections / n_draws


def test_permutation_test_calibrated():
    """Under H0 the rate of p <= 0.05 is 5/100 exactly (p-values on the grid k/100); over 200 null
    draws the rate is Binomial(200, 0.05)/200, sd 0.015, so [0.02, 0.08] is about +-2 sd."""
    assert 0.02 <= _false_positive_rate(200, seed=11) <= 0.08


@pytest.mark.slow
def test_permutation_test_calibrated_tight():
    """1000 null draws: sd 0.0069, band [0.035, 0.065] is about +-2.2 sd."""
    assert 0.035 <= _false_positive_rate(1000, seed=12) <= 0.065


def test_permutation_power_grows_to_one():
    rng = np.random.default_rng(13)
    def power(n, shift):
        hits = 0
        for _ in range(20):
            x, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + np.array([shift, 0.0])
            hits += two_sample_test(x, y, n_permutations=99, seed=rng, progress=False).p_value <= 0.05
        return hits / 20
    low, high = power(8, 1.0), power(100, 1.0)
    assert high == 1.0 and low < high


def test_fast_kernel_path_equals_generic_path():
    """The pooled-Gram permutation path must give the statistic and null that calling mmd2 gives."""
    rng = np.random.default_rng(14)
    x, y = rng.normal(size=(15, 3)), rng.normal(size=(11, 3)) + 0.3
    fast = two_sample_test(x, y, "mmd", bandwidth=1.1, n_permutations=30, seed=5, progress=False)
    slow = two_sample_test(x, y, lambda a, b: mmd2(a, b, bandwidth=1.1), n_permutations=30, seed=5,
                           progress=False)
    assert fast.statistic == pytest.approx(slow.statistic, rel=1e-10)
    assert np.allclose(fast.null, slow.null, rtol=1e-9)
    assert fast.p_value == slow.p_value
    fast_v = two_sample_test(x, y, "energy", unbiased=False, n_permutations=10, progress=False)
    assert fast_v.statistic == pytest.approx(get_distance("energy", unbiased=False)(x, y), rel=1e-9)


def test_p_value_plus_one_and_generic_statistic():
    rng = np.random.default_rng(15)
    x = rng.normal(size=(10, 1))
    res = two_sample_test(x, x + 100.0, "w1", n_permutations=19, progress=False)
    assert res.p_value == pytest.approx(1 / 20)  # never 0
    assert len(res.null) == 19


def test_bootstrap_interval_and_reproducibility():
    rng = np.random.default_rng(16)
    x, y = rng.normal(size=(80, 1)), rng.normal(size=(80, 1)) + 1.0
    r1 = bootstrap(x, y, "w1", n_boot=60, seed=3, progress=False)
    r2 = bootstrap(x, y, "w1", n_boot=60, seed=3, progress=False)
    assert np.array_equal(r1.samples, r2.samples)
    assert r1.low < r1.value < r1.high and r1.std > 0
    assert r1.value == wasserstein(x, y, 1)
    assert r1.low < 1.0 < r1.high  # population W1 = 1


def test_noise_floor_shrinks_with_n_and_fields():
    x = np.random.default_rng(17).normal(size=(2000, 1))
    small = noise_floor(x, "w1", n=25, n_repeats=8, progress=False)
    big = noise_floor(x, "w1", n=1000, n_repeats=8, progress=False)
    assert small.n == 25 and len(small.values) == 8 and float(small) == small.mean
    assert big.mean < small.mean / 3  # W1 floor ~ n^-1/2 in 1-D: ratio sqrt(40) ~ 6
    with pytest.raises(ValueError, match="n"):
        noise_floor(x, n=1001)


def test_registry():
    assert set(available_distances()) >= {"w1", "w2", "sinkhorn", "sliced", "max_sliced", "mmd", "energy",
                                          "critic", "bures"}
    with pytest.raises(ValueError, match="w2"):
        get_distance("wasserstein2")
    with pytest.raises(ValueError, match="fixes"):
        get_distance("w2", p=3)
    with pytest.raises(TypeError, match="invalid arguments"):
        get_distance("mmd", bandwidht=1.0)
    with pytest.raises(TypeError):
        get_distance(3)
    fn = get_distance(lambda a, b, scale=1.0: scale * float(np.abs(a.mean() - b.mean())), scale=2.0)
    assert fn(np.zeros((2, 1)), np.ones((2, 1))) == 2.0
    register_distance("_test_mean_gap", lambda a, b: float(abs(a.mean() - b.mean())))
    try:
        assert "_test_mean_gap" in available_distances()
        with pytest.raises(ValueError, match="already registered"):
            register_distance("_test_mean_gap", lambda a, b: 0.0)
    finally:
        reg._REGISTRY.pop("_test_mean_gap")


def test_critic_distance_separates_and_is_reproducible():
    rng = np.random.default_rng(18)
    x = rng.normal(size=(200, 2))
    far = rng.normal(size=(200, 2)) + 2.0
    same = rng.normal(size=(200, 2))
    d = get_distance("critic", penalty="spectral", steps=150, width=32, progress=False)
    far_val, same_val = d(x, far), d(x, same)
    assert far_val > 1.0 and abs(same_val) < 0.3
    assert d(x, far) == far_val
    import torch

    state = torch.get_rng_state()
    d(x, same)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    assert far_val <= wasserstein(x, far, 1) + 0.3  # 1-Lipschitz critic: held-out IPM <= W1 + noise
