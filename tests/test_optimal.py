"""optimal_latent: the found latent mirrors the data and beats N(0, 1) at the same normalisation (R3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentdist.data import make_dataset
from latentdist.estimator import LatentDistanceResult
from latentdist.generators import LipschitzMLP
from latentdist.latents import Discrete, Gaussian, Latent, normalize
from latentdist.optimal import OptimalLatentResult, optimal_latent

# A2 set-up: two point masses at ±2, 2-Lipschitz generators. N(0, 1) pays D = 0.7375 (closed form);
# the optimal moment-normalised latent is ½δ₋₁ + ½δ₊₁ with D = 0 (g = 2 z).
FAMILY = LipschitzMLP(2.0, width=8, depth=2)
KW = dict(steps=300, n_restarts=1, distance_steps=300, distance_restarts=2, progress=False, seed=0)


@pytest.fixture(scope="module")
def two_points():
    return make_dataset("two_points", 4000, seed=0, a=2.0)


def _moment_ok(latent: Latent, n: int = 20000):
    z = latent.sample(n, seed=1).double()
    mean, spread = latent.moments()
    assert torch.allclose(mean, torch.zeros(1, dtype=torch.float64), atol=1e-6)
    assert abs(spread - latent.dim) < 1e-6
    return z.numpy().ravel()


def test_particles_mirror_two_clusters(two_points):
    res = optimal_latent(two_points, 1, FAMILY, "w1", parameterization="particles", n_particles=64, **KW)
    assert isinstance(res, OptimalLatentResult) and isinstance(res.distance, LatentDistanceResult)
    assert isinstance(res.latent.base, Discrete)
    z = _moment_ok(res.latent)
    # Two clusters, one per data point mass, each at the normalised position ±1. For N(0, 1) these
    # fractions would be 0.24 (near ±1) and 0.24 (in the gap). A few particles can stall in the gap,
    # where the pulls towards -2 and +2 balance (a saddle of the joint objective).
    assert np.mean(np.abs(np.abs(z) - 1.0) < 0.25) > 0.85, np.quantile(z, [0.1, 0.3, 0.5, 0.7, 0.9])
    assert np.mean(np.abs(z) < 0.3) < 0.1
    assert 0.35 < np.mean(z > 0) < 0.65
    assert res.distance.value < 0.7375 / 3, res.distance.summary()  # far below N(0,1)'s closed form
    assert list(res.history.columns) == ["step", "restart", "loss"] and len(res.search_losses) == 1


def test_mixture_mirrors_two_clusters(two_points):
    res = optimal_latent(two_points, 1, FAMILY, "w1", parameterization="mixture", n_components=2, **KW)
    z = _moment_ok(res.latent)
    assert np.mean(np.abs(z) < 0.3) < 0.1  # hardly any mass in the gap
    assert res.distance.value < 0.7375 / 2, res.distance.summary()


def test_encoder_latent_beats_gaussian(two_points):
    res = optimal_latent(two_points, 1, FAMILY, "w1", parameterization="encoder", encoder_width=8, **KW)
    assert res.encoder is not None
    z = _moment_ok(res.latent)
    assert np.mean(np.abs(z) < 0.3) < 0.1
    assert res.distance.value < 0.7375 / 2, res.distance.summary()


def test_cube_normalisation_and_determinism():
    x = np.concatenate([np.full((150, 1), -1.0), np.full((150, 1), 3.0)])
    kw = dict(parameterization="particles", normalization="cube", n_particles=16, steps=30, n_restarts=2,
              distance_steps=10, distance_restarts=1, progress=False, seed=3)
    a = optimal_latent(x, 1, FAMILY, "w1", **kw)
    low, high = a.latent.bounds()
    assert float(low.min()) >= -1 - 1e-9 and float(high.max()) <= 1 + 1e-9
    assert np.isclose(max(-float(low.min()), float(high.max())), 1.0)
    b = optimal_latent(x, 1, FAMILY, "w1", **kw)
    torch.testing.assert_close(a.latent.sample(50, seed=0), b.latent.sample(50, seed=0))
    assert a.distance.value == b.distance.value


def test_search_never_sees_the_evaluation_rows():
    """The re-estimate's held-out rows are exactly the rows the search's split held out."""
    from latentdist._seeding import spawn_seeds
    from latentdist.estimator import estimate_split

    x = np.arange(100, dtype=float).reshape(-1, 1)
    _, est_seed = spawn_seeds(0, 2)
    train, held = estimate_split(x, 0.2, est_seed)
    assert not set(train.ravel()) & set(held.ravel())
    res = optimal_latent(x, 1, FAMILY, "w1", parameterization="encoder", steps=5, n_restarts=1,
                         distance_steps=2, distance_restarts=1, progress=False, seed=0)
    # The encoder latent is the push-forward of the TRAINING rows only.
    assert res.latent.base.codes.shape[0] == train.shape[0]
    # ... and the re-estimate holds out exactly the rows the search held out.
    assert res.distance.config["n_held"] == held.shape[0]


def test_encoder_restarts_and_seeds_start_from_different_weights():
    """Regression: the encoder MLP was built with seed=0 whatever the restart or seed."""
    x = np.random.default_rng(0).normal(size=(80, 2))
    kw = dict(parameterization="encoder", encoder_width=4, steps=1, lr=1e-12, n_restarts=1, distance_steps=1,
              distance_restarts=1, progress=False)

    def encoder_weights(seed):
        return [p.detach() for p in optimal_latent(x, 1, FAMILY, "w2", seed=seed, **kw).encoder.parameters()]

    first, again, other = encoder_weights(0), encoder_weights(0), encoder_weights(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))  # same seed, same weights
    assert not any(torch.allclose(a, b) for a, b in zip(first, other, strict=True))
    from latentdist.optimal import _make_parameterization

    encoders = _make_parameterization("encoder", 1, 2, "moment", 8, 2, 4, [11, 12])  # two restarts
    assert not torch.allclose(encoders.net(0)[0].weight, encoders.net(1)[0].weight)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"parameterization": "flow"}, ValueError, "parameterization"),
        ({"normalization": "sphere"}, ValueError, "normalization"),
        ({"parameterization": "mixture", "normalization": "cube"}, ValueError, "cube"),
        ({"n_particles": 1}, ValueError, "n_particles"),
        ({"distance": "nope"}, ValueError, "nope"),
        ({"holdout": 1.5}, ValueError, "holdout"),
    ],
)
def test_bad_input(kwargs, exc, match):
    x = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(exc, match=match):
        optimal_latent(x, 1, FAMILY, steps=2, progress=False, **kwargs)


def test_gaussian_reference_is_worse_at_same_normalisation(two_points):
    """The comparison the search is for: N(0,1) moment-normalised stays near 0.7375 at L = 2."""
    from latentdist.estimator import latent_data_distance

    ref = latent_data_distance(normalize(Gaussian(1), "moment"), two_points, FAMILY, "w1", steps=300,
                               n_restarts=2, progress=False, seed=0)
    assert ref.value > 0.6
