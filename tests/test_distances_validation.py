"""Bad input raises ValueError/TypeError naming the argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentdist.distances import (
    bootstrap,
    get_distance,
    mmd2,
    noise_floor,
    sinkhorn_divergence,
    two_sample_test,
    wasserstein,
)

NAMES = ["w1", "w2", "sinkhorn", "sliced", "max_sliced", "mmd", "energy", "critic", "bures"]
GOOD = np.random.default_rng(0).normal(size=(6, 2))


@pytest.mark.parametrize("name", NAMES)
def test_bad_samples(name):
    fn = get_distance(name)
    with pytest.raises(ValueError, match="features"):
        fn(GOOD, np.zeros((6, 3)))
    bad = GOOD.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        fn(bad, GOOD)
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match="y contains NaN or inf"):
        fn(GOOD, bad)
    with pytest.raises(ValueError, match="at least"):
        fn(GOOD[:1], GOOD)
    with pytest.raises(ValueError, match="x must be 2-D"):
        fn(GOOD[0], GOOD)
    with pytest.raises(TypeError, match="x must hold real numbers"):
        fn(np.array([["a", "b"], ["c", "d"]]), GOOD)
    with pytest.raises(TypeError, match="real numbers"):
        fn(torch.ones(6, 2, dtype=torch.complex64), GOOD)


@pytest.mark.parametrize("name", ["w1", "w2", "sinkhorn", "sliced", "max_sliced"])
def test_bad_weights(name):
    fn = get_distance(name)
    with pytest.raises(ValueError, match="x_weights must be non-negative"):
        fn(GOOD, GOOD, x_weights=np.array([1, -1, 1, 1, 1, 1.0]))
    with pytest.raises(ValueError, match="y_weights must not be all zero"):
        fn(GOOD, GOOD, y_weights=np.zeros(6))
    with pytest.raises(ValueError, match="x_weights must have length 6"):
        fn(GOOD, GOOD, x_weights=np.ones(5))
    with pytest.raises(ValueError, match="x_weights contains NaN"):
        fn(GOOD, GOOD, x_weights=np.full(6, np.nan))


def test_bad_options():
    with pytest.raises(ValueError, match="unknown kernel 'rbf'"):
        mmd2(GOOD, GOOD, kernel="rbf")
    with pytest.raises(ValueError, match="unknown bandwidth"):
        mmd2(GOOD, GOOD, bandwidth="scott")
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        mmd2(GOOD, GOOD, bandwidth=0.0)
    with pytest.raises(ValueError, match="unbiased=False"):
        mmd2(GOOD, GOOD, x_weights=np.ones(6))
    with pytest.raises(ValueError, match="unknown backend 'keops'"):
        sinkhorn_divergence(GOOD, GOOD, backend="keops")
    with pytest.raises(ValueError, match="blur must be > 0"):
        sinkhorn_divergence(GOOD, GOOD, blur=0.0)
    with pytest.raises(ValueError, match="p must be >= 1"):
        wasserstein(GOOD, GOOD, p=0.5)
    with pytest.raises(TypeError, match="p must be a real number"):
        wasserstein(GOOD, GOOD, p="2")
    with pytest.raises(ValueError, match="unknown penalty"):
        get_distance("critic", penalty="clip")(GOOD, GOOD)
    with pytest.raises(ValueError, match="batch size"):
        sinkhorn_divergence(np.zeros((2, 5, 2)), np.zeros((3, 5, 2)))
    with pytest.raises(ValueError, match="must both be 2-D"):
        sinkhorn_divergence(np.zeros((2, 5, 2)), np.zeros((5, 2)))
    with pytest.raises(TypeError, match="n_boot must be an integer"):
        bootstrap(GOOD, GOOD, n_boot=2.5)
    with pytest.raises(ValueError, match="alpha"):
        bootstrap(GOOD, GOOD, alpha=1.5)
    with pytest.raises(ValueError, match="unknown distance"):
        noise_floor(GOOD, "w3")
    with pytest.raises(ValueError, match="n_permutations must be >= 1"):
        two_sample_test(GOOD, GOOD, n_permutations=0)
    with pytest.raises(TypeError, match="unexpected arguments"):
        two_sample_test(GOOD, GOOD, "mmd", kernal="gaussian")
    with pytest.raises(ValueError, match="unknown kernel"):
        two_sample_test(GOOD, GOOD, "mmd", kernel="rbf")
