"""Each experiment R1–R6 runs in a tiny configuration and writes its table, numbers and figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from latentdist.experiments import run_experiment
from latentdist.experiments.r1_distance import a1_closed_form, a2_closed_form

RING = {"ring8": {"name": "gaussian_mixture_ring", "params": {"k": 8}}}

TINY = {
    "R1": {"a1": {"n": 200, "dims": [1], "steps": 5, "restarts": 2},
           "a2": {"n": 200, "lipschitz": [1.0, 4.0], "steps": 5, "restarts": 2, "width": 4},
           "props": {"n": 200, "steps": 5, "restarts": 2, "width": 4}, "batch_size": 32,
           "oracle": {"draws": 2, "check_n": 40}},
    "R2": {"datasets": RING, "n": 200, "capacities": [2, 4], "distances": ["w2"], "steps": 5,
           "batch_size": 32,
           "optimal": {"steps": 5}, "budget_sensitivity": {"multipliers": [1, 2]}},
    "R3": {"datasets": RING, "n": 200, "width": 4, "steps": 5, "batch_size": 32, "search_seeds": 2},
    "R4": {"n": 200, "n_eval": 200, "widths": [4, 8], "critic_width": 8, "steps": 3, "latent_steps": 3},
    "R5": {"n_train": 200, "n_val": 100, "n_eval": 100, "latent_dim": 4, "encoder_channels": 2,
           "decoder": {"channels": 4, "depth": 1}, "sweeps": {"dropout": [0.3], "width": [2], "depth": [0]},
           "max_steps": 6, "validate_every": 3, "patience": 1, "batch_size": 16, "prior_components": [2],
           "latent_dg": {"n": 100, "steps": 3, "width": 4, "n_floor": 2}, "mmd_n": 50, "unit_cache": False},
    "R6": {"datasets": RING, "distances": ["w2", "mmd"], "n": 200, "width": 4, "steps": 5, "optimal_steps": 5,
           "batch_size": 32},
}

EXPECTED = {
    "R1": ({"part", "latent", "capacity", "value", "std", "noise_floor", "closed_form"}, ["R1_closed_forms"]),
    "R2": ({"dataset", "latent", "capacity", "value", "std", "noise_floor"}, ["R2_profiles"]),
    "R3": ({"dataset", "latent", "value", "std", "noise_floor"}, ["R3_optimal_latents"]),
    "R4": ({"latent", "width", "total_params", "coverage", "w2", "w2_floor"},
           ["R4_gan_samples", "R4_gan_quality"]),
    "R5": ({"method", "weakening", "strength", "seed", "sample_fid", "recon_fid", "prior_gap", "latent_dg",
            "sample_sw2_pixels", "prior_nll", "class_tv_uniform"},
           ["R5_tradeoff", "R5_samples", "R5_curves", "R5_paired"]),
    "R6": ({"dataset", "distance", "latent", "value", "noise_floor"}, ["R6_baselines"]),
}


@pytest.mark.parametrize("claim", sorted(TINY))
def test_tiny_experiment_writes_table_numbers_and_figures(claim, tmp_path, request):
    if claim == "R5":
        request.getfixturevalue("mnist_root")  # fails loudly without the MNIST files
    out = tmp_path / "out"
    # use_cache=False: recompute every time (the cache itself is tested in test_experiments_runner.py);
    # the user cache stays in place so the MNIST feature network is trained only once per machine.
    res = run_experiment(claim, "quick", out=out, progress=False, use_cache=False, **TINY[claim])
    columns, figures = EXPECTED[claim]
    assert isinstance(res.table, pd.DataFrame) and len(res.table) > 0
    assert columns <= set(res.table.columns), columns - set(res.table.columns)
    assert (out / f"{claim}.csv").exists() and (out / f"{claim}.json").exists()
    meta = json.loads((out / f"{claim}.json").read_text())
    assert meta["claim"] == claim and meta["seconds"] > 0 and meta["summary"]
    for fig in figures:
        for ext in ("png", "pdf"):
            assert (out / f"{fig}.{ext}").stat().st_size > 1000, f"{fig}.{ext}"
    assert_finite_table(res.table, NAN_BY_DESIGN.get(claim, set()))


#: Columns that are NaN on some rows by design (e.g. the found latent's shape only on its own rows).
NAN_BY_DESIGN = {"R3": {"latent_n_components", "latent_intrinsic_dim"},
                 # R5: a joint AE has no aux decoder or stages 1/2, a DAE no stage 0
                 "R5": {"strength", "aux_params", "stage0_steps", "stage0_best_step", "stage1_steps",
                        "stage1_best_step", "stage2_steps", "stage2_best_step"}}


def assert_finite_table(table: pd.DataFrame, nan_ok: set[str]) -> None:
    """Every numeric cell is finite, except NaN (never inf) in the ``nan_ok`` columns, each of which still
    has a finite value somewhere. (The old check, ``np.isfinite(...).any().all()``, passed a table whose
    columns each had one finite cell among NaNs and infs.)"""
    numeric = table.select_dtypes("number")
    assert len(numeric.columns) > 0, "no numeric columns"
    for col in numeric:
        v = numeric[col].to_numpy(dtype=float)
        if col in nan_ok:
            assert not np.isinf(v).any() and np.isfinite(v).any(), f"column {col!r}: {v}"
        else:
            assert np.isfinite(v).all(), f"column {col!r} has non-finite values: {v}"


@pytest.mark.parametrize("broken", ["nan", "inf", "all_nan_ok_column"])
def test_finite_table_check_fails_on_broken_tables(broken):
    good = pd.DataFrame({"value": [0.1, 0.2], "shape": [np.nan, 3.0], "name": ["a", "b"]})
    assert_finite_table(good, {"shape"})
    bad = good.copy()
    if broken == "nan":
        bad.loc[0, "value"] = np.nan
    elif broken == "inf":
        bad.loc[1, "shape"] = np.inf
    else:
        bad["shape"] = np.nan
    with pytest.raises(AssertionError):
        assert_finite_table(bad, {"shape"})


def test_same_seed_same_numbers(tmp_path):
    a = run_experiment("R2", "quick", write=False, progress=False, use_cache=False, **TINY["R2"])
    b = run_experiment("R2", "quick", write=False, progress=False, use_cache=False, **TINY["R2"])
    assert not b.cached
    pd.testing.assert_frame_equal(a.table.drop(columns="fit_time", errors="ignore"),
                                  b.table.drop(columns="fit_time", errors="ignore"))


def test_closed_forms():
    # docs/theory.md A1 example: d = 1, Sigma = diag(4, 1) gives D = 1.
    assert a1_closed_form([4.0, 1.0], 1) == pytest.approx(1.0)
    assert a1_closed_form([1.0, 0.25, 4.0], 1) == pytest.approx(np.sqrt(1.25))
    # docs/theory.md A2 values for a = 2.
    for L, want in ((1.0, 1.2191), (2.0, 0.7375), (4.0, 0.3908)):
        assert a2_closed_form("gaussian", 2.0, L) == pytest.approx(want, abs=1e-4)
    assert a2_closed_form("uniform", 2.0, 4.0) == pytest.approx(0.5)
    assert a2_closed_form("uniform", 2.0, 2.0) == pytest.approx(1.0)   # both branches agree at L = a
    assert a2_closed_form("uniform", 2.0, 1.0) == pytest.approx(1.5)
    assert a2_closed_form("two_point", 2.0, 4.0) == 0.0
    assert a2_closed_form("two_point", 2.0, 0.5) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="latent"):
        a2_closed_form("cauchy", 2.0, 1.0)
