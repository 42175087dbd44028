"""R7's markdown report on a made-up per-seed table: the numbers in the text are the table's."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from latentdist.experiments import r7_peers, r7_report
from latentdist.experiments.cache import store_file

# model -> (network, sample FID on seeds 0..2, latent D_G excess)
_MODELS = {"gan": ("gan", (30.0, 31.0, 32.0), 0.0), "vae": ("vae", (20.0, 21.0, 22.0), 0.1),
           "dae_gmm": ("dae", (10.0, 12.0, 14.0), 0.2), "dae_flow": ("dae", (11.0, 13.0, 15.0), 0.3)}


def _per_seed() -> pd.DataFrame:
    rows = []
    for model, (network, fids, excess) in _MODELS.items():
        for seed, f in enumerate(fids):
            rows.append({"model": model, "network": network, "seed": seed, "sample_fid": f,
                         "recon_fid": None if network == "gan" else 5.0, "latent_dg": 2.0 + excess,
                         "latent_dg_floor": 2.0, "latent_dg_excess": excess, "decoder_params": 39761,
                         "encoder_params": 0 if network == "gan" else 26000, "prior_params": 0,
                         "train_seconds": 100.0 + seed, "val_sample_fid": f + 1})
    rows.append({"model": "real (floor)", "network": "calibration", "seed": 0, "sample_fid": 1.92})
    return pd.DataFrame(rows)


def _result() -> tuple[pd.DataFrame, dict]:
    per_seed = _per_seed()
    detail = r7_peers.verdict_detail(per_seed, n_boot=200)
    table = r7_peers.with_dae_comparison(r7_peers.summarise(per_seed), detail)
    summary = {"seeds": [0, 1, 2], "dae": {"weakening": "width", "strength": 12.0},
               "tuning_val_sample_fid": {"vae": {"param": "beta", "chosen": 1.0,
                                                 "val_sample_fid": {"0.5": 25.0, "1.0": 21.0}},
                                         "rae": {"param": "lam", "chosen": 0.001, "val_sample_fid":
                                                 {"0.0001": 9.0, "0.001": 8.0, "0.01": 9.5}}},
               "verdict": r7_peers.verdict(per_seed).to_dict(), **detail}
    return table, summary


def test_model_table_prints_mean_sd_params_and_calibration_last():
    table, _ = _result()
    lines = r7_report.models_markdown(table).splitlines()
    gan = next(line for line in lines if line.startswith("| gan "))
    assert "31.00 ± 1.00" in gan and "39,761 / 0 / 0" in gan and "| – |" in gan  # no recon FID for a GAN
    dae = next(line for line in lines if line.startswith("| dae_gmm "))
    assert "12.00 ± 2.00" in dae and "39,761 / 26,000 / 0" in dae
    assert lines[-1].startswith("| real (floor) | 1.92 |")


def test_paired_comparison_reads_each_peer_against_the_best_dae():
    table, summary = _result()
    assert summary["best_dae"] == "dae_gmm"
    text = r7_report.paired_markdown(table, summary["best_dae"])
    # vae - dae_gmm = 10, 9, 8 on seeds 0, 1, 2; gan - dae_gmm = 20, 19, 18; dae_flow is not a peer
    vae = next(line for line in text.splitlines() if line.startswith("| vae "))
    assert "+9.00" in vae and "worse than the DAE" in vae
    assert "dae_flow" not in text


def test_report_states_choice_tuning_and_the_verdict_of_the_rule():
    table, summary = _result()
    text = r7_report.report(table, summary)
    assert "**width 12**" in text and "beta | 0.5: 25.00, 1.0: 21.00 | 1.0 (the grid's end)" in text
    assert "| rae | lam | 0.0001: 9.00, 0.001: 8.00, 0.01: 9.50 | 0.001 |" in text  # inside the grid
    # lower excess D_G goes with higher FID here (gan 0.0 at 31, dae_flow 0.3 at 13): the rule says fail
    assert "**not reproduced**" in text and f"{summary['spearman']:.3f}" in text


def test_main_reads_the_files_a_run_writes(tmp_path, capsys):
    table, summary = _result()
    table.to_csv(tmp_path / "R7.csv", index=False)
    (tmp_path / "R7.json").write_text(json.dumps({"summary": summary, "config": {}}))
    r7_report.main([str(tmp_path)])
    assert "Verdict by the rule" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="R7.json"):
        r7_report.main([str(tmp_path / "missing")])


def test_interim_lists_stored_units_and_flags_damaged_ones(tmp_path):
    rows = [{"model": "vae", "sample_fid": 20.5, "val_sample_fid": 21.0, "latent_dg_excess": 0.1,
             "train_seconds": 300.0}]
    store_file(tmp_path / "R7-vae-0-abc.pkl", (rows, {}))
    (tmp_path / "R7-gan-0-def.pkl").write_bytes(b"not a unit")
    with pytest.warns(RuntimeWarning, match="not a latentdist checkpoint"):
        text = r7_report.interim(tmp_path)
    assert "2 (interim" in text and "| R7-vae-0 | vae | 20.50 | 21.00 | 0.100 | 300 |" in text
    assert "| R7-gan-0 | damaged |" in text
