"""Tests of the lead's generator families (latentdist.generators) and latents (latentdist.latents)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from latentdist.generators import MLP, ConvDecoder, Linear, LipschitzMLP, MaxMin, NormConstrainedLinear
from latentdist.latents import (
    Discrete,
    Empirical,
    Gaussian,
    Mixture,
    Pushforward,
    Uniform,
    make_latent,
    normalize,
    normalize_samples,
)

# ------------------------------------------------------------------------------------------- generators


def test_build_is_deterministic_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = MLP(width=8).build(2, 3, seed=4), MLP(width=8).build(2, 3, seed=4)
    c = MLP(width=8).build(2, 3, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_at_capacity_and_label():
    fams = MLP(depth=3).at([4, 16])
    assert [f.capacity for f in fams] == [4, 16] and all(f.depth == 3 for f in fams)
    deep = MLP(width=8).at([1, 2, 3], param="depth")
    assert [f.capacity for f in deep] == [1, 2, 3]
    assert fams[0].label() == "MLP(width=4, depth=3, activation=relu)"
    assert Linear().capacity == 1
    with pytest.raises(ValueError, match="param"):
        MLP().at([1], param="height")
    with pytest.raises(ValueError, match="values"):
        MLP().at([])


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: MLP(width=0), ValueError, "width"),
        (lambda: MLP(activation="swish"), ValueError, "activation"),
        (lambda: LipschitzMLP(0.0), ValueError, "lipschitz"),
        (lambda: LipschitzMLP(1.0, width=5), ValueError, "even"),
        (lambda: ConvDecoder(channels=0), ValueError, "channels"),
        (lambda: MLP().build(0, 2), ValueError, "in_dim"),
        (lambda: ConvDecoder(2).build(2, 10), ValueError, "784"),
    ],
)
def test_family_bad_input(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_mlp_shapes_and_conv_decoder_images():
    assert MLP(width=8, depth=0).build(3, 2)(torch.zeros(5, 3)).shape == (5, 2)
    with torch.no_grad():
        img = ConvDecoder(2).build(4, 784)(torch.randn(3, 4))
    assert img.shape == (3, 1, 28, 28) and float(img.min()) >= 0 and float(img.max()) <= 1


@given(L=st.floats(0.1, 10), seed=st.integers(0, 1000), width=st.sampled_from([2, 4, 8]),
       depth=st.integers(1, 3))
def test_lipschitz_mlp_bound_holds_on_random_pairs(L, seed, width, depth):
    net = LipschitzMLP(L, width=width, depth=depth).build(2, 2, seed=seed)
    with torch.no_grad():  # make weights large so the normalisation is active
        for m in net:
            if isinstance(m, NormConstrainedLinear):
                m.weight.mul_(5.0)
    bound = net.lipschitz_bound()
    assert bound <= L * (1 + 1e-5)
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.randn(256, 2, generator=gen), torch.randn(256, 2, generator=gen)
    with torch.no_grad():
        ratio = (net(a) - net(b)).norm(dim=1) / (a - b).norm(dim=1)
    assert float(ratio.max()) <= bound * (1 + 1e-4)


def test_lipschitz_mlp_represents_clip_exactly():
    """docs/theory.md A2: clip(L z, -a, a) is in LipschitzMLP(L) (MaxMin, spectral norms <= 1)."""
    L, a = 2.0, 2.0
    net = LipschitzMLP(L, width=2, depth=2).build(1, 1)
    lin = [m for m in net if isinstance(m, NormConstrainedLinear)]
    with torch.no_grad():
        lin[0].weight.copy_(torch.tensor([[1.0], [0.0]]))
        lin[0].bias.copy_(torch.tensor([0.0, a]))  # (u, a) -> MaxMin -> (max, min(u, a))
        lin[1].weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
        lin[1].bias.copy_(torch.tensor([0.0, -a]))  # (min(u, a), -a) -> MaxMin -> max(min(u, a), -a)
        lin[2].weight.copy_(torch.tensor([[1.0, 0.0]]))
        lin[2].bias.zero_()
    z = torch.linspace(-3, 3, 101).reshape(-1, 1)
    torch.testing.assert_close(net(z), torch.clamp(L * z, -a, a))
    assert net.lipschitz_bound() <= L + 1e-6


def test_maxmin_sorts_pairs():
    out = MaxMin()(torch.tensor([[1.0, 3.0, -2.0, -5.0]]))
    assert out.tolist() == [[3.0, 1.0, -2.0, -5.0]]


# ---------------------------------------------------------------------------------------------- latents


@pytest.mark.parametrize(
    "latent",
    [Gaussian(2), Uniform(3, 0.0, 4.0), Discrete([[0.0], [2.0], [5.0]], weights=[1, 2, 1]),
     Empirical(np.arange(12.0).reshape(6, 2)), Mixture([Gaussian(1, mean=[-3.0]), Uniform(1, 1.0, 2.0)])],
)
def test_sample_shape_dtype_determinism(latent):
    a, b, c = latent.sample(50, seed=0), latent.sample(50, seed=0), latent.sample(50, seed=1)
    assert a.shape == (50, latent.dim) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    gens = [torch.Generator().manual_seed(s) for s in (3, 4, 5)]
    each = latent.sample_each(7, gens)
    again = [torch.Generator().manual_seed(s) for s in (3, 4, 5)]
    assert each.shape == (3, 7, latent.dim) and each.dtype == torch.float32
    assert torch.equal(each, torch.stack([latent.sample(7, seed=g) for g in again]))
    assert all(g.get_state().equal(h.get_state()) for g, h in zip(gens, again, strict=True))


@given(mean=st.lists(st.floats(-5, 5), min_size=2, max_size=2), scale=st.floats(0.1, 5),
       corr=st.floats(-0.9, 0.9))
def test_moment_normalisation_is_exact_for_gaussians(mean, scale, corr):
    cov = scale**2 * np.array([[1.0, corr], [corr, 1.0]])
    m, spread = normalize(Gaussian(2, mean=mean, cov=cov), "moment").moments()
    assert torch.allclose(m, torch.zeros(2, dtype=torch.float64), atol=1e-9) and abs(spread - 2) < 1e-9


def test_moments_agree_with_monte_carlo():
    mix = Mixture([Gaussian(2, mean=[-2.0, 0.0]), Uniform(2, 1.0, 3.0)], weights=[0.3, 0.7])
    z = mix.sample(200_000, seed=0).double()
    mean, spread = mix.moments()
    torch.testing.assert_close(z.mean(0), mean, atol=0.02, rtol=0)
    assert abs(float(((z - mean) ** 2).sum(1).mean()) - spread) < 0.03 * spread


def test_cube_normalisation_fits_unit_box():
    for lat in (Uniform(2, 0.0, 4.0), Discrete([[0.0, 1.0], [3.0, 2.0]])):
        low, high = normalize(lat, "cube").bounds()
        assert float(low.min()) >= -1 - 1e-12 and float(high.max()) <= 1 + 1e-12
        assert np.isclose(max(-float(low.min()), float(high.max())), 1.0)
    with pytest.raises(ValueError, match="unbounded"):
        normalize(Gaussian(2), "cube")


def test_normalize_samples_matches_exact_and_is_differentiable():
    pts = torch.tensor([[0.0, 1.0], [2.0, 5.0], [4.0, -1.0]], requires_grad=True)
    out = normalize_samples(pts, "moment")
    exact = normalize(Discrete(pts.detach().double()), "moment")
    torch.testing.assert_close(out.double(), (exact.base.points - exact.shift) * exact.scale)
    out.sum().backward()
    assert pts.grad is not None
    # Rescaling and shifting the input cannot change the normalised points (P4: no cheating by scale).
    torch.testing.assert_close(normalize_samples(pts.detach() * 7 + 3, "moment"), out.detach())


def test_pushforward_codes():
    data = np.random.default_rng(0).normal(size=(30, 3))
    enc = torch.nn.Linear(3, 2)
    lat = Pushforward(enc, data)
    assert lat.dim == 2 and lat.codes.shape == (30, 2)
    torch.testing.assert_close(lat.codes, enc(torch.as_tensor(data, dtype=torch.float32)).detach().double())
    with pytest.raises(TypeError, match="encoder"):
        Pushforward(3, data)


def test_latent_bad_input():
    with pytest.raises(ValueError, match="cov"):
        Gaussian(2, cov=[[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="high"):
        Uniform(1, 1.0, 0.0)
    with pytest.raises(ValueError, match="weights"):
        Discrete([[0.0], [1.0]], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="dimension"):
        Mixture([Gaussian(1), Gaussian(2)])
    with pytest.raises(ValueError, match="latent"):
        make_latent("cauchy", 2)
    with pytest.raises(ValueError, match="n must be"):
        Gaussian(1).sample(0)
    with pytest.raises(TypeError, match="generators"):
        Gaussian(1).sample_each(3, [0, 1])
    with pytest.raises(TypeError, match="generators"):
        Gaussian(1).sample_each(3, [])
    assert isinstance(make_latent("uniform", 3), Uniform)
