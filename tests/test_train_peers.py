"""VAE, two-stage VAE, RAE and WAE-MMD trainers: objectives against closed forms, frozen first stage,
regulariser effects, determinism, bad input, and an MNIST smoke test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from latentdist.generators import MLP, ConvDecoder
from latentdist.train.nets import ConvEncoder, MLPEncoder
from latentdist.train.rae import rae_loss, train_rae
from latentdist.train.vae import (
    SecondStagePrior,
    VAEResult,
    gaussian_kl,
    train_two_stage_vae,
    train_vae,
    vae_loss,
)
from latentdist.train.wae import imq_bandwidth, train_wae, wae_loss


@pytest.fixture(scope="module")
def x():
    # 64 tiny "images" in [0, 1] with structure (two blobs), flattened to 6 pixels
    g = torch.Generator().manual_seed(0)
    base = torch.rand(2, 6, generator=g)
    return (base[torch.arange(64) % 2] + 0.1 * torch.randn(64, 6, generator=g)).clamp(0, 1)


def _sig_dec(d: int, out: int = 6, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, out), nn.Sigmoid())


def _snapshot(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


KW = dict(steps=6, batch_size=16, progress=False, log_every=2)


# ---------------------------------------------------------------- VAE


def test_gaussian_kl_matches_closed_form_and_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(7, 3, generator=g,
                                                                                   dtype=torch.float64)
    ours = gaussian_kl(mu, logvar)
    # closed form written out with numpy, coordinate by coordinate
    m, s2 = mu.numpy(), np.exp(logvar.numpy())
    closed = 0.5 * np.sum(m**2 + s2 - 1.0 - np.log(s2), axis=1)
    np.testing.assert_allclose(ours.numpy(), closed, rtol=1e-12)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ref = torch.distributions.kl_divergence(q, p).sum(1)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-12)
    assert torch.all(ours > 0)  # non-zero (mu, logvar) give strictly positive KL


def test_vae_loss_terms_match_their_definitions(x):
    enc, dec = nn.Linear(6, 4), _sig_dec(2)
    out = vae_loss(enc, dec, x, torch.Generator().manual_seed(3), latent_dim=2, beta=0.7)
    mu, logvar = enc(x)[:, :2], enc(x)[:, 2:]
    assert torch.allclose(out["kl"], gaussian_kl(mu, logvar).mean())
    # the same noise draw gives the same z: rebuild the Bernoulli log-likelihood with torch.distributions
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
    probs = dec(mu + (0.5 * logvar).exp() * eps)
    nll = -torch.distributions.Bernoulli(probs=probs, validate_args=False).log_prob(x).sum(1).mean()
    assert torch.allclose(out["recon"], nll, rtol=1e-5)
    assert torch.allclose(out["loss"], out["recon"] + 0.7 * out["kl"])


def test_vae_gaussian_likelihood_matches_normal_log_prob(x):
    enc, dec = nn.Linear(6, 4), nn.Linear(2, 6)
    lg = torch.tensor(-0.4)
    out = vae_loss(enc, dec, x, torch.Generator().manual_seed(3), latent_dim=2, log_gamma=lg)
    mu, logvar = enc(x)[:, :2], enc(x)[:, 2:]
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
    mean = dec(mu + (0.5 * logvar).exp() * eps)
    nll = -torch.distributions.Normal(mean, (0.5 * lg).exp()).log_prob(x).sum(1).mean()
    assert torch.allclose(out["recon"], nll, rtol=1e-5)


def test_train_vae_is_deterministic_and_logs_its_terms(x):
    a = train_vae(x, MLPEncoder(width=8, depth=1, latent_dim=2), _sig_dec(2), seed=4, **KW)
    b = train_vae(x, MLPEncoder(width=8, depth=1, latent_dim=2), _sig_dec(2), seed=4, **KW)
    assert isinstance(a, VAEResult)
    assert {"loss", "recon", "kl", "mse"} <= set(a.history.columns)
    assert a.history.equals(b.history)
    assert torch.equal(a.encode(x), b.encode(x))
    mu, logvar = a.encode_stats(x)
    assert mu.shape == logvar.shape == (64, 2)
    assert a.reconstruct(x).shape == x.shape
    c = train_vae(x, MLPEncoder(width=8, depth=1, latent_dim=2), _sig_dec(2), seed=5, **KW)
    assert not a.history.equals(c.history)


def test_vae_elbo_training_lowers_the_loss(x):
    res = train_vae(x, MLPEncoder(width=16, depth=1, latent_dim=2), _sig_dec(2), seed=0, steps=150,
                    batch_size=32, lr=1e-2, progress=False, log_every=10)
    h = res.history["loss"].to_numpy()
    assert h[-3:].mean() < h[:3].mean()


# ---------------------------------------------------------------- two-stage VAE


def test_second_stage_leaves_the_first_stage_bit_identical(x):
    first = train_vae(x, MLPEncoder(width=8, depth=1, latent_dim=2), _sig_dec(2), seed=1, **KW)
    enc0, dec0 = _snapshot(first.encoder), _snapshot(first.decoder)
    two = train_two_stage_vae(first, x, MLPEncoder(width=8, depth=1, latent_dim=2), MLP(width=8, depth=1),
                              seed=2, lr=1e-2, **KW)
    for before, module in ((enc0, first.encoder), (dec0, first.decoder)):
        after = module.state_dict()
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) for k in before)
    # ... while the second stage did move: its decoder differs from a fresh build with the same seed
    assert two.second.history["loss"].notna().all()
    assert "log_gamma" in two.second.history
    assert two.history["log_gamma"].iloc[-1] != 0.0
    z = two.prior.sample(11, seed=0)
    assert z.shape == (11, 2) and torch.equal(z, two.prior.sample(11, seed=0))
    assert two.prior.n_parameters == sum(p.numel() for p in two.second.decoder.parameters()) + 1


def test_second_stage_prior_and_bad_input(x):
    first = train_vae(x, MLPEncoder(width=8, depth=1, latent_dim=2), _sig_dec(2), seed=1, **KW)
    with pytest.raises(TypeError, match="first must be a VAEResult"):
        train_two_stage_vae("vae", x, MLPEncoder(latent_dim=2), MLP(width=8))
    with pytest.raises(ValueError, match="likelihood"):
        train_two_stage_vae(first, x, MLPEncoder(latent_dim=2), MLP(width=8), likelihood="bernoulli", **KW)
    with pytest.raises(TypeError, match="decoder"):
        SecondStagePrior("net", 2, 2)


# ---------------------------------------------------------------- RAE


def _decoder_grads(loss: torch.Tensor, dec: nn.Module) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, list(dec.parameters())))


@pytest.mark.parametrize("regulariser", ["gp", "l2"])
def test_rae_regulariser_changes_the_decoder_gradient(x, regulariser):
    enc, dec = nn.Linear(6, 2), _sig_dec(2)
    norms = {}
    for lam in (0.0, 0.5):
        out = rae_loss(enc, dec, x, torch.Generator().manual_seed(0), beta=0.1, lam=lam,
                       regulariser=regulariser)
        grads = _decoder_grads(out["loss"], dec)
        norms[lam] = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
        if regulariser == "l2" and lam > 0:
            base = _decoder_grads(rae_loss(enc, dec, x, torch.Generator().manual_seed(0), beta=0.1, lam=0.0,
                                           regulariser="l2")["loss"], dec)
            # d/dθ λ Σθ² = 2λθ exactly
            for g, g0, p in zip(grads, base, dec.parameters(), strict=True):
                assert torch.allclose(g - g0, 2 * lam * p.detach(), atol=1e-6)
    assert abs(norms[0.5] - norms[0.0]) > 1e-3 * norms[0.0]


def test_rae_gp_estimates_the_jacobian_frobenius_norm():
    # g(z) = sigmoid(Wz) at z = 0 has J = W / 4, so E ||J^T v||^2 = ||W||_F^2 / 16
    from latentdist.train.rae import _decoder_jacobian_sq

    torch.manual_seed(0)
    lin = nn.Linear(3, 200, bias=False)
    dec = nn.Sequential(lin, nn.Sigmoid())
    z = torch.zeros(4000, 3, requires_grad=True)
    est = _decoder_jacobian_sq(dec, z, dec(z), torch.Generator().manual_seed(1))
    exact = float((lin.weight.detach() * 0.25).pow(2).sum())
    assert abs(float(est.detach()) - exact) < 0.05 * exact


def test_train_rae_runs_and_is_deterministic(x):
    a = train_rae(x, MLPEncoder(width=8, depth=1, latent_dim=2), _sig_dec(2), seed=3, **KW)
    b = train_rae(x, MLPEncoder(width=8, depth=1, latent_dim=2), _sig_dec(2), seed=3, **KW)
    assert {"loss", "recon", "latent_l2", "reg"} <= set(a.history.columns)
    assert a.history.equals(b.history)
    with pytest.raises(ValueError, match="regulariser"):
        train_rae(x, MLPEncoder(latent_dim=2), _sig_dec(2), regulariser="sn", **KW)


# ---------------------------------------------------------------- WAE


def _imq_mmd2_direct(z: np.ndarray, u: np.ndarray, h2: float) -> float:
    def k(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return 1.0 / np.sqrt(1.0 + d2 / h2)

    n, m = len(z), len(u)
    kzz, kuu = k(z, z), k(u, u)
    return ((kzz.sum() - np.trace(kzz)) / (n * (n - 1)) + (kuu.sum() - np.trace(kuu)) / (m * (m - 1))
            - 2.0 * k(z, u).mean())


def test_wae_mmd_term_matches_a_direct_computation(x):
    enc, dec = nn.Linear(6, 3), _sig_dec(3)
    out = wae_loss(enc, dec, x, torch.Generator().manual_seed(7), lam=2.0)
    z = enc(x).detach().double().numpy()
    u = torch.randn(64, 3, generator=torch.Generator().manual_seed(7)).double().numpy()
    direct = _imq_mmd2_direct(z, u, imq_bandwidth(3) ** 2)
    assert math.isclose(float(out["mmd"]), direct, rel_tol=1e-4, abs_tol=1e-7)
    assert torch.allclose(out["loss"], out["recon"] + 2.0 * out["mmd"])
    # the penalty is differentiable with respect to the encoder
    (g,) = torch.autograd.grad(out["mmd"], enc.weight)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_wae_penalty_pulls_codes_towards_the_prior(x):
    kw = dict(seed=0, steps=120, batch_size=32, lr=1e-2, progress=False, log_every=10)
    strong = train_wae(x, MLPEncoder(width=16, depth=1, latent_dim=2), _sig_dec(2), lam=100.0, **kw)
    none = train_wae(x, MLPEncoder(width=16, depth=1, latent_dim=2), _sig_dec(2), lam=0.0, **kw)
    assert strong.history["mmd"].iloc[-3:].mean() < none.history["mmd"].iloc[-3:].mean()


@pytest.mark.parametrize("trainer", [train_vae, train_rae, train_wae])
def test_early_stopping_on_the_validation_objective(x, trainer):
    kw = dict(seed=0, steps=40, batch_size=16, lr=1e-2, progress=False, log_every=5)
    res = trainer(x[:48], MLPEncoder(width=8, depth=1, latent_dim=2), _sig_dec(2), val_data=x[48:],
                  validate_every=5, patience=2, **kw)
    h = res.history
    assert "val_loss" in h and h["val_loss"].notna().any()
    best = h["val_loss"].min()
    assert res.history.attrs["best_val_loss"] == pytest.approx(best)
    with pytest.raises(ValueError, match="val_data"):
        trainer(x, MLPEncoder(latent_dim=2), _sig_dec(2), patience=2, **kw)
    with pytest.raises(ValueError, match="val_data"):
        trainer(x, MLPEncoder(latent_dim=2), _sig_dec(2), val_data=x[:, :3], **kw)


def test_peers_bad_input(x):
    with pytest.raises(ValueError, match="beta"):
        train_vae(x, MLPEncoder(latent_dim=2), _sig_dec(2), beta=-1.0, **KW)
    with pytest.raises(ValueError, match="likelihood"):
        train_vae(x, MLPEncoder(latent_dim=2), _sig_dec(2), likelihood="poisson", **KW)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_vae(x * 3, MLPEncoder(latent_dim=2), _sig_dec(2), **KW)
    with pytest.raises(ValueError, match="sigmoid"):
        train_wae(x, MLPEncoder(latent_dim=2), MLP(width=8), **KW)
    with pytest.raises(ValueError, match="batch_size"):
        train_wae(x, MLPEncoder(latent_dim=2), _sig_dec(2), steps=2, batch_size=1, progress=False)
    with pytest.raises(ValueError, match="lam"):
        train_rae(x, MLPEncoder(latent_dim=2), _sig_dec(2), lam=-0.1, **KW)
    with pytest.raises(ValueError, match="latent_dim"):
        train_vae(x, nn.Linear(6, 4), _sig_dec(2), **KW)
    with pytest.raises(ValueError, match="encoder must return"):
        train_vae(x, nn.Linear(6, 3), _sig_dec(2), latent_dim=2, **KW)


# ---------------------------------------------------------------- MNIST


@pytest.mark.slow
def test_peers_mnist_smoke():
    from latentdist.data import load_mnist

    imgs, _ = load_mnist("train", n=512, seed=0)
    imgs = torch.as_tensor(imgs, dtype=torch.float32)
    enc, dec = ConvEncoder(channels=4, latent_dim=4), ConvDecoder(channels=4)
    kw = dict(steps=40, batch_size=64, lr=2e-3, progress=False, log_every=10, seed=0)
    vae = train_vae(imgs, enc, dec, **kw)
    two = train_two_stage_vae(vae, imgs, MLPEncoder(width=32, latent_dim=4), MLP(width=32), **kw)
    rae = train_rae(imgs, enc, dec, **kw)
    wae = train_wae(imgs, enc, dec, **kw)
    for res in (vae, rae, wae):
        h = res.history
        assert h["loss"].iloc[-1] < h["loss"].iloc[0]
        rec = res.reconstruct(imgs[:8])
        assert rec.shape == (8, 1, 28, 28) and float(rec.min()) >= 0 and float(rec.max()) <= 1
    assert two.prior.sample(16, seed=0).shape == (16, 4)
