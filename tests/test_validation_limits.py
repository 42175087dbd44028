"""The bounded-resource and range helpers of ``latentdist._validation``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from latentdist._validation import (
    MAX_STEPS,
    check_batch_size,
    check_bool,
    check_cast,
    check_gaussian,
    check_lr,
    check_memory,
    check_seed,
    check_steps,
    memory_limit,
    probe_module,
)


def test_check_memory_names_the_argument_and_bytes():
    check_memory(1000, "n=10", limit=1000)  # at the limit is fine
    with pytest.raises(ValueError, match=r"n=10\*\*12 needs about 8\.0e\+12 bytes"):
        check_memory(8e12, "n=10**12", limit=2**30)


def test_memory_limit_from_the_environment(monkeypatch):
    monkeypatch.setenv("LATENTDIST_MAX_BYTES", "12345")
    assert memory_limit() == 12345
    with pytest.raises(ValueError, match="bytes"):
        check_memory(20000, "width=100")
    monkeypatch.setenv("LATENTDIST_MAX_BYTES", "lots")
    with pytest.raises(ValueError, match="LATENTDIST_MAX_BYTES"):
        memory_limit()
    monkeypatch.delenv("LATENTDIST_MAX_BYTES")
    assert memory_limit() > 0


def test_check_cast_refuses_overflow_to_inf():
    assert check_cast(np.array([1.0, 2.0]), np.float32, "x").dtype == np.float32
    with pytest.raises(ValueError, match="x has values beyond the range of float32"):
        check_cast(np.array([1e300]), np.float32, "x")
    with pytest.raises(ValueError, match="z has values beyond the range of torch.float32"):
        check_cast(torch.tensor([1e300], dtype=torch.float64), torch.float32, "z")


@pytest.mark.parametrize(
    "seed", [0, 2**64 - 1, np.uint64(5), None, np.random.default_rng(0), torch.Generator()]
)
def test_check_seed_accepts(seed):
    check_seed(seed)


@pytest.mark.parametrize(
    ("seed", "exc"),
    [(2**64, ValueError), (-1, ValueError), ("x", TypeError), (1.5, TypeError), (True, TypeError)],
)
def test_check_seed_rejects(seed, exc):
    with pytest.raises(exc, match="seed"):
        check_seed(seed)


@pytest.mark.parametrize("lr", [0.0, -1.0, float("nan"), float("inf"), 1e300])
def test_check_lr_rejects(lr):
    with pytest.raises(ValueError, match="lr"):
        check_lr(lr)


def test_steps_and_batch_size_are_bounded(monkeypatch):
    assert check_steps(MAX_STEPS) == MAX_STEPS
    with pytest.raises(ValueError, match="steps must be <="):
        check_steps(MAX_STEPS + 1)
    monkeypatch.setenv("LATENTDIST_MAX_BYTES", str(10**6))
    assert check_batch_size(64, width=10) == 64
    with pytest.raises(ValueError, match=r"batch_size=1000000000 \(rows of width 1\) needs about"):
        check_batch_size(10**9)


@pytest.mark.parametrize("bad", ["yes", None, 1])
def test_check_bool(bad):
    with pytest.raises(TypeError, match="flag must be True or False"):
        check_bool(bad, "flag")


def test_check_gaussian_requires_a_symmetric_psd_covariance():
    mu, cov = check_gaussian([0.0, 1.0], np.eye(2) * 1e300)  # scale alone is never the problem
    assert cov.shape == (2, 2)
    with pytest.raises(ValueError, match="cov must be positive semi-definite"):
        check_gaussian([0.0, 0.0], np.diag([1.0, -1.0]))
    with pytest.raises(ValueError, match="cov must be a symmetric"):
        check_gaussian([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"cov must have shape \(2, 2\)"):
        check_gaussian([0.0, 0.0], np.eye(3))


def test_probe_module_names_the_module_and_restores_its_mode():
    net = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))
    net.train()
    assert probe_module(net, torch.zeros(2, 3), "critic").shape == (2, 2)
    assert net.training
    with pytest.raises(ValueError, match=r"critic does not accept inputs of shape \(5,\)"):
        probe_module(net, torch.zeros(2, 5), "critic")
    assert net.training
    with pytest.raises(TypeError, match="encoder must be a torch.nn.Module"):
        probe_module(3, torch.zeros(2, 5), "encoder")
