"""Encoders, critics, weaken and add_dropout."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from latentdist.generators import MLP, ConvDecoder, Linear
from latentdist.train import ConvCritic, ConvEncoder, Dropout, MLPCritic, MLPEncoder, add_dropout, weaken


@pytest.mark.parametrize("flat", [True, False])
def test_conv_nets_take_images_or_vectors(flat):
    x = torch.rand(3, 784) if flat else torch.rand(3, 1, 28, 28)
    assert ConvEncoder(channels=4, latent_dim=5).build(784, seed=0)(x).shape == (3, 5)
    assert ConvCritic(channels=4).build(784, seed=0)(x).shape == (3, 1)
    assert MLPEncoder(width=8, latent_dim=2).build(784)(x).shape == (3, 2)
    assert MLPCritic(width=8).build(784)(x).shape == (3, 1)


def test_builds_are_seeded_and_leave_global_rng_alone():
    state = torch.get_rng_state()
    a = ConvEncoder(channels=4).build(784, seed=1)
    b = ConvEncoder(channels=4).build(784, seed=1)
    c = ConvEncoder(channels=4).build(784, seed=2)
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_conv_encoder_rejects_other_sizes():
    with pytest.raises(ValueError, match="784"):
        ConvEncoder().build(100)
    with pytest.raises(ValueError, match="latent_dim"):
        ConvEncoder(latent_dim=0)
    with pytest.raises(ValueError, match="activation"):
        MLPCritic(activation="swish")


@given(width=st.integers(1, 64), mult=st.floats(0.01, 4.0))
def test_weaken_width(width, mult):
    assert weaken(MLP(width=width), width_mult=mult).width == max(1, round(width * mult))
    assert weaken(ConvDecoder(channels=width), width_mult=mult).channels == max(1, round(width * mult))


def test_weaken_reduces_parameters_and_depth():
    full, weak = ConvDecoder(32), weaken(ConvDecoder(32), width_mult=0.25)
    n = lambda f: sum(p.numel() for p in f.build(8, 784).parameters())  # noqa: E731
    assert n(weak) < n(full)
    assert weaken(MLP(depth=3), depth=1).depth == 1
    assert weaken(MLP(width=7)) == MLP(width=7)


def test_weaken_dropout_wraps_and_builds():
    fam = weaken(ConvDecoder(8), width_mult=0.5, dropout=0.3)
    assert isinstance(fam, Dropout) and fam.base == ConvDecoder(4) and fam.capacity == 4
    net = fam.build(3, 784, seed=0)
    drops = [m for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(drops) == 2 and all(d.p == 0.3 for d in drops)
    assert isinstance(list(net.children())[-1], torch.nn.Sigmoid)  # output activation kept last
    net.eval()
    z = torch.randn(4, 3)
    assert torch.equal(net(z), net(z))
    net.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        a = net(z)
        torch.manual_seed(0)
        b = net(z)
    assert torch.equal(a, b)


def test_add_dropout_counts_hidden_activations():
    mlp = MLP(width=4, depth=3).build(2, 2)
    out = add_dropout(mlp, 0.1)
    assert sum(isinstance(m, torch.nn.Dropout) for m in out.modules()) == 3
    assert sum(isinstance(m, torch.nn.Dropout) for m in mlp.modules()) == 0  # original untouched
    with pytest.raises(ValueError, match="no hidden activation"):
        add_dropout(Linear().build(2, 2), 0.1)
    with pytest.raises(ValueError, match="p"):
        add_dropout(mlp, 1.5)


def test_weaken_bad_input():
    with pytest.raises(TypeError, match="family"):
        weaken("ConvDecoder", width_mult=0.5)
    with pytest.raises(ValueError, match="width_mult"):
        weaken(MLP(), width_mult=0.0)
    with pytest.raises(ValueError, match="depth"):
        weaken(Linear(), depth=2)
    assert weaken(ConvDecoder(), depth=2).depth == 2  # ConvDecoder has a depth knob now
    with pytest.raises(ValueError, match="'channels' or 'width'"):
        weaken(Linear(), width_mult=0.5)
    with pytest.raises(ValueError, match="dropout"):
        weaken(MLP(), dropout=-0.1)
