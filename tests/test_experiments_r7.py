"""R7 (the DAE among its peers): the verdict rule on made-up tables, the summary table, helpers, and a tiny
end-to-end run on MNIST."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from latentdist.experiments.config import get_config
from latentdist.experiments.r7_models import MODELS, NETWORKS
from latentdist.experiments.r7_peers import (
    check_config,
    summarise,
    verdict,
    verdict_detail,
    with_dae_comparison,
)

PEERS = [m for m in MODELS if not m.startswith("dae")]


def _table(excess: list[float], fid: list[float], models: list[str] | None = None,
           seeds: int = 1) -> pd.DataFrame:
    """Made-up per-seed rows: model i has complexity excess[i] and sample FID fid[i] (+ seed offsets)."""
    models = models or [f"m{i}" for i in range(len(excess))]
    rows = []
    for s in range(seeds):
        for m, e, f in zip(models, excess, fid, strict=True):
            rows.append({"model": m, "network": "x", "seed": s, "sample_fid": f + 0.1 * s,
                         "latent_dg_excess": e, "latent_dg": e + 1.0, "latent_dg_floor": 1.0})
    return pd.DataFrame(rows)


def test_verdict_pass_when_simpler_latents_sample_better():
    t = _table(list(range(10)), [10.0 * i + 5 for i in range(10)], seeds=3)
    v = verdict_detail(t)
    assert v["label"] == "pass"
    assert v["spearman"] > 0.9 and v["ci"][0] > 0
    assert "agree" in v["statement"] and "do not" not in v["statement"]
    assert verdict(t).status == "reproduced" and v["statement"] in verdict(t).reasons


def test_verdict_fail_when_the_order_is_reversed():
    t = _table(list(range(10)), [100.0 - 10 * i for i in range(10)], seeds=3)
    v = verdict_detail(t)
    assert v["label"] == "fail" and v["spearman"] < 0
    assert verdict(t).status == "not reproduced"
    assert "do not agree" in v["statement"]


def test_verdict_borderline_when_positive_but_the_ci_includes_zero():
    t = _table(list(range(10)), [3, 9, 0, 5, 1, 8, 2, 7, 4, 6])  # Spearman 0.15 over 10 points
    v = verdict_detail(t)
    assert v["label"] == "borderline" and verdict(t).status == "partial"
    assert 0 < v["spearman"] < 0.3 and v["ci"][0] < 0 < v["ci"][1]
    assert "do not establish" in v["statement"]


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    from latentdist.experiments.r7_peers import _spearman

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, (5, 12)).astype(float), rng.normal(size=(5, 12))
    want = [spearmanr(x, y).statistic for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(_spearman(a, b), want, rtol=1e-12)
    assert np.isnan(_spearman(np.ones(5), np.arange(5.0)))


def test_verdict_needs_points_and_ignores_calibration_rows():
    t = _table([0.0, 1.0], [1.0, 2.0])
    assert verdict_detail(t)["label"] == "borderline"  # two points: no ranking to trust
    base = _table(list(range(10)), [10.0 * i for i in range(10)], seeds=2)
    calib = pd.DataFrame([{"model": "real (floor)", "network": "calibration", "seed": 0, "sample_fid": 1e6,
                           "latent_dg_excess": -1e6}])
    both = pd.concat([base, calib], ignore_index=True)
    before = both.copy()
    assert verdict_detail(both) == verdict_detail(base)
    pd.testing.assert_frame_equal(both, before)  # pure: the input is not modified
    with pytest.raises(ValueError, match="sample_fid"):
        verdict(base.drop(columns="sample_fid"))


def test_verdict_names_peers_that_beat_the_dae():
    models = ["gan", "vae", "dae_gmm", "dae_flow"]
    t = _table([0.0, 1.0, 2.0, 3.0], [50.0, 10.0, 20.0, 30.0], models=models, seeds=3)
    v = verdict_detail(t)
    assert v["best_dae"] == "dae_gmm"
    assert v["beats_dae_on_mean"] == ["vae"] and v["beats_dae_every_seed"] == ["vae"]
    assert v["beats_dae_ci"] == ["vae"]  # -10 on every seed: the paired CI is [-10, -10]
    assert v["paired_minus_best_dae"]["vae"]["mean"] == pytest.approx(-10.0)
    assert v["paired_minus_best_dae"]["gan"]["ci"][0] == pytest.approx(30.0)
    assert "vae" in v["statement"]
    table = with_dae_comparison(summarise(t), v).set_index("model")
    assert table.loc["vae", "sample_fid_minus_best_dae_ci_hi"] < 0
    assert np.isnan(table.loc["dae_gmm", "sample_fid_minus_best_dae"])
    t2 = _table([0.0, 1.0, 2.0, 3.0], [50.0, 40.0, 20.0, 30.0], models=models, seeds=3)
    v2 = verdict_detail(t2)
    assert v2["beats_dae_on_mean"] == [] and "No peer beats" in v2["statement"]


def test_summarise_orders_models_then_calibration_with_mean_and_sd():
    t = _table([1.0, 2.0], [10.0, 20.0], models=["dae_gmm", "gan"], seeds=3)
    t = pd.concat([pd.DataFrame([{"model": "real (floor)", "network": "calibration", "seed": 0,
                                  "sample_fid": 2.0}]), t], ignore_index=True)
    s = summarise(t)
    assert s["model"].tolist() == ["gan", "dae_gmm", "real (floor)"]  # table order, calibration last
    row = s.set_index("model").loc["gan"]
    assert row["n_seeds"] == 3
    assert row["sample_fid_mean"] == pytest.approx(20.1)
    assert row["sample_fid_sd"] == pytest.approx(np.std([20.0, 20.1, 20.2], ddof=1))
    assert np.isnan(s.set_index("model").loc["real (floor)", "sample_fid_sd"])  # one seed: no sd


def test_check_config_refuses_a_larger_aux_decoder_and_bad_grids():
    cfg = get_config("R7", "quick")
    check_config(cfg)
    assert {m for ms in NETWORKS.values() for m in ms} == set(MODELS)
    with pytest.raises(ValueError, match="dae"):
        check_config(get_config("R7", "quick", dae={"weakening": "width", "strength": 64}))
    with pytest.raises(ValueError, match="tuning.wae"):
        check_config(get_config("R7", "quick", tuning={"wae": {"lam": []}}))
    with pytest.raises(ValueError, match="tuning.vq"):
        check_config({**cfg, "tuning": {"vq": {"lr": [1.0]}}})


TINY = {"n_seeds": 2, "n_train": 160, "n_val": 48, "n_eval": 64, "encoder_channels": 2,
        "decoder": {"channels": 2, "depth": 1}, "critic_channels": 2, "batch_size": 16, "max_steps": 4,
        "validate_every": 2, "flow_steps": 3, "second_stage": {"steps": 3, "width": 8},
        "prior_components": [2], "dae": {"weakening": "width", "strength": 1}, "mmd_n": 32,
        "latent_dg": {"n": 40, "steps": 3, "width": 4, "n_floor": 2},
        "tuning": {"gan": {"lr": [1e-3]}, "vae": {"beta": [1.0]}, "rae": {"lam": [1e-2]},
                   "wae": {"lam": [1.0, 10.0]}}}


def test_unit_tasks_resume_per_network_and_seed(tmp_path, monkeypatch):
    from latentdist.experiments import r7_peers

    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path))
    calls = []

    def fake_unit(kind, hp, data, feats, ref, config, seed, progress):
        calls.append((kind, seed))
        return [{"model": kind, "seed": seed, "n": len(calls)}], {}

    monkeypatch.setattr(r7_peers, "_unit", fake_unit)
    cfg = {"unit_cache": True, "a": 1}

    def run(cfg, kind="vae", seed=0, hp=None):
        task = r7_peers._task(cfg, kind, kind, hp or {"beta": 1.0}, seed, {}, None, {}, False)
        return r7_peers._run(cfg, [task], False)[0]

    assert run(cfg) == run(cfg) and len(calls) == 1  # read back, not recomputed
    assert list((tmp_path / "experiments" / "R7-units").glob("R7-vae-0-*.pkl"))
    run(cfg, seed=1)               # another seed, another unit
    run({**cfg, "a": 2})           # another config, another unit
    run(cfg, hp={"beta": 2.0})     # other hyper-parameters, another unit
    assert len(calls) == 4
    run({**cfg, "unit_cache": False})  # off: always computed
    assert len(calls) == 5
    run({**cfg, "n_seeds": 7, "tuning": {"wae": {"lam": [1.0]}}})  # not in the key: the first unit again
    assert len(calls) == 5
    kept = tmp_path / "units"
    run({**cfg, "unit_dir": str(kept)})  # full mode keeps units in the repository
    assert len(calls) == 5 + 1 and list(kept.glob("R7-vae-0-*.pkl"))


def test_resolve_dae_takes_r5s_validation_choice_or_refuses(tmp_path, monkeypatch):
    """dae='R5' reads R5's full sweep units (argmin of mean validation sample FID); an incomplete sweep or
    networks other than R5's are refused; an explicit weakening passes through."""
    from latentdist.experiments import r5_dae
    from latentdist.experiments.r7_peers import resolve_dae

    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # R5's unit_dir is relative: figures/units/R5 here
    explicit = {"weakening": "depth", "strength": 1}
    assert resolve_dae({"dae": explicit}) == explicit
    with pytest.raises(ValueError, match="dae must be"):
        resolve_dae({"dae": "R6"})
    with pytest.raises(ValueError, match="differs in"):
        resolve_dae(get_config("R7", "quick", dae="R5"))
    full = get_config("R7", "full")
    assert full["dae"] == "R5"
    with pytest.raises(ValueError, match=r"incomplete \(0 of 27 units"):
        resolve_dae(full)
    r5 = get_config("R5", "full")
    seeds = list(range(r5["n_seeds"]))
    rng = np.random.default_rng(0)
    for seed in seeds[: r5["sweep_seeds"]]:
        for spec in r5_dae.model_specs(r5, seed, seeds, seeds[: r5["sweep_seeds"]]):
            if spec["method"] != "dae" or spec["init"] != "fresh":
                continue
            best = (spec["weakening"], spec["strength"]) == ("width", 8.0)
            row = {**spec, "seed": seed, "val_sample_fid": (5.0 if best else 20.0) + rng.uniform(0, 1)}
            r5_dae._store_unit(r5, r5_dae._unit_key(r5, seed, spec), {"row": row})
    assert resolve_dae(full) == {"weakening": "width", "strength": 8.0}
    assert len(list((tmp_path / "figures" / "units" / "R5").glob("*.pkl"))) == 27


