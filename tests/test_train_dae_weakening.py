"""DAE additions for R5: BCE-with-logits, validation early stopping, the three weakenings, pairing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import latentdist.train.autoencoder as ae
from latentdist.generators import MLP, ConvDecoder
from latentdist.train import ConvEncoder, train_autoencoder, train_dae
from latentdist.train.nets import MLPEncoder


@pytest.fixture(scope="module")
def imgs():
    # blobs in [0, 1]: a cheap stand-in for digits
    g = torch.Generator().manual_seed(0)
    centre = torch.rand(160, 2, generator=g) * 14 + 7
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    d2 = (yy[None] - centre[:, 0, None, None]) ** 2 + (xx[None] - centre[:, 1, None, None]) ** 2
    return torch.exp(-d2 / 18.0)[:, None]


def test_conv_decoder_depth_and_dropout2d():
    net = ConvDecoder(4, depth=2, dropout=0.5).build(3, 784, seed=0)
    kinds = [type(m) for m in net]
    assert kinds.count(nn.Dropout2d) == 4 and kinds.count(nn.Conv2d) == 2
    z = torch.randn(5, 3)
    net.eval()
    assert torch.equal(net(z), net(z))  # dropout off in eval mode
    net.train()
    torch.manual_seed(0)
    assert not torch.equal(net(z), net(z))
    base = ConvDecoder(4).build(3, 784, seed=0)
    assert sum(isinstance(m, (nn.Dropout2d, nn.Conv2d)) for m in base) == 0  # defaults unchanged
    bads = ((dict(dropout=1.0), "dropout"), (dict(dropout=-0.1), "dropout"), (dict(depth=-1), "depth"))
    for bad, match in bads:
        with pytest.raises(ValueError, match=match):
            ConvDecoder(4, **bad)


def test_bce_logits_reconstructions_are_images(imgs):
    res = train_autoencoder(imgs, ConvEncoder(4, latent_dim=3), ConvDecoder(4, output="linear"), steps=20,
                            batch_size=32, loss="bce_logits", lr=3e-3, progress=False)
    rec = res.reconstruct(imgs[:10])
    assert rec.shape == (10, 1, 28, 28) and rec.min() >= 0 and rec.max() <= 1
    assert res.loss == "bce_logits"
    assert (res.history["mse"] < 0.25).all()  # mse is on sigmoid outputs, not on raw logits


def test_validation_early_stopping_in_both_stages(imgs):
    res = train_dae(imgs[:120], ConvEncoder(2, latent_dim=3), ConvDecoder(2), ConvDecoder(2), stage1_steps=60,
                    stage2_steps=60, batch_size=16, lr=3e-3, loss="bce", val_data=imgs[120:],
                    validate_every=4, patience=2, progress=False, log_every=100)
    stages = res.history.attrs["stages"]
    for k in (1, 2):
        rows = res.history[res.history["stage"] == k]
        val = rows["val_loss"].dropna()
        assert len(val) >= 3
        assert stages[k]["best_val_loss"] == pytest.approx(val.min())
        # stopped early (cap 60) or the best step is the last validated one
        assert stages[k]["stopped_step"] is not None or stages[k]["best_step"] == 60


def test_min_delta_defines_the_plateau(imgs):
    """A tolerance larger than any improvement stops each stage at min_steps + patience validations; a
    negative tolerance is refused before training."""
    kw = dict(stage1_steps=80, stage2_steps=80, batch_size=16, lr=3e-3, loss="bce", val_data=imgs[120:],
              validate_every=4, patience=2, min_steps=8, progress=False, log_every=100)
    res = train_dae(imgs[:120], ConvEncoder(2, latent_dim=3), ConvDecoder(2), ConvDecoder(2), min_delta=10.0,
                    **kw)
    for k in (1, 2):
        assert res.history.attrs["stages"][k]["stopped_step"] == 12  # best at 4; 8, 12 miss it by 10
    with pytest.raises(ValueError, match="min_delta"):
        train_autoencoder(imgs[:120], ConvEncoder(2, latent_dim=3), ConvDecoder(2), steps=8, loss="bce",
                          val_data=imgs[120:], validate_every=4, patience=2, min_delta=-1.0, progress=False)


def test_validation_loss_is_the_held_out_reconstruction_loss(imgs):
    res = train_autoencoder(imgs[:120], ConvEncoder(4, latent_dim=3), ConvDecoder(4), steps=10, batch_size=32,
                            loss="bce", val_data=imgs[120:], validate_every=10, progress=False)
    rec = res.reconstruct(imgs[120:])
    expected = float(torch.nn.functional.binary_cross_entropy(rec, imgs[120:]))
    assert res.history["val_loss"].dropna().iloc[-1] == pytest.approx(expected, rel=1e-4)


def test_joint_and_dae_share_encoder_decoder_and_batch_seeds(imgs, monkeypatch):
    seen = {}
    real = ae.as_module

    def spy(spec, in_dim, out_dim, seed, name, device):
        seen.setdefault(name, []).append(seed)
        return real(spec, in_dim, out_dim, seed, name, device)

    monkeypatch.setattr(ae, "as_module", spy)
    joint = train_autoencoder(imgs, ConvEncoder(4, latent_dim=3), ConvDecoder(4), steps=2, progress=False,
                              seed=7)
    dae = train_dae(imgs, ConvEncoder(4, latent_dim=3), ConvDecoder(2), ConvDecoder(4), stage1_steps=2,
                    stage2_steps=2, progress=False, seed=7)
    assert seen["encoder"][0] == seen["encoder"][1] and seen["decoder"][0] == seen["decoder"][1]
    assert seen["aux_decoder"][0] not in (seen["encoder"][0], seen["decoder"][0])
    assert joint.history["step"].tolist()[-1] == 2 and len(dae.history) == 2


def test_stage2_init_from_aux_copies_the_weights(imgs, monkeypatch):
    captured = {}
    real_fit = ae._fit

    def spy(inputs, targets, forward, modules, *a, **k):
        if "decoder" in modules and "encoder" not in modules:
            captured["dec"] = [p.detach().clone() for p in modules["decoder"].parameters()]
        return real_fit(inputs, targets, forward, modules, *a, **k)

    monkeypatch.setattr(ae, "_fit", spy)
    res = train_dae(imgs, ConvEncoder(4, latent_dim=3), ConvDecoder(4), ConvDecoder(4), aux_dropout=0.3,
                    stage2_init="aux", stage1_steps=3, stage2_steps=2, progress=False)
    aux_params = [p.detach() for p in res.aux_decoder.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(aux_params, captured["dec"], strict=True))
    assert sum(isinstance(m, nn.Dropout2d) for m in res.aux_decoder.modules()) > 0
    with pytest.raises(ValueError, match="stage2_init='aux'"):
        train_dae(imgs, ConvEncoder(4, latent_dim=3), ConvDecoder(2), ConvDecoder(4), stage2_init="aux",
                  stage1_steps=1, stage2_steps=1, progress=False)


@pytest.mark.parametrize(
    "aux, dec, kw, match",
    [
        (ConvDecoder(8), ConvDecoder(4), {}, "aux_decoder must not be larger"),
        (ConvDecoder(4, depth=2), ConvDecoder(4, depth=1), {}, "aux_decoder must not be larger"),
        (MLP(width=32), MLP(width=8), {}, "aux_decoder must not be larger"),
        (ConvDecoder(4), ConvDecoder(4), {"aux_dropout": 1.0}, "aux_dropout"),
        (ConvDecoder(4), ConvDecoder(4), {"aux_dropout": -0.2}, "aux_dropout"),
        (ConvDecoder(4), ConvDecoder(4), {"stage2_init": "warm"}, "stage2_init"),
        (ConvDecoder(4), ConvDecoder(4), {"patience": 3}, "val_data"),
    ],
)
def test_bad_configs_refused_before_training(imgs, aux, dec, kw, match, monkeypatch):
    monkeypatch.setattr(ae, "_fit", lambda *a, **k: pytest.fail("trained despite a bad config"))
    enc = ConvEncoder(4, latent_dim=3) if isinstance(dec, ConvDecoder) else MLPEncoder(width=8, latent_dim=3)
    with pytest.raises(ValueError, match=match):
        train_dae(imgs, enc, aux, dec, stage1_steps=1, stage2_steps=1, progress=False, **kw)


def test_val_data_shape_and_range_checked(imgs):
    with pytest.raises(ValueError, match="val_data"):
        train_autoencoder(imgs, ConvEncoder(4, latent_dim=3), ConvDecoder(4), steps=1, progress=False,
                          val_data=np.zeros((3, 10)))
    with pytest.raises(ValueError, match="val_data"):
        train_autoencoder(imgs, ConvEncoder(4, latent_dim=3), ConvDecoder(4), steps=1, progress=False,
                          loss="bce", val_data=imgs[:3] * 2)
