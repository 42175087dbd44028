"""train_autoencoder and train_dae: frozen encoder, determinism, resume, MNIST smoke test, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from latentdist.data import make_dataset
from latentdist.generators import MLP, ConvDecoder
from latentdist.train import (
    AutoencoderResult,
    ConvEncoder,
    DAEResult,
    MLPEncoder,
    train_autoencoder,
    train_dae,
    weaken,
)


@pytest.fixture(scope="module")
def x():
    return make_dataset("swiss_roll", 600, seed=0).x.astype(np.float32)


def _snapshot(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _dae(x, **kw):
    args = dict(stage1_steps=8, stage2_steps=8, batch_size=32, seed=2, progress=False, log_every=2)
    args.update(kw)
    enc = MLPEncoder(width=16, depth=1, latent_dim=2)
    return train_dae(x, enc, MLP(width=4, depth=1), MLP(width=16, depth=2), **args)


def _ae(x, **kw):
    args = dict(steps=8, batch_size=32, seed=2, progress=False, log_every=2)
    args.update(kw)
    return train_autoencoder(x, MLPEncoder(width=16, depth=1, latent_dim=2), MLP(width=16), **args)


class _Crash:
    def __init__(self, stage: int, at: int):
        self.stage, self.at = stage, at

    def __call__(self, step, model, logs):
        if logs.get("stage", 1) == self.stage and step >= self.at:
            raise KeyboardInterrupt("simulated crash")


def test_dae_stage2_leaves_the_encoder_bit_identical(x, monkeypatch):
    import latentdist.train.autoencoder as ae

    snaps = {}
    real_fit = ae._fit

    def spy(inputs, targets, forward, modules, watched, **kw):
        if "decoder" in modules:  # stage 2: snapshot the encoder before and after
            enc = snaps["encoder"]
            before = _snapshot(enc)
            assert not any(p.requires_grad for p in enc.parameters())
            assert not enc.training
            out = real_fit(inputs, targets, forward, modules, watched, **kw)
            snaps["before"], snaps["after"] = before, _snapshot(enc)
            return out
        snaps["encoder"] = modules["encoder"]
        return real_fit(inputs, targets, forward, modules, watched, **kw)

    monkeypatch.setattr(ae, "_fit", spy)
    res = _dae(x, stage2_steps=20)
    _assert_same(snaps["before"], snaps["after"])
    _assert_same(snaps["after"], _snapshot(res.encoder))
    # ...while stage 2 did train the decoder (the check above is not vacuous).
    h = res.history[res.history["stage"] == 2]
    assert h["loss"].iloc[-1] < h["loss"].iloc[0]


def test_dae_decoder_learns_from_codes_and_history(x):
    res = _dae(x)
    assert isinstance(res, DAEResult) and isinstance(res, AutoencoderResult)
    assert res.history["stage"].tolist() == [1] * 4 + [2] * 4
    assert res.history["step"].tolist() == [2, 4, 6, 8] * 2
    assert res.encode(x).shape == (600, 2)
    assert res.reconstruct(x[:5]).shape == (5, 3)
    assert res.aux_decoder is not res.decoder


def test_same_seed_same_result(x):
    a, b = _dae(x, aux_dropout=0.2), _dae(x, aux_dropout=0.2)
    for name in ("encoder", "aux_decoder", "decoder"):
        _assert_same(_snapshot(getattr(a, name)), _snapshot(getattr(b, name)))
    pd.testing.assert_frame_equal(a.history, b.history)
    c = _dae(x, aux_dropout=0.2, seed=3)
    assert not torch.equal(a.decoder[0].weight, c.decoder[0].weight)
    j1, j2 = _ae(x), _ae(torch.as_tensor(x))
    _assert_same(_snapshot(j1.decoder), _snapshot(j2.decoder))


def test_global_rng_untouched(x):
    state = torch.get_rng_state()
    _dae(x, aux_dropout=0.3)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("crash_stage", [1, 2])
def test_dae_resume_after_crash_is_bit_identical(x, tmp_path, crash_stage):
    kw = dict(checkpoint_every=3, aux_dropout=0.2)
    full = _dae(x, **kw)
    with pytest.raises(KeyboardInterrupt):
        _dae(x, checkpoint_dir=tmp_path, callbacks=(_Crash(crash_stage, 6),), **kw)
    seen = []
    resumed = _dae(x, checkpoint_dir=tmp_path, resume=True, callbacks=(lambda s, m, l: seen.append(
        (l["stage"], s)),), **kw)
    # Resumed from the step-3 checkpoint of the crashed stage; finished stages are not rerun.
    first = (crash_stage, 4)
    assert seen[0] == first
    for name in ("encoder", "aux_decoder", "decoder"):
        _assert_same(_snapshot(getattr(full, name)), _snapshot(getattr(resumed, name)))
    pd.testing.assert_frame_equal(full.history, resumed.history)


def test_autoencoder_resume_after_crash(x, tmp_path):
    full = _ae(x, checkpoint_every=4)
    with pytest.raises(KeyboardInterrupt):
        _ae(x, checkpoint_every=4, checkpoint_dir=tmp_path, callbacks=(_Crash(1, 6),))
    resumed = _ae(x, checkpoint_every=4, checkpoint_dir=tmp_path, resume=True)
    _assert_same(_snapshot(full.encoder), _snapshot(resumed.encoder))
    _assert_same(_snapshot(full.decoder), _snapshot(resumed.decoder))
    pd.testing.assert_frame_equal(full.history, resumed.history)


def test_joint_autoencoder_beats_the_best_linear_code(x):
    # A 2-D code of the swiss roll: the nonlinear AE must beat PCA with 2 components (the best linear
    # 2-D encoder/decoder pair), which needs it to have learned the roll.
    from sklearn.decomposition import PCA

    z = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    res = train_autoencoder(z, MLPEncoder(width=32, depth=2, latent_dim=2), MLP(width=32), steps=300, lr=3e-3,
                            batch_size=64, seed=0, progress=False, log_every=50)
    err = float(((res.reconstruct(z) - torch.as_tensor(z)) ** 2).mean())
    pca = PCA(2).fit(z)
    linear = float(((pca.inverse_transform(pca.transform(z)) - z) ** 2).mean())
    assert err < 0.5 * linear, (err, linear)


def test_callbacks_receive_the_decoder_and_can_log(x):
    def cb(step, model, logs):
        logs["n_params"] = float(sum(p.numel() for p in model.parameters()))

    res = _dae(x, callbacks=(cb,))
    n_aux = sum(p.numel() for p in res.aux_decoder.parameters())
    n_dec = sum(p.numel() for p in res.decoder.parameters())
    assert set(res.history.loc[res.history["stage"] == 1, "n_params"]) == {n_aux}
    assert set(res.history.loc[res.history["stage"] == 2, "n_params"]) == {n_dec}


def test_mnist_dae_smoke(mnist_root, monkeypatch):
    from latentdist.data import load_mnist

    monkeypatch.setenv("LATENTDIST_DATA", str(mnist_root))
    imgs, _ = load_mnist("train", n=256, seed=0)
    res = train_dae(imgs, ConvEncoder(channels=4, latent_dim=4), weaken(ConvDecoder(8), width_mult=0.25),
                    ConvDecoder(8), stage1_steps=30, stage2_steps=30, batch_size=32, loss="bce", lr=3e-3,
                    progress=False, log_every=10)
    assert res.decoder[0].in_features == 4 and res.aux_decoder[0].out_features == 2 * 2 * 49
    for stage in (1, 2):
        h = res.history[res.history["stage"] == stage]
        assert h["mse"].iloc[-1] < h["mse"].iloc[0]
    rec = res.reconstruct(imgs[:8])
    assert rec.shape == (8, 1, 28, 28) and float(rec.min()) >= 0 and float(rec.max()) <= 1


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        (dict(loss="l1"), ValueError, "loss"),
        (dict(stage1_steps=0), ValueError, "stage1_steps"),
        (dict(stage2_steps=-1), ValueError, "stage2_steps"),
        (dict(aux_dropout=1.0), ValueError, "aux_dropout"),
        (dict(lr=0.0), ValueError, "lr"),
        (dict(latent_dim=3), ValueError, "latent_dim"),
        (dict(device="cuda:x"), ValueError, "device"),
        (dict(checkpoint_dir=3), TypeError, "checkpoint_dir"),
        (dict(loss="bce"), ValueError, r"\[0, 1\]"),
    ],
)
def test_bad_arguments(x, kwargs, err, match):
    with pytest.raises(err, match=match):
        _dae(x, **kwargs)


def test_bad_data_and_networks(x):
    with pytest.raises(ValueError, match="data"):
        _ae(np.full((10, 3), np.inf))
    with pytest.raises(TypeError, match="data"):
        _ae(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="latent_dim is required"):
        train_autoencoder(x, MLP(width=4), MLP(width=4), steps=1, progress=False)
    with pytest.raises(ValueError, match="decoder"):
        train_autoencoder(x, MLPEncoder(latent_dim=2), torch.nn.Linear(2, 5), steps=1, progress=False)
    with pytest.raises(TypeError, match="encoder"):
        train_autoencoder(x, "conv", MLP(), steps=1, progress=False)
