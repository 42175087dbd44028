"""The distance registry: an entry is the whole distance, used by evaluation and training alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentdist.distances import (
    available_distances,
    get_entry,
    mmd2,
    register_distance,
    trainable_distances,
    training_loss,
    unregister_distance,
)
from latentdist.estimator import latent_data_distance
from latentdist.generators import MLP
from latentdist.latents import Gaussian


class Counting:
    """A distance that counts its calls: with a grad-requiring input (training) and without (evaluation)."""

    def __init__(self, fn):
        self.fn, self.train_calls, self.eval_calls = fn, 0, 0
        self.__name__ = "counting"

    def __call__(self, x, y, **kwargs):
        grad = any(isinstance(t, torch.Tensor) and t.requires_grad for t in (x, y))
        if grad:
            self.train_calls += 1
        else:
            self.eval_calls += 1
        return self.fn(x, y, **kwargs)


@pytest.fixture
def registry_guard():
    names = set(available_distances())
    touched = []
    yield touched
    for name in touched:
        unregister_distance(name)
    assert set(available_distances()) == names


def _estimate(distance, **kwargs):
    x = np.random.default_rng(0).normal(size=(120, 2))
    return latent_data_distance(Gaussian(2), x, MLP(width=4, depth=1), distance, n_restarts=2, steps=5,
                                n_floor=2, progress=False, **kwargs)


def test_a_registered_distance_is_used_in_training_and_evaluation(registry_guard):
    counting = Counting(lambda x, y: mmd2(x, y, bandwidth=1.0))
    register_distance("counting_mmd", counting)
    registry_guard.append("counting_mmd")
    assert "counting_mmd" in trainable_distances()
    _estimate("counting_mmd")
    assert counting.train_calls == 2 * 5  # one call per member and step, no other path trains
    assert counting.eval_calls > 0  # selection, evaluation and noise floor


def test_overriding_a_builtin_changes_training_and_evaluation(registry_guard):
    from latentdist.distances import wasserstein

    before = _estimate("w2").value
    counting = Counting(lambda x, y: wasserstein(x, y, p=2) * 10.0)
    register_distance("w2", counting, overwrite=True)
    registry_guard.append("w2")
    assert get_entry("w2").train is None  # the built-in minibatch-plan training form went with the entry
    after = _estimate("w2")
    assert counting.train_calls == 2 * 5
    assert counting.eval_calls > 0
    assert after.value > 5 * before  # evaluation uses the new function (10 x W2, retrained generators)


def test_training_and_batched_forms_are_preferred_in_that_order(registry_guard):
    calls = []

    def train(**kwargs):
        calls.append(("train", kwargs))
        return lambda y, x: ((y.mean(1) - x.mean(1)) ** 2).sum(-1)

    register_distance("gap", lambda x, y: float(np.abs(np.mean(x) - np.mean(y))), train=train,
                      differentiable=False)
    registry_guard.append("gap")
    assert get_entry("gap").trainable
    loss = training_loss("gap")
    assert calls == [("train", {})]
    out = loss(torch.zeros(3, 4, 2), torch.ones(3, 4, 2))
    assert out.shape == (3,) and torch.allclose(out, torch.full((3,), 2.0))


def test_evaluation_only_distances_cannot_train(registry_guard):
    assert not get_entry("bures").trainable and not get_entry("critic").trainable
    with pytest.raises(ValueError, match="cannot train"):
        training_loss("bures")
    register_distance("frozen", lambda x, y: 0.0, differentiable=False)
    registry_guard.append("frozen")
    assert "frozen" not in trainable_distances()


def test_register_rejects_bad_input(registry_guard):
    with pytest.raises(ValueError, match="already registered"):
        register_distance("w2", mmd2)
    with pytest.raises(TypeError, match="train must be callable"):
        register_distance("x", mmd2, train=3)
    with pytest.raises(TypeError, match="name"):
        register_distance("", mmd2)
    with pytest.raises(ValueError, match="unknown distance"):
        unregister_distance("never_registered")
