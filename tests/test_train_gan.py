"""train_gan: mode coverage on the 8-mode ring, determinism, checkpoint/resume, callbacks, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from latentdist.data import make_dataset
from latentdist.generators import MLP
from latentdist.latents import Gaussian
from latentdist.metrics import mode_coverage
from latentdist.train import GANResult, MLPCritic, train_gan


def _small(x, **kw):
    args = dict(loss="wgan-gp", steps=6, n_critic=2, batch_size=32, seed=3, progress=False, log_every=2)
    args.update(kw)
    return train_gan(x, Gaussian(2), MLP(width=8, depth=1), MLPCritic(width=8, depth=1), **args)


def _assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


class _Crash:
    """Callback that raises once the loop reaches step ``at`` (simulates an interrupted run)."""

    def __init__(self, at: int):
        self.at = at

    def __call__(self, step, model, logs):
        if step >= self.at:
            raise KeyboardInterrupt(f"simulated crash at step {step}")


@pytest.fixture(scope="module")
def ring():
    return make_dataset("gaussian_mixture_ring", 2000, seed=0)


def test_ring_quick_configuration_covers_modes(ring):
    # The quick configuration: hinge loss, one critic step per generator step, Adam lr 1e-3, 1500 steps,
    # width-128 depth-3 MLPs (about 25 s on one free core). A mode is hit when >= 1% of the samples lie
    # within 3 std of its centre.
    res = train_gan(ring.x, Gaussian(2), MLP(width=128, depth=3), MLPCritic(width=128, depth=3), loss="hinge",
                    steps=1500, batch_size=256, lr_g=1e-3, lr_d=1e-3, seed=0, progress=False, log_every=100)
    samples = res.sampler(4000, seed=1)
    assert samples.shape == (4000, 2)
    assert mode_coverage(samples, ring.modes, ring.mode_std)["n_modes_hit"] >= 7


@pytest.mark.parametrize("loss", ["wgan-gp", "ns", "hinge"])
def test_same_seed_same_result_and_history(ring, loss):
    a, b = _small(ring.x, loss=loss), _small(ring.x, loss=loss)
    assert isinstance(a, GANResult)
    _assert_same_state(a.generator, b.generator)
    _assert_same_state(a.critic, b.critic)
    pd.testing.assert_frame_equal(a.history, b.history)
    assert torch.equal(a.sampler(50, seed=4), b.sampler(50, seed=4))
    c = _small(ring.x, loss=loss, seed=4)
    assert not torch.equal(a.generator[0].weight, c.generator[0].weight)


def test_history_columns_and_log_every(ring):
    res = _small(ring.x, steps=7, log_every=3)
    assert res.history["step"].tolist() == [3, 6, 7]
    assert {"loss_d", "loss_g", "w_estimate", "gp"} <= set(res.history.columns)
    assert np.isfinite(res.history.drop(columns="step").to_numpy()).all()


def test_global_rng_untouched_and_numpy_torch_alike(ring):
    state = torch.get_rng_state()
    a = _small(ring.x)
    assert torch.equal(state, torch.get_rng_state())
    b = _small(torch.as_tensor(ring.x, dtype=torch.float32))
    _assert_same_state(a.generator, b.generator)


def test_module_inputs_are_copied_not_trained_in_place(ring):
    g = MLP(width=8, depth=1).build(2, 2, seed=0)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    res = train_gan(ring.x, Gaussian(2), g, MLPCritic(width=8, depth=1), steps=3, n_critic=1, batch_size=16,
                    progress=False)
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())
    assert res.generator is not g


def test_resume_after_crash_is_bit_identical(ring, tmp_path):
    kw = dict(steps=12, log_every=2, checkpoint_every=4)
    full = _small(ring.x, **kw)
    with pytest.raises(KeyboardInterrupt):
        _small(ring.x, checkpoint_dir=tmp_path, callbacks=(_Crash(10),), **kw)
    assert (tmp_path / "gan.pt").exists()
    seen = []
    record = (lambda s, m, l: seen.append(s),)
    resumed = _small(ring.x, checkpoint_dir=tmp_path, resume=True, callbacks=record, **kw)
    assert seen == [10, 12]  # resumed from the step-8 checkpoint, not from scratch
    _assert_same_state(full.generator, resumed.generator)
    _assert_same_state(full.critic, resumed.critic)
    pd.testing.assert_frame_equal(full.history, resumed.history)


def test_resume_can_extend_a_finished_run(ring, tmp_path):
    long = _small(ring.x, steps=8, checkpoint_every=4)
    _small(ring.x, steps=4, checkpoint_every=4, checkpoint_dir=tmp_path)
    extended = _small(ring.x, steps=8, checkpoint_every=4, checkpoint_dir=tmp_path, resume=True)
    _assert_same_state(long.generator, extended.generator)


def test_resume_refuses_a_different_configuration(ring, tmp_path):
    _small(ring.x, steps=4, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="beyond steps=2"):
        _small(ring.x, steps=2, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="lr_d"):
        _small(ring.x, steps=4, checkpoint_dir=tmp_path, resume=True, lr_d=1e-3)


def test_callbacks_add_to_history(ring):
    def cb(step, model, logs):
        assert isinstance(model, torch.nn.Module)
        logs["weight_norm"] = float(model[0].weight.detach().norm())

    res = _small(ring.x, callbacks=(cb,))
    assert "weight_norm" in res.history and res.history["weight_norm"].notna().all()


def test_images_with_conv_nets():
    from latentdist.generators import ConvDecoder
    from latentdist.train import ConvCritic

    x = torch.rand(40, 1, 28, 28)
    res = train_gan(x, Gaussian(3), ConvDecoder(channels=2), ConvCritic(channels=2), steps=2, n_critic=1,
                    batch_size=8, progress=False)
    assert res.sampler(5, seed=0).shape == (5, 1, 28, 28)
    counts = res.sampler.param_counts()
    assert counts["prior"] == 0 and counts["decoder"] == sum(p.numel() for p in res.generator.parameters())


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        (dict(loss="wgan"), ValueError, "loss"),
        (dict(steps=0), ValueError, "steps"),
        (dict(batch_size=2.5), TypeError, "batch_size"),
        (dict(n_critic=0), ValueError, "n_critic"),
        (dict(lr_g=-1.0), ValueError, "lr_g"),
        (dict(device="tpu"), ValueError, "device"),
        (dict(resume=True), ValueError, "checkpoint_dir"),
        (dict(callbacks=print), TypeError, "callbacks"),
        (dict(callbacks=(1,)), TypeError, "callbacks"),
    ],
)
def test_bad_arguments(ring, kwargs, err, match):
    with pytest.raises(err, match=match):
        _small(ring.x, **kwargs)


def test_bad_data_and_networks(ring):
    x = np.array(ring.x)
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="data"):
        _small(x)
    with pytest.raises(ValueError, match="data"):
        _small(ring.x[:, 0])
    with pytest.raises(ValueError, match="data"):
        _small(ring.x[:1])
    with pytest.raises(TypeError, match="latent"):
        train_gan(ring.x, "gaussian", MLP(), MLPCritic(), progress=False)
    with pytest.raises(TypeError, match="generator"):
        train_gan(ring.x, Gaussian(2), "mlp", MLPCritic(), progress=False)
    with pytest.raises(ValueError, match="generator"):
        train_gan(ring.x, Gaussian(2), torch.nn.Linear(2, 3), MLPCritic(), progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_request_without_cuda_raises(ring):
    with pytest.raises(ValueError, match="CUDA"):
        _small(ring.x, device="cuda")


def test_complexity_callback_logs_into_history(ring):
    from latentdist.complexity import ComplexityCallback

    cb = ComplexityCallback(Gaussian(2), every=4, n=32, proxies=("lipschitz_upper", "jacobian_frobenius"))
    res = _small(ring.x, steps=8, log_every=2, callbacks=(cb,))
    measured = res.history.dropna(subset=["lipschitz_upper"])
    assert measured["step"].tolist() == [4, 8]
    assert (measured["lipschitz_upper"] > 0).all() and (measured["jacobian_frobenius"] > 0).all()
