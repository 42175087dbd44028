"""Latent priors (GMM, KDE, RealNVP flow) and GenerativePipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from scipy.special import logsumexp
from sklearn.datasets import make_moons

from latentdist.latents import Empirical, Gaussian, Latent, Uniform
from latentdist.train import (
    FlowPrior,
    GenerativePipeline,
    GMMPrior,
    KDEPrior,
    fit_prior,
    prior_parameter_count,
)


def _moons(n: int, seed: int) -> np.ndarray:
    return make_moons(n, noise=0.05, random_state=seed)[0]


@pytest.fixture(scope="module")
def flow_on_moons():
    return FlowPrior(n_layers=6, hidden=48, steps=600, lr=3e-3, seed=0, progress=False).fit(_moons(1500, 0))


def _integrate_1d(prior, low: float, high: float, n: int = 4001) -> float:
    grid = np.linspace(low, high, n)
    return float(np.trapezoid(np.exp(prior.log_prob(grid[:, None])), grid))


def _integrate_2d(prior, low: float, high: float, n: int = 301) -> float:
    g = np.linspace(low, high, n)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    p = np.exp(prior.log_prob(np.stack([xx.ravel(), yy.ravel()], 1))).reshape(n, n)
    return float(np.trapezoid(np.trapezoid(p, g, axis=1), g))


# --------------------------------------------------------------------------- GMM


def test_gmm_recovers_a_known_two_component_density():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(-3, 0.5, 4000), rng.normal(2, 1.0, 4000)])[:, None]
    prior = GMMPrior(2, seed=0).fit(z)
    grid = np.linspace(-5, 5, 41)[:, None]
    truth = np.log(0.5 * stats.norm.pdf(grid, -3, 0.5) + 0.5 * stats.norm.pdf(grid, 2, 1.0)).ravel()
    assert np.max(np.abs(prior.log_prob(grid) - truth)) < 0.1
    assert abs(_integrate_1d(prior, -10, 10) - 1) < 1e-4
    mean, spread = prior.moments()
    assert abs(float(mean[0]) - z.mean()) < 0.05 and abs(spread - z.var()) / z.var() < 0.02


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_gmm_sampling_matches_its_density_and_counts(cov):
    rng = np.random.default_rng(1)
    z = np.concatenate([rng.normal([0, 0], [1.0, 0.3], (500, 2)), rng.normal([4, 1], [0.5, 0.5], (500, 2))])
    prior = GMMPrior(2, cov, seed=0).fit(z)
    s = prior.sample(20000, seed=0).double()
    mean, spread = prior.moments()
    assert torch.allclose(s.mean(0).double(), mean, atol=0.05)
    assert abs(float(((s - s.mean(0)) ** 2).sum(1).mean()) - spread) / spread < 0.03
    assert abs(_integrate_2d(prior, -6, 9) - 1) < 2e-3
    per_cov = {"full": 2 * 3, "tied": 3, "diag": 2 * 2, "spherical": 2}[cov]
    assert prior.n_parameters == 1 + 2 * 2 + per_cov


def test_gmm_is_a_latent_and_seeded():
    prior = fit_prior(np.random.default_rng(0).normal(size=(200, 3)), "gmm", n_components=3, seed=1)
    assert isinstance(prior, Latent) and prior.dim == 3
    assert torch.equal(prior.sample(10, seed=5), prior.sample(10, seed=5))
    assert not torch.equal(prior.sample(10, seed=5), prior.sample(10, seed=6))
    again = GMMPrior(3, seed=1).fit(np.random.default_rng(0).normal(size=(200, 3)))
    assert torch.equal(again.means, prior.means)


# --------------------------------------------------------------------------- KDE


@given(
    pts=st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=20),
    h=st.floats(0.05, 3.0),
    q=st.floats(-8, 8, allow_nan=False),
)
def test_kde_log_prob_equals_the_kernel_sum(pts, h, q):
    z = np.asarray(pts)[:, None]
    prior = KDEPrior(h).fit(z)
    direct = logsumexp(stats.norm.logpdf(q, loc=z.ravel(), scale=h)) - np.log(len(pts))
    assert prior.log_prob([[q]])[0] == pytest.approx(direct, rel=1e-9, abs=1e-9)


def test_kde_integrates_to_one_and_rules():
    z = np.random.default_rng(0).normal(size=(300, 1))
    for rule, factor in (("scott", 300 ** (-1 / 5)), ("silverman", (300 * 3 / 4) ** (-1 / 5))):
        prior = KDEPrior(rule).fit(z)
        assert prior.bandwidth_ == pytest.approx(z.std(ddof=1) * factor)
        assert abs(_integrate_1d(prior, -8, 8) - 1) < 1e-6


def test_kde_samples_have_the_stated_moments_and_seed():
    z = np.random.default_rng(2).uniform(-1, 1, size=(400, 2))
    prior = KDEPrior(0.3).fit(z)
    s = prior.sample(40000, seed=0)
    mean, spread = prior.moments()
    assert torch.allclose(s.double().mean(0), mean, atol=0.02)
    assert abs(float(((s.double() - mean) ** 2).sum(1).mean()) - spread) / spread < 0.02
    assert torch.equal(prior.sample(7, seed=3), prior.sample(7, seed=3))
    assert prior.n_parameters == 400 * 2 + 1


# --------------------------------------------------------------------------- flow


def test_flow_is_a_normalised_density(flow_on_moons):
    assert abs(_integrate_2d(flow_on_moons, -4, 4) - 1) < 0.02


def test_flow_beats_a_single_gaussian_on_held_out_moons(flow_on_moons):
    train, test = _moons(1500, 0), _moons(1000, 1)
    gauss = GMMPrior(1, seed=0).fit(train)
    flow_ll = flow_on_moons.log_prob(test).mean()
    gauss_ll = gauss.log_prob(test).mean()
    assert flow_ll > gauss_ll + 0.5, (flow_ll, gauss_ll)


def test_flow_sampling_is_seeded_and_matches_the_data(flow_on_moons):
    a, b = flow_on_moons.sample(2000, seed=0), flow_on_moons.sample(2000, seed=0)
    assert torch.equal(a, b)
    assert not torch.equal(a, flow_on_moons.sample(2000, seed=1))
    # Most flow samples sit near the moons: within 0.25 of some data point.
    data = _moons(3000, 2)
    d = np.sqrt(((a.numpy()[:, None] - data[None]) ** 2).sum(-1)).min(1)
    assert (d < 0.25).mean() > 0.9


def test_flow_fit_is_deterministic():
    z = _moons(300, 0)
    a = FlowPrior(n_layers=2, hidden=16, steps=30, seed=4, progress=False).fit(z)
    b = FlowPrior(n_layers=2, hidden=16, steps=30, seed=4, progress=False).fit(z)
    assert a.loss_history_ == b.loss_history_
    assert np.array_equal(a.log_prob(z), b.log_prob(z))


# --------------------------------------------------------------------------- pipeline


def test_pipeline_samples_and_reports_both_parts():
    prior = GMMPrior(2, seed=0).fit(np.random.default_rng(0).normal(size=(100, 3)))
    dec = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 784))
    dec.train()
    pipe = GenerativePipeline(prior, dec, output_shape=(1, 28, 28), batch_size=7)
    x = pipe.sample(20, seed=1)
    assert x.shape == (20, 1, 28, 28)
    assert torch.equal(x, pipe(20, seed=1))  # decoder in eval mode: dropout off, reproducible
    assert dec.training  # mode restored
    counts = pipe.param_counts()
    assert counts == {"prior": prior.n_parameters, "decoder": 3 * 8 + 8 + 8 * 784 + 784,
                      "total": prior.n_parameters + 3 * 8 + 8 + 8 * 784 + 784}


def test_prior_parameter_count_of_plain_latents():
    assert prior_parameter_count(Gaussian(3)) == 0
    assert prior_parameter_count(Uniform(2)) == 0
    assert prior_parameter_count(Gaussian(2, mean=[1.0, 0.0])) == 2 + 3
    assert prior_parameter_count(Empirical(np.zeros((5, 2)))) == 10


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("make", "err", "match"),
    [
        (lambda: GMMPrior(0), ValueError, "n_components"),
        (lambda: GMMPrior(2, "banana"), ValueError, "covariance_type"),
        (lambda: KDEPrior(-1.0), ValueError, "bandwidth"),
        (lambda: KDEPrior("wide"), ValueError, "bandwidth"),
        (lambda: FlowPrior(n_layers=0), ValueError, "n_layers"),
        (lambda: fit_prior(np.zeros((5, 2)), "vae"), ValueError, "kind"),
        (lambda: GMMPrior(2).fit(np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]])), ValueError, "NaN"),
        (lambda: GMMPrior(3).fit(np.zeros((2, 2))), ValueError, "z needs at least 3"),
        (lambda: KDEPrior().fit(np.zeros(5)), ValueError, "2-D"),
        (lambda: FlowPrior(progress=False).fit(np.zeros((10, 1))), ValueError, "at least 2 columns"),
        (lambda: GMMPrior(2).sample(3), ValueError, "not fitted"),
        (lambda: KDEPrior(0.5).fit(np.zeros((4, 2))).log_prob(np.zeros((3, 3))), ValueError, "2 features"),
        (lambda: KDEPrior(0.5).fit(np.array([["a", "b"]])), TypeError, "z"),
        (lambda: GenerativePipeline(object(), torch.nn.Linear(2, 2)), TypeError, "prior"),
        (lambda: GenerativePipeline(Gaussian(2), "decoder"), TypeError, "decoder"),
    ],
)
def test_bad_input(make, err, match):
    with pytest.raises(err, match=match):
        make()
