"""R5's markdown report on a made-up result table: the numbers in the text are the table's."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from latentdist.experiments import r5_report


def _table() -> pd.DataFrame:
    rows = []
    for seed in range(3):
        base = {"seed": seed, "recon_fid": 4.0 + seed, "latent_dg": 2.5, "latent_dg_floor": 2.3,
                "val_sample_fid": 9.0, "class_tv_uniform": 0.05}
        rows.append({**base, "method": "joint", "weakening": "none", "strength": float("nan"), "init": "none",
                     "sample_fid": 11.0 + seed, "prior_gap": 7.0, "stage0_steps": 8600 + 430 * seed,
                     "stage0_best_step": 8170})
        for kind, strength, fid in (("dropout", 0.3, 9.0 + seed), ("width", 8.0, 12.0 + seed)):
            if seed == 2 and kind == "width":  # seed 2 is a headline-only seed: just the chosen DAE
                continue
            rows.append({**base, "method": "dae", "weakening": kind, "strength": strength, "init": "fresh",
                         "sample_fid": fid, "prior_gap": 5.0,
                         "val_sample_fid": 8.0 if kind == "dropout" else 9.5,
                         "stage1_steps": 9030, "stage1_best_step": 8600, "stage2_steps": 8600,
                         "stage2_best_step": 8600})
    return pd.DataFrame(rows)


def _calib() -> pd.DataFrame:
    return pd.DataFrame([{"calibration": "real", "fid": 1.92, "kid": 1.4, "sw2_pixels": 0.0101},
                         {"calibration": "blur_1", "fid": 254.0, "kid": 549.6, "sw2_pixels": 0.081}])


SUMMARY = {"chosen_dae": {"weakening": "dropout", "strength": 0.3},
           "headroom": {"joint_recon_fid_over_floor": 2.6, "within_3x_floor": True,
                        "joint_recon_sw2_pixels_over_floor": 1.4},
           "verdict": {"status": "partial", "reasons": ["made up"]}}


def test_headline_pairs_by_seed_and_prints_the_difference():
    text = r5_report.headline_markdown(_table(), ("dropout", 0.3))
    row = next(line for line in text.splitlines() if line.startswith("| sample FID"))
    # joint 11, 12, 13 against DAE 9, 10, 11: every paired difference is -2
    assert "12.00 ± 1.00" in row and "10.00 ± 1.00" in row and "-2.00 [-2.00, -2.00]" in row
    assert "DAE (dropout p=0.3)" in text


def test_sweep_uses_only_the_sweep_seeds_and_lists_every_point():
    text = r5_report.sweep_markdown(_table())
    lines = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()[2:]}
    assert set(lines) == {"joint AE", "dropout p=0.3", "width 8"}
    # seeds 0 and 1 only: joint sample FID 11, 12 (not seed 2's 13)
    assert "11.50 ± 0.71" in lines["joint AE"] and "9.50 ± 0.71" in lines["dropout p=0.3"]


def test_report_states_choice_headroom_lengths_and_verdict(tmp_path, capsys):
    text = r5_report.report(_table(), SUMMARY, _calib(), {"validate_every": 430})
    assert "**dropout p=0.3**" in text and "check ≤ 3: passes" in text and "**partial** — made up" in text
    assert "real vs real (floor) | 1.92" in text and "| blur_1 | 254.00" in text
    assert "joint: 21.0 epochs trained (range 20–22)" in text
    failing = {**SUMMARY, "headroom": {**SUMMARY["headroom"], "within_3x_floor": False}}
    assert "check ≤ 3: fails" in r5_report.report(_table(), failing, _calib(), {"validate_every": 430})
    # the command reads the files a run writes
    _table().to_csv(tmp_path / "R5.csv", index=False)
    _calib().to_csv(tmp_path / "R5_calibration.csv", index=False)
    (tmp_path / "R5.json").write_text(json.dumps({"summary": SUMMARY, "config": {"validate_every": 430}}))
    r5_report.main([str(tmp_path)])
    assert capsys.readouterr().out.strip() == text


@pytest.mark.parametrize("missing", ["R5.csv", "R5.json", "R5_calibration.csv"])
def test_main_names_a_missing_file(tmp_path, missing):
    for name in ("R5.csv", "R5.json", "R5_calibration.csv"):
        if name != missing:
            (tmp_path / name).write_text("{}")
    with pytest.raises(FileNotFoundError, match=f"^{missing} not in"):
        r5_report.main([str(tmp_path)])


def test_interim_counts_stored_and_missing_units_of_a_partial_full_run(tmp_path, monkeypatch, capsys):
    from latentdist.experiments import r5_dae
    from latentdist.experiments.config import get_config

    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # the full config keeps units in figures/units/R5, relative
    cfg = get_config("R5", "full")
    seeds = list(range(cfg["n_seeds"]))
    planned = [(seed, spec) for seed in seeds[:3] for spec in r5_dae.model_specs(cfg, seed, seeds, seeds[:3])]
    assert len(planned) == 33  # 3 sweep seeds x (joint, 9 weakenings, the init variant)
    for seed, spec in planned[:11]:  # seed 0 done
        row = {"method": spec["method"], "weakening": spec.get("weakening", "none"),
               "strength": spec.get("strength", float("nan")), "init": spec.get("init", "none"), "seed": seed,
               "val_sample_fid": 9.0, "sample_fid": 10.0, "recon_fid": 4.0, "prior_gap": 6.0,
               "latent_dg": 2.5,
               "class_tv_uniform": 0.05}
        r5_dae._store_unit(cfg, r5_dae._unit_key(cfg, seed, spec), {"row": row})
    rows, missing = r5_dae.stored_rows("full")
    assert len(rows) == 11 and missing == 22 + 2 * 2  # the two headline-only seeds wait for the sweep
    r5_report.main(["--interim"])
    out = capsys.readouterr().out
    assert out.startswith("R5 full: 11 units stored, 26 still to train") and "| width 8 | 9.00 |" in out