def test_tiny_r7_writes_table_figures_and_a_verdict(tmp_path, mnist_root, monkeypatch):
    from latentdist.experiments import r7_models, run_experiment

    trained = []
    real_train = r7_models.train_network

    def counting(kind, hp, *args, **kwargs):
        trained.append((kind, dict(hp)))
        return real_train(kind, hp, *args, **kwargs)

    monkeypatch.setattr(r7_models, "train_network", counting)
    out = tmp_path / "out"
    res = run_experiment("R7", "quick", out=out, progress=False, use_cache=False, **TINY)
    # 6 networks x 2 seeds, plus the second WAE tuning value; the chosen one's run on seed 0 is reused
    assert len(trained) == 13 and sum(k == "wae" for k, _ in trained) == 3
    t = res.table
    assert t["model"].tolist()[: len(MODELS)] == list(MODELS)
    assert (t["network"].iloc[len(MODELS):] == "calibration").all() and len(t) > len(MODELS)
    for col in ("sample_fid_mean", "sample_fid_sd", "recon_fid_mean", "prior_gap_mean", "sample_kid_mean",
                "sample_precision_mean", "sample_recall_mean", "sample_density_mean", "sample_coverage_mean",
                "class_tv_uniform_mean", "sample_sw2_pixels_mean", "latent_dg_mean", "latent_dg_floor_mean",
                "decoder_params_mean", "encoder_params_mean", "prior_params_mean", "train_seconds_mean"):
        assert col in t, col
    models = t.set_index("model").loc[list(MODELS)]
    assert models["decoder_params_mean"].nunique() == 1  # one shared decoder size
    assert models.loc["gan", "encoder_params_mean"] == 0 and models.loc["vae", "prior_params_mean"] == 0
    assert models.loc["vae_gmm", "prior_params_mean"] > 0
    assert np.isfinite(models["sample_fid_sd"]).all()
    per_seed = res.extras["per_seed"]
    assert set(per_seed["seed"]) == {0, 1}
    # prior gap = sample FID - recon FID, row by row
    ae = per_seed[per_seed["recon_fid"].notna()]
    assert set(ae["network"]) == set(NETWORKS) - {"gan"}
    np.testing.assert_allclose(ae["prior_gap"], ae["sample_fid"] - ae["recon_fid"])
    assert res.summary["label"] in ("pass", "borderline", "fail")
    assert res.summary["verdict"]["status"] in ("reproduced", "partial", "not reproduced")
    assert set(res.summary["tuning_val_sample_fid"]["wae"]["val_sample_fid"]) == {"1.0", "10.0"}
    meta = json.loads((out / "R7.json").read_text())
    assert meta["summary"]["statement"]
    for fig in ("R7_fid_vs_dg", "R7_samples"):
        assert (out / f"{fig}.png").stat().st_size > 1000
    assert (out / "R7_seeds.csv").exists()


