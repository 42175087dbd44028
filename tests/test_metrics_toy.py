"""Toy-distribution metrics: manifold error, mode coverage, distances with noise floors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from latentdist.data import make_dataset
from latentdist.metrics import distribution_distances, manifold_error, mode_coverage


def test_manifold_error_is_zero_on_the_noise_free_support():
    ds = make_dataset("circles", 300, seed=0)
    err = manifold_error(ds.x, ds)
    assert err["max"] < 1e-9 and err["mean"] < 1e-9


def test_manifold_error_of_a_known_offset():
    # Points of the unit-radius outer circle pushed radially outwards by 0.1 are 0.1 from the support
    # (the inner circle has radius 0.5, so it is never the nearer one).
    ds = make_dataset("circles", 400, seed=1)
    r = np.linalg.norm(ds.x, axis=1)
    outer = ds.x[r > 0.75]
    shifted = outer * (1.0 + 0.1 / np.linalg.norm(outer, axis=1, keepdims=True))
    err = manifold_error(torch.from_numpy(shifted), ds)
    for key in ("mean", "median", "q90", "max"):
        assert err[key] == pytest.approx(0.1, abs=1e-9)


def test_manifold_error_grows_with_noise():
    clean = make_dataset("swiss_roll", 300, seed=0)
    noisy = make_dataset("swiss_roll", 300, noise=0.3, seed=0)
    assert manifold_error(noisy.x, clean)["mean"] > 0.1 > manifold_error(clean.x, clean)["mean"]


def test_mode_coverage_by_hand():
    modes = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    std = 0.1  # 3 sigma = 0.3
    samples = np.concatenate(
        [
            np.full((50, 2), [0.0, 0.0]) + [0.2, 0.0],  # mode 0, inside 0.3
            np.full((30, 2), [10.0, 0.0]) + [0.0, 0.29],  # mode 1, inside
            np.full((19, 2), [5.0, 5.0]),  # between modes: off-mode
            np.full((1, 2), [0.0, 10.0]),  # mode 2: a single sample, 1% of 100
        ]
    )
    res = mode_coverage(samples, modes, std)
    # Threshold ceil(0.01 * 100) = 1: modes 0, 1 and 2 are hit, mode 3 not.
    assert res == {"coverage": 3 / 4, "quality": 81 / 100, "n_modes_hit": 3, "n_modes": 4}
    # Asking for 2% of samples drops the single-sample mode.
    assert mode_coverage(samples, modes, std, min_fraction=0.02)["n_modes_hit"] == 2
    # Shrinking the radius below 0.29 leaves only mode 0 (0.2) on-mode.
    narrow = mode_coverage(samples, modes, std, n_sigma=2.5)
    assert narrow["quality"] == 51 / 100 and narrow["n_modes_hit"] == 2


@given(seed=st.integers(0, 1000), k=st.integers(2, 10))
def test_mode_coverage_of_the_true_mixture(seed, k):
    ds = make_dataset("gaussian_mixture_ring", 200 * k, k=k, seed=seed)
    res = mode_coverage(ds.x, ds.modes, ds.mode_std)
    assert res["coverage"] == 1.0
    # In 2-D, P(|x - mu| <= 3 sigma) = 1 - exp(-4.5) = 0.989; 200k samples give sd <= 0.0074/sqrt(k).
    assert res["quality"] > 0.989 - 4 * np.sqrt(0.989 * 0.011 / (200 * k))


def test_mode_coverage_of_a_collapsed_generator():
    ds = make_dataset("gaussian_mixture_ring", 800, k=8, seed=0)
    collapsed = ds.x[ds.labels == 3]
    res = mode_coverage(collapsed, ds.modes, ds.mode_std)
    assert res["n_modes_hit"] == 1 and res["coverage"] == 1 / 8


def test_mode_coverage_per_mode_std():
    modes = np.array([[0.0], [10.0]])
    samples = np.array([[0.5], [10.5]])
    # Distance 0.5 from each mode: only the mode with 3 sigma >= 0.5 counts it.
    res = mode_coverage(samples, modes, np.array([0.1, 0.2]))
    assert res["quality"] == 0.5 and res["n_modes_hit"] == 1


def test_distribution_distances_report_value_and_floor():
    ds = make_dataset("gaussian_mixture_ring", 1200, seed=0)
    good = make_dataset("gaussian_mixture_ring", 600, seed=1).x
    bad = good * 0.5
    kw = dict(distances=("w2", "mmd"), n=300, n_repeats=6, seed=0, progress=False)
    res_good = distribution_distances(good, ds.x, **kw)
    res_bad = distribution_distances(bad, ds.x, **kw)
    for name in ("w2", "mmd"):
        assert set(res_good[name]) == {"value", "floor_mean", "floor_std", "n"}
        assert res_good[name]["n"] == 300
        # Same distribution: within 3 floor spreads of the floor; radius halved (W2 ~ 1): > 4 above.
        floor, spread = res_good[name]["floor_mean"], res_good[name]["floor_std"]
        assert abs(res_good[name]["value"] - floor) < 3 * spread
        assert res_bad[name]["value"] > floor + 4 * spread
    assert res_good == distribution_distances(good, ds.x, **kw)


def test_distribution_distances_seeds_stochastic_distances():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 3)), rng.normal(size=(200, 3))
    a = distribution_distances(x, y, ("sliced",), n_repeats=2, seed=3, progress=False)
    b = distribution_distances(x, y, ("sliced",), n_repeats=2, seed=3, progress=False)
    assert a == b


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda x, ds: manifold_error(x[:, :1], ds), ValueError, "samples must have 2 features"),
        (lambda x, ds: manifold_error(x, object()), TypeError, "manifold_distance"),
        (lambda x, ds: manifold_error(np.full_like(x, np.nan), ds), ValueError, "samples.*NaN"),
        (lambda x, ds: mode_coverage(x, ds.modes, 0.0), ValueError, "std must be > 0"),
        (lambda x, ds: mode_coverage(x, ds.modes, np.ones(3)), ValueError, "one entry per mode"),
        (lambda x, ds: mode_coverage(x, ds.modes[:, :1], 0.1), ValueError, "same number of features"),
        (lambda x, ds: mode_coverage(x, ds.modes, 0.1, n_sigma=-1), ValueError, "n_sigma"),
        (lambda x, ds: mode_coverage(x, ds.modes, 0.1, min_fraction=1.0), ValueError, "min_fraction"),
        (lambda x, ds: distribution_distances(x, x, ("nope",)), ValueError, "unknown distance"),
        (lambda x, ds: distribution_distances(x, x, ()), ValueError, "at least one"),
        (lambda x, ds: distribution_distances(x, x, ("mmd",), n=10_000), ValueError, "n must be <="),
        (lambda x, ds: distribution_distances(x, x[:3], ("mmd",)), ValueError, "at least 4"),
    ],
)
def test_bad_input_raises(call, exc, match):
    ds = make_dataset("gaussian_mixture_ring", 40, seed=0)
    with pytest.raises(exc, match=match):
        call(ds.x, ds)
