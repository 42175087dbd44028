"""Shared test configuration.

Hypothesis profiles: ``ci`` (loaded when the ``CI`` variable is set, as CI services and ``.ci/run`` do)
is derandomized, so a CI run tries the same examples every time and cannot flake; ``dev`` (otherwise)
draws new examples on every run, which is how new counterexamples get found. Neither has a deadline:
machines are small and shared, so per-example timing is noise. ``HYPOTHESIS_PROFILE`` overrides.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=30,
    print_blob=True,  # a failure prints the @reproduce_failure line
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _hypothesis_profile() -> str:
    ci = os.environ.get("CI", "").strip().lower()
    return os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if ci not in ("", "0", "false", "no") else "dev")


settings.load_profile(_hypothesis_profile())

# Two xdist workers on two cores: one intra-op thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

os.environ.setdefault("LATENTDIST_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]


def _mnist_root() -> Path | None:
    env = os.environ.get("LATENTDIST_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if (c / "mnist" / "train-images-idx3-ubyte.gz").exists():
            return c
    return None


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """Data root holding the real MNIST files: ``$LATENTDIST_DATA`` or ``../shared/data`` when they hold
    them, else the user cache, fetched there on first use as on a fresh machine (``$LATENTDIST_MNIST_URL``
    or the canonical mirrors). Fails loudly, never skips: these tests are the MNIST coverage."""
    root = _mnist_root()
    if root is not None:
        return root
    from latentdist.data.mnist import MNISTUnavailableError, ensure_mnist

    try:
        return ensure_mnist(progress=False)
    except MNISTUnavailableError as exc:
        pytest.fail(f"real MNIST files are needed by this test: {exc}")