def test_gan_trains_the_shared_decoder_with_a_linear_output():
    """A sigmoid output saturates under the critic (every sample black, paper_repro R7): the GAN trains the
    shared decoder's layers with an identity output, so same parameters, no sigmoid, samples clamped later."""
    from torch import nn

    from latentdist.data import load_mnist
    from latentdist.experiments.r7_models import decoder_family, train_network

    cfg = {**get_config("R7", "quick"), **TINY}
    x, _ = load_mnist("test")
    net = train_network("gan", {"lr": 1e-3}, {"train": x[:64], "val": x[64:96]}, cfg, seed=0, progress=False)
    shared = decoder_family(cfg).build(cfg["latent_dim"], 784, seed=0)
    assert isinstance(list(shared.modules())[-1], nn.Sigmoid)
    assert not any(isinstance(m, nn.Sigmoid) for m in net.generator.modules())
    assert sum(p.numel() for p in net.generator.parameters()) == sum(p.numel() for p in shared.parameters())


def test_gan_output_check_records_each_variant_and_step():
    from latentdist.experiments.r7_gan_check import check

    t = check(variants=(("hinge", 1e-3, "sigmoid", 2), ("ns", 1e-3, "linear", 2)), n_images=128, channels=2,
              every=1, progress=False)
    assert len(t) == 4 and set(t["output"]) == {"sigmoid", "linear"}
    assert t["mean_pixel"].between(0, 1).all() and (t["sample_sd"] >= 0).all()  # clamped samples
