"""R5 pieces that need no training: verdict rule, paired statistics, config refusal, splits, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentdist.data.splits import check_disjoint, validation_split
from latentdist.experiments import r5_dae
from latentdist.experiments.config import get_config
from latentdist.experiments.r5_stats import bootstrap_ci, paired_differences, paired_summary
from latentdist.experiments.r5_stats import paired_verdict as verdict
from latentdist.metrics.robust import blur_images, calibration_images, class_histogram, noisy_images


def _table(d_fid, d_gap, base_fid=50.0, base_gap=20.0):
    """Headline rows whose paired differences DAE - joint are exactly ``d_fid`` and ``d_gap``."""
    rows = []
    for s, (df, dg) in enumerate(zip(d_fid, d_gap, strict=True)):
        jf, jg = base_fid + 3 * s, base_gap + s  # between-seed spread that pairing removes
        rows.append({"method": "joint", "seed": s, "sample_fid": jf, "prior_gap": jg})
        rows.append({"method": "dae", "seed": s, "sample_fid": jf + df, "prior_gap": jg + dg})
    return pd.DataFrame(rows)


def test_verdict_reproduced_when_samples_better_and_gap_smaller():
    v = verdict(_table([-5.0, -4.0, -6.0, -5.5, -4.5], [-3.0, -2.0, -4.0, -3.0, -2.5]))
    assert v["status"] == "reproduced" and v["samples_better"] and v["gap_smaller"]
    assert v["sample_fid"]["ci_high"] < 0 and v["sample_fid"]["n"] == 5


def test_verdict_not_reproduced_when_dae_worse():
    v = verdict(_table([5.0, 4.0, 6.0, 5.5, 4.5], [3.0, 2.0, 4.0, 3.0, 2.5]))
    assert v["status"] == "not reproduced" and not v["samples_better"] and not v["gap_smaller"]


def test_verdict_borderline_ci_touching_zero_is_only_partial():
    # mean sample-FID difference is negative but one seed goes the other way: the CI reaches above 0,
    # so with a smaller prior gap the claim is only partially reproduced
    v = verdict(_table([-6.0, -5.0, -4.0, -5.0, 8.0], [-1.0, -1.0, -1.0, -1.0, -1.0]))
    assert v["sample_fid"]["mean"] < 0 and v["sample_fid"]["ci_high"] > 0
    assert v["status"] == "partial" and v["gap_smaller"] and not v["samples_better"]


def test_verdict_borderline_better_samples_but_gap_not_smaller():
    v = verdict(_table([-5.0, -4.0, -6.0, -5.5, -4.5], [0.0, 0.0, 0.0, 0.0, 0.0]))
    assert v["status"] == "partial" and v["samples_better"] and not v["gap_smaller"]


def test_verdict_single_seed_cannot_exclude_zero():
    v = verdict(_table([-50.0], [-10.0]))
    assert np.isnan(v["sample_fid"]["ci_high"]) and v["status"] == "partial"


def test_verdict_two_seeds_are_too_few_even_if_the_ci_excludes_zero():
    v = verdict(_table([-30.0, -40.0], [5.0, 6.0]))
    assert v["sample_fid"]["ci_high"] < 0 and not v["samples_better"] and v["status"] == "not reproduced"
    assert "fewer than 3" in v["reasons"][0]
    assert verdict(_table([-30.0, -40.0, -35.0], [5.0, 6.0, 5.0]))["status"] == "partial"


def test_bootstrap_ci_and_paired_summary():
    d = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    lo, hi = bootstrap_ci(d, seed=1)
    assert lo < d.mean() < hi and (lo, hi) == bootstrap_ci(d, seed=1)
    assert bootstrap_ci(d + 10, seed=1) == pytest.approx((lo + 10, hi + 10))
    s = paired_summary(d)
    # t = 3 / (sd / sqrt 5) = 4.243 on 4 degrees of freedom: two-sided p = 0.01324
    assert s["mean"] == 3.0 and s["sd"] == pytest.approx(np.std(d, ddof=1))
    assert s["p_ttest"] == pytest.approx(0.01324, abs=1e-4) and s["p_wilcoxon"] == pytest.approx(0.0625)
    with pytest.raises(ValueError, match="finite"):
        bootstrap_ci([1.0, np.nan])


def test_paired_differences_pairs_by_seed_and_refuses_duplicates():
    t = _table([-1.0, 2.0], [0.0, 0.0]).sample(frac=1.0, random_state=0)
    assert paired_differences(t, "sample_fid").tolist() == [-1.0, 2.0]
    with pytest.raises(ValueError, match="one row per"):
        paired_differences(pd.concat([t, t]), "sample_fid")
    with pytest.raises(ValueError, match="column"):
        paired_differences(t, "nope")


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"sweeps": {"width": [16]}}, "sweeps.width=16: aux_decoder must not be larger"),
        ({"sweeps": {"depth": [3]}}, "sweeps.depth=3: aux_decoder must not be larger"),
        ({"sweeps": {"dropout": [1.0]}}, "sweeps.dropout"),
        ({"sweeps": {"dropout": [-0.1]}}, "sweeps.dropout"),
        ({"n_val": 0}, "n_val"),
        ({"n_train": 59900, "n_val": 500}, "n_train"),
        ({"sweep_seeds": 3}, "sweep_seeds"),
    ],
)
def test_bad_config_refused_before_training(overrides, match, monkeypatch):
    monkeypatch.setattr(r5_dae, "_train", lambda *a, **k: pytest.fail("trained despite a bad config"))
    monkeypatch.setattr(r5_dae, "load_data", lambda *a, **k: pytest.fail("loaded data despite a bad config"))
    with pytest.raises(ValueError, match=match):
        r5_dae.compute(get_config("R5", "quick", **overrides), progress=False)


def test_full_config_is_valid_and_fair():
    cfg = get_config("R5", "full")
    r5_dae.check_config(cfg)
    assert cfg["n_seeds"] >= 5 and cfg["sweep_seeds"] >= 3
    assert all(len(v) >= 3 for v in cfg["sweeps"].values())
    assert cfg["min_steps"] * cfg["batch_size"] >= 20 * (60000 - cfg["n_val"])  # >= 20 epochs


def test_missing_mnist_is_a_value_error_naming_the_variable(monkeypatch):
    import latentdist.data as data

    def missing(*a, **k):
        raise FileNotFoundError("no mnist here")

    monkeypatch.setattr(data, "load_mnist", missing)
    with pytest.raises(ValueError, match="LATENTDIST_DATA"):
        r5_dae.load_data(get_config("R5", "quick"))


def test_units_pair_joint_and_dae_and_choose_on_validation():
    cfg = get_config("R5", "quick")
    specs = r5_dae.model_specs(cfg, 0, [0, 1, 2], [0, 1])
    kinds = {(s.get("weakening"), s.get("init")) for s in specs}
    assert {("dropout", "fresh"), ("width", "fresh"), ("depth", "fresh"), ("dropout", "aux")} <= kinds
    assert r5_dae.model_specs(cfg, 2, [0, 1, 2], [0, 1]) == [{"method": "joint"}]
    t = pd.DataFrame([
        {"method": "dae", "weakening": "width", "strength": 4.0, "init": "fresh", "val_sample_fid": 9.0,
         "sample_fid": 1.0},
        {"method": "dae", "weakening": "dropout", "strength": 0.3, "init": "fresh", "val_sample_fid": 5.0,
         "sample_fid": 99.0},
        {"method": "dae", "weakening": "dropout", "strength": 0.3, "init": "aux", "val_sample_fid": 1.0,
         "sample_fid": 1.0},
    ])
    assert r5_dae.choose_dae(t) == ("dropout", 0.3)  # on validation, never on test; the variant excluded
    # unit keys differ by seed and spec, not by the seed count (so adding seeds reuses cached units)
    k = r5_dae._unit_key(cfg, 0, specs[0])
    assert k == r5_dae._unit_key({**cfg, "n_seeds": 7}, 0, specs[0]) != r5_dae._unit_key(cfg, 1, specs[0])


def test_aux_families_weaken_one_knob_each():
    cfg = get_config("R5", "full")
    final = r5_dae.final_family(cfg)
    c, d = final.channels, final.depth
    assert r5_dae.aux_family(cfg, "dropout", 0.3) == type(final)(c, output="linear", depth=d, dropout=0.3)
    assert r5_dae.aux_family(cfg, "width", 4).channels == 4 and r5_dae.aux_family(cfg, "width", 4).depth == d
    assert r5_dae.aux_family(cfg, "depth", 0).depth == 0 and r5_dae.aux_family(cfg, "depth", 0).channels == c
    with pytest.raises(ValueError, match="weakening"):
        r5_dae.aux_family(cfg, "noise", 1)


def test_validation_split_and_disjointness():
    tr, va = validation_split(100, 10, seed=3)
    assert len(va) == 10 and not set(tr) & set(va) and (va == validation_split(100, 10, seed=3)[1]).all()
    for n_val in (0, 100):
        with pytest.raises(ValueError, match="n_val"):
            validation_split(100, n_val)
    x = np.random.default_rng(0).random((20, 1, 28, 28)).astype(np.float32)
    check_disjoint(x[:10], x[10:])
    with pytest.raises(ValueError, match="overlaps the test set"):
        check_disjoint(x[:10], x[9:])
    with pytest.raises(ValueError, match="empty"):
        check_disjoint(x[:0], x)


def test_class_histogram_and_calibration_images():
    assert class_histogram(np.arange(10))["class_entropy"] == pytest.approx(np.log(10))
    one = class_histogram(np.zeros(50, dtype=int))
    assert one["class_entropy"] == 0.0 and one["class_tv_uniform"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="labels"):
        class_histogram([10])
    x = np.zeros((2, 1, 28, 28), dtype=np.float32)
    x[:, 0, 14, 14] = 1.0
    b = blur_images(x, 1.0)
    assert b.sum() == pytest.approx(x.sum(), rel=1e-4) and b.max() < 0.5  # mass kept, peak spread
    assert np.array_equal(blur_images(x, 0.0), x)
    n = noisy_images(x, 0.1, seed=0)
    assert n.min() >= 0 and n.max() <= 1 and not np.array_equal(n, x)
    cal = calibration_images(x, sigmas=(0.5, 1.5), noise_std=0.2)
    assert list(cal) == ["real", "blur 0.5", "blur 1.5", "noise 0.2"]
    with pytest.raises(ValueError, match="sigma"):
        blur_images(x, -1.0)


def test_module_verdict_uses_the_dae_chosen_on_validation():
    rows = []
    for s in range(5):
        rows.append({"method": "joint", "weakening": "none", "strength": np.nan, "init": "none", "seed": s,
                     "val_sample_fid": 50.0, "sample_fid": 50.0 + s, "prior_gap": 10.0})
        # chosen on validation (lower val FID) but worse on test: the verdict must use it anyway
        rows.append({"method": "dae", "weakening": "dropout", "strength": 0.3, "init": "fresh", "seed": s,
                     "val_sample_fid": 40.0, "sample_fid": 60.0 + s, "prior_gap": 12.0})
        rows.append({"method": "dae", "weakening": "width", "strength": 4.0, "init": "fresh", "seed": s,
                     "val_sample_fid": 45.0, "sample_fid": 30.0 + s, "prior_gap": 5.0})
    v = r5_dae.verdict(pd.DataFrame(rows))
    assert v.status == "not reproduced" and "+10.00" in v.reasons[0]


TINY = {"n_train": 200, "n_val": 100, "n_eval": 100, "latent_dim": 4, "encoder_channels": 2,
        "decoder": {"channels": 4, "depth": 1}, "sweeps": {"dropout": [0.3], "width": [], "depth": []},
        "init_variant": False, "max_steps": 6, "validate_every": 3, "patience": 1, "batch_size": 16,
        "prior_components": [2], "latent_dg": {"n": 100, "steps": 3, "width": 4, "n_floor": 2}, "mmd_n": 50,
        "n_seeds": 3, "sweep_seeds": 2}


@pytest.mark.slow
def test_run_seed_caches_units_that_compute_then_reuses(mnist_root, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "cache"))

    from latentdist.metrics import MNISTFeatures

    # reuse the machine's trained feature network instead of training one in the temporary cache
    feats = MNISTFeatures.load_or_train(progress=False)
    monkeypatch.setattr(MNISTFeatures, "load_or_train", classmethod(lambda cls, **k: feats))
    rows = r5_dae.run_seed(2, "quick", progress=False, **TINY)  # a headline-only seed: needs the sweep first
    assert set(rows["method"]) == {"joint", "dae"} and (rows["seed"] == 2).all()
    monkeypatch.setattr(r5_dae, "_train", lambda *a, **k: pytest.fail("retrained a cached unit"))
    res = r5_dae.compute(get_config("R5", "quick", **TINY), progress=False)
    assert sorted(res.table["seed"].unique()) == [0, 1, 2]
    assert len(res.table) == 2 * 2 + 2 and res.summary["verdict"]["status"] in ("reproduced", "partial",
                                                                                "not reproduced")


def test_units_round_trip_through_unit_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "cache"))
    cfg = {**get_config("R5", "quick"), "unit_dir": str(tmp_path / "units"), "unit_cache": False}
    unit = {"row": {"method": "joint", "seed": 0, "sample_fid": 1.5}, "grid": np.zeros((4, 28, 28), np.uint8),
            "history": pd.DataFrame({"step": [1, 2], "loss": [0.5, 0.4]})}
    key = r5_dae._unit_key(cfg, 0, {"method": "joint"})
    assert r5_dae._load_unit(cfg, key) is None
    r5_dae._store_unit(cfg, key, unit)
    back = r5_dae._load_unit(cfg, key)
    assert back["row"] == unit["row"] and back["history"].equals(unit["history"])
    assert key == r5_dae._unit_key({**cfg, "unit_dir": None}, 0, {"method": "joint"})  # location not in key
    path = r5_dae._unit_file(cfg, key)
    path.write_bytes(path.read_bytes()[:-3])  # a torn file is never half-read: it warns and is recomputed
    with pytest.warns(RuntimeWarning, match=str(path.name)):
        assert r5_dae._load_unit(cfg, key) is None
