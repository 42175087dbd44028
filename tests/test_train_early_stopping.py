"""Early stopping in run_loop: validation rows, patience, min_steps, best weights, resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentdist.train.loop import run_loop


def _setup(val_curve, tmp_path=None, **kw):
    """A one-parameter model whose 'validation loss' follows ``val_curve`` (one value per validation)."""
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    calls = []

    def step_fn(step):
        # the weight counts the steps taken, so the restored weight tells which step was kept
        with torch.no_grad():
            model.weight.add_(1.0)
        return {"loss": torch.tensor(float(step))}

    def validate():
        calls.append(model.training)
        return val_curve[len(calls) - 1]

    args = dict(state={"model": model, "opt": opt}, generators={}, watched=model, seed=0,
                device=torch.device("cpu"), config={"x": 1}, checkpoint_every=1000, callbacks=(),
                progress=False, log_every=10, desc="t")
    args.update(kw)
    return model, step_fn, validate, calls, args


def test_stops_after_patience_and_restores_best():
    curve = [5.0, 3.0, 2.0, 2.5, 2.1, 2.2, 1.0]
    model, step_fn, validate, calls, args = _setup(curve)
    h = run_loop(step_fn, steps=100, checkpoint_path=None, resume=False, validate=validate,
                 validate_every=2, patience=3, **args)
    # validations at steps 2,4,6 (best 2.0 at 6), then 8,10,12 fail -> stop at 12
    assert h.attrs["stopped_step"] == 12
    assert h.attrs["best_step"] == 6 and h.attrs["best_val_loss"] == 2.0
    assert model.weight.item() == 6.0  # weights of step 6 restored
    assert h["val_loss"].dropna().tolist() == curve[:6]
    assert not any(calls)  # validate always ran in eval mode
    assert model.training  # and the training mode came back


def test_min_steps_delays_the_stop_and_no_restore():
    curve = [1.0] + [2.0] * 20
    model, step_fn, validate, _, args = _setup(curve)
    h = run_loop(step_fn, steps=100, checkpoint_path=None, resume=False, validate=validate,
                 validate_every=5, patience=1, min_steps=30, restore_best=False, **args)
    assert h.attrs["stopped_step"] == 30
    assert model.weight.item() == 30.0


def test_cap_reached_without_stop_and_old_interface_unchanged():
    model, step_fn, validate, _, args = _setup([3.0, 2.0, 1.0])
    h = run_loop(step_fn, steps=15, checkpoint_path=None, resume=False, validate=validate,
                 validate_every=5, patience=2, **args)
    assert h.attrs["stopped_step"] is None and h.attrs["best_step"] == 15
    plain = run_loop(step_fn, steps=15, checkpoint_path=None, resume=False, **_setup([])[4])
    assert "val_loss" not in plain and plain["step"].tolist() == [10, 15]


def test_min_delta_counts_small_gains_as_no_gain():
    model, step_fn, validate, _, args = _setup([1.0, 0.99, 0.98, 0.5])
    h = run_loop(step_fn, steps=100, checkpoint_path=None, resume=False, validate=validate,
                 validate_every=1, patience=2, min_delta=0.05, **args)
    assert h.attrs["stopped_step"] == 3 and h.attrs["best_step"] == 1


def test_resume_of_a_stopped_run_does_not_train_further(tmp_path):
    curve = [3.0, 1.0, 2.0, 2.0, 2.0]
    ckpt = tmp_path / "c.pt"
    model, step_fn, validate, _, args = _setup(curve)
    first = run_loop(step_fn, steps=50, checkpoint_path=ckpt, resume=False, validate=validate,
                     validate_every=2, patience=2, **args)
    assert first.attrs["stopped_step"] == 8
    model2, step_fn2, validate2, calls2, args2 = _setup(curve)
    again = run_loop(step_fn2, steps=50, checkpoint_path=ckpt, resume=True, validate=validate2,
                     validate_every=2, patience=2, **args2)
    assert calls2 == []  # nothing re-run
    assert again.attrs == first.attrs
    assert model2.weight.item() == 4.0  # best weights (step 4) came back from the checkpoint


def test_resume_mid_run_matches_uninterrupted(tmp_path):
    curve = [4.0, 3.0, 3.5, 2.0, 2.5, 2.6, 2.7]
    model, step_fn, validate, _, args = _setup(curve)
    full = run_loop(step_fn, steps=100, checkpoint_path=None, resume=False, validate=validate,
                    validate_every=3, patience=3, **args)
    ckpt = tmp_path / "c.pt"
    m1, s1, v1, _, a1 = _setup(curve)
    run_loop(s1, steps=9, checkpoint_path=ckpt, resume=False, validate=v1, validate_every=3, patience=3, **a1)
    m2, s2, _, _, a2 = _setup(curve)
    with torch.no_grad():
        m2.weight.fill_(-100.0)  # resumed weights must come from the checkpoint
    resumed_calls = []

    def v2():
        resumed_calls.append(1)
        return curve[3 + len(resumed_calls) - 1]

    res = run_loop(s2, steps=100, checkpoint_path=ckpt, resume=True, validate=v2, validate_every=3,
                   patience=3, **a2)
    assert res.attrs == full.attrs
    assert m2.weight.item() == model.weight.item()
    assert res["val_loss"].dropna().tolist() == full["val_loss"].dropna().tolist()


@pytest.mark.parametrize(
    "kw, err, match",
    [
        (dict(validate=lambda: 1.0, patience=0), ValueError, "patience"),
        (dict(validate=lambda: 1.0, validate_every=0), ValueError, "validate_every"),
        (dict(validate=lambda: 1.0, min_delta=-1.0), ValueError, "min_delta"),
        (dict(validate=lambda: 1.0, min_steps=-1), ValueError, "min_steps"),
        (dict(validate=3.0), TypeError, "validate"),
        (dict(patience=3), ValueError, "validate"),
        (dict(validate=lambda: float("nan")), ValueError, "finite"),
    ],
)
def test_bad_early_stopping_arguments(kw, err, match):
    _, step_fn, _, _, args = _setup([])
    with pytest.raises(err, match=match):
        run_loop(step_fn, steps=20, checkpoint_path=None, resume=False, **kw, **args)
