"""Runner, configuration and cache of latentdist.experiments (with a stand-in experiment, so fast)."""

from __future__ import annotations

import json
import time
import types

import pandas as pd
import pytest

from latentdist.experiments import cache, runner
from latentdist.experiments.config import CLAIMS, get_config
from latentdist.experiments.result import ExperimentResult


@pytest.fixture
def fake_claim(monkeypatch, tmp_path):
    """Replace R1's module by a stand-in that counts its computations and sleeps a little."""
    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "cache"))
    calls = []

    def compute(config, *, progress=True):
        calls.append(config)
        time.sleep(1.0)
        return ExperimentResult("R1", pd.DataFrame({"x": [config["seed"]], "y": [1.5]}), {"s": 1})

    def plot(result, out_dir):
        import matplotlib.pyplot as plt

        from latentdist.experiments.io import save_figure

        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        return save_figure(fig, out_dir, "R1_fake")

    module = types.SimpleNamespace(TITLE="fake", VERSION=1, compute=compute, plot=plot)
    monkeypatch.setattr(runner, "experiment_module", lambda claim: module)
    return module, calls


def test_config_modes_and_overrides():
    for claim in CLAIMS:
        q, f = get_config(claim, "quick"), get_config(claim, "full")
        assert set(q) == set(f), claim
        assert q != f, claim
    assert get_config("R2", "quick", steps=7)["steps"] == 7
    assert get_config("R1", "quick", a2={"steps": 3})["a2"]["steps"] == 3
    assert get_config("R1", "quick")["a2"]["steps"] != 3  # overrides never leak into the defaults
    with pytest.raises(ValueError, match="unknown configuration key 'stepz'"):
        get_config("R2", "quick", stepz=3)
    with pytest.raises(ValueError, match="claim"):
        get_config("R9", "quick")
    with pytest.raises(ValueError, match="mode"):
        get_config("R1", "medium")


def test_hash_changes_with_config_version_and_claim():
    cfg = get_config("R2", "quick")
    key = cache.config_hash("R2", cfg, 1)
    assert key == cache.config_hash("R2", get_config("R2", "quick"), 1)
    assert key != cache.config_hash("R2", get_config("R2", "quick", steps=cfg["steps"] + 1), 1)
    assert key != cache.config_hash("R2", get_config("R2", "quick", lr=cfg["lr"] * (1 + 1e-9)), 1)
    assert key != cache.config_hash("R2", cfg, 2)
    assert key != cache.config_hash("R3", cfg, 1)
    assert key != cache.config_hash("R2", get_config("R2", "full"), 1)
    with pytest.raises(TypeError, match="JSON-like"):
        cache.config_hash("R2", {"x": object()}, 1)


def test_cache_hit_is_instant_and_no_cache_recomputes(fake_claim, tmp_path):
    _, calls = fake_claim
    out = tmp_path / "out"
    first = runner.run_experiment("R1", "quick", out=out)
    assert not first.cached and len(calls) == 1
    t0 = time.perf_counter()
    second = runner.run_experiment("R1", "quick", out=out, write=False)
    assert second.cached and len(calls) == 1
    assert time.perf_counter() - t0 < 0.5  # the stand-in computation alone sleeps 1 s
    pd.testing.assert_frame_equal(first.table, second.table)
    runner.run_experiment("R1", "quick", out=out, use_cache=False)
    assert len(calls) == 2
    runner.run_experiment("R1", "quick", out=out, seed=5)  # a new config is a cache miss
    assert len(calls) == 3 and calls[-1]["seed"] == 5


def test_outputs_written(fake_claim, tmp_path):
    out = tmp_path / "out"
    runner.run_all(["R1"], "quick", out=out)
    for name in ("R1.csv", "R1.json", "R1_fake.png", "R1_fake.pdf", "repro_summary.json"):
        assert (out / name).stat().st_size > 0, name
    meta = json.loads((out / "R1.json").read_text())
    assert meta["mode"] == "quick" and meta["config"] == get_config("R1", "quick")
    assert meta["seconds"] >= 1.0
    assert pd.read_csv(out / "R1.csv")["y"].tolist() == [1.5]
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_mode_and_out_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("LATENTDIST_MODE", raising=False)
    monkeypatch.delenv("LATENTDIST_FIGURES", raising=False)
    assert runner.resolve_mode() == "quick"
    assert str(runner.resolve_out_dir("quick")) == "figures/quick"
    assert str(runner.resolve_out_dir("full")) == "figures"
    monkeypatch.setenv("LATENTDIST_MODE", "full")
    monkeypatch.setenv("LATENTDIST_FIGURES", str(tmp_path))
    assert runner.resolve_mode() == "full"
    assert runner.resolve_out_dir("full") == tmp_path
    monkeypatch.setenv("LATENTDIST_MODE", "fast")
    with pytest.raises(ValueError, match="mode"):
        runner.resolve_mode()
