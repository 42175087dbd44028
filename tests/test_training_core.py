"""The one training core: seeded RNG blocks, named streams, Adam schedules, and run_loop's light defaults."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentdist._seeding import seeded, streams
from latentdist.optim import make_optimizer, update
from latentdist.train.loop import run_loop


def test_seeded_is_reproducible_and_restores_the_callers_rng():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    with seeded(7):
        a = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), before)
    with seeded(7):
        b = torch.rand(3)
    with seeded(8):
        c = torch.rand(3)
    assert torch.equal(a, b) and not torch.equal(a, c)
    with seeded(None):  # forks without seeding: the caller's stream continues inside, is restored after
        torch.rand(5)
    assert torch.equal(torch.get_rng_state(), before)


def test_streams_are_named_independent_and_reproducible():
    first, again = streams(3, ["z", "x"]), streams(3, ["z", "x"])
    assert torch.equal(torch.rand(4, generator=first["z"]), torch.rand(4, generator=again["z"]))
    assert not torch.equal(torch.rand(4, generator=first["z"]), torch.rand(4, generator=first["x"]))


@pytest.mark.parametrize(("schedule", "last"), [("constant", 1.0), ("cosine", 0.0), ("cosine_floor", 0.05)])
def test_schedules_end_where_documented(schedule, last):
    w = torch.zeros(1, requires_grad=True)
    opt, sched = make_optimizer([w], 0.1, schedule=schedule, steps=20)
    for _ in range(20):
        update(opt, (w - 1).pow(2).sum(), sched)
    assert math.isclose(opt.param_groups[0]["lr"], 0.1 * last, abs_tol=1e-12)
    assert (sched is None) == (schedule == "constant")


def test_make_optimizer_rejects_bad_schedules():
    w = torch.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match="schedule"):
        make_optimizer([w], 0.1, schedule="linear")
    with pytest.raises(ValueError, match="steps"):
        make_optimizer([w], 0.1, schedule="cosine")


def test_run_loop_light_defaults_minimise_and_log_the_last_step():
    w = torch.zeros(2, requires_grad=True)
    opt, sched = make_optimizer([w], 0.1, schedule="cosine_floor", steps=200)

    def step_fn(step):
        loss = ((w - torch.tensor([1.0, -2.0])) ** 2).sum()
        update(opt, loss, sched)
        return {"loss": loss}

    history = run_loop(step_fn, steps=200)
    assert list(history["step"]) == [200]
    np.testing.assert_allclose(w.detach().numpy(), [1.0, -2.0], atol=1e-2)


def test_optimal_latent_restarts_run_in_one_batched_loop(monkeypatch):
    import latentdist.optimal as optimal
    from latentdist.generators import MLP

    calls = []
    real = optimal.run_loop
    monkeypatch.setattr(optimal, "run_loop", lambda *a, **k: calls.append(k["steps"]) or real(*a, **k))
    x = np.random.default_rng(0).normal(size=(120, 2))
    res = optimal.optimal_latent(x, 1, MLP(width=4, depth=1), "w2", n_particles=8, steps=6, n_restarts=3,
                                 distance_steps=2, distance_restarts=1, progress=False)
    assert calls == [6]  # three restarts, one loop
    assert sorted(res.history["restart"].unique()) == [0, 1, 2] and len(res.search_losses) == 3
