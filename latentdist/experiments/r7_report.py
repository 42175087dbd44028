"""R7's tables for ``paper_repro.md``, printed from the files a run writes (no number typed by hand).

    python -m latentdist.experiments.r7_report [figures]
    python -m latentdist.experiments.r7_report --interim [figures/units/R7]   # a full run in progress

reads ``R7.csv`` (one row per model, mean and sd over seeds, calibration rows last) and ``R7.json`` (the
summary: the DAE taken from R5, the tuning choices, the verdict) from the directory and prints the model
table, each peer's sample FID paired against the best DAE row, the tuning choices and the verdict.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["report", "interim", "models_markdown", "paired_markdown", "tuning_markdown"]

#: (column, label, format) of the model table, in order
COLUMNS = (
    ("sample_fid", "sample FID", ".2f"), ("recon_fid", "recon FID", ".2f"),
    ("prior_gap", "prior gap", ".2f"), ("sample_kid", "KID", ".1f"),
    ("sample_precision", "precision", ".3f"), ("sample_recall", "recall", ".3f"),
    ("sample_density", "density", ".3f"), ("sample_coverage", "coverage", ".3f"),
    ("class_tv_uniform", "class TV", ".3f"), ("sample_sw2_pixels", "sliced W2, pixels", ".4f"),
    ("latent_dg", "latent D_G", ".3f"), ("latent_dg_floor", "its floor", ".3f"),
)
#: the ``network`` of the calibration rows (real test digits, one evaluation: no seeds, no parameters)
_CALIBRATION = "calibration"


def _pm(row: pd.Series, col: str, fmt: str) -> str:
    mean, sd = row.get(f"{col}_mean", np.nan), row.get(f"{col}_sd", np.nan)
    if not np.isfinite(mean):
        return "–"
    return f"{mean:{fmt}}" + (f" ± {sd:{fmt}}" if np.isfinite(sd) else "")


def _count(row: pd.Series, col: str) -> str:
    v = row.get(f"{col}_mean", np.nan)
    return "–" if not np.isfinite(v) else f"{int(round(v)):,}"


def models_markdown(table: pd.DataFrame) -> str:
    """One line per model (mean ± sd over seeds) and the calibration rows (one evaluation) at the bottom."""
    head = ["model", *(lab for _, lab, _ in COLUMNS), "decoder / encoder / prior params", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for _, r in table.iterrows():
        cells = [_pm(r, c, f) for c, _, f in COLUMNS]
        if r["network"] == _CALIBRATION:
            params, seconds = "", ""
        else:
            params = " / ".join(_count(r, c) for c in ("decoder_params", "encoder_params", "prior_params"))
            seconds = _pm(r, "train_seconds", ".0f")
        lines.append(f"| {r['model']} | " + " | ".join(cells) + f" | {params} | {seconds} |")
    return "\n".join(lines)


def paired_markdown(table: pd.DataFrame, best_dae: str) -> str:
    """Each peer's sample FID minus the best DAE row's, paired by seed, with its bootstrap 95% CI."""
    col = "sample_fid_minus_best_dae"
    rows = table[table[col].notna()] if col in table else table.iloc[:0]
    lines = [f"| model | sample FID − {best_dae} (paired mean) | 95% CI | reading |", "|---|---|---|---|"]
    for _, r in rows.iterrows():
        lo, hi = r[f"{col}_ci_lo"], r[f"{col}_ci_hi"]
        reading = ("beats the DAE" if hi < 0 else "worse than the DAE" if lo > 0
                   else "not distinguishable")
        lines.append(f"| {r['model']} | {r[col]:+.2f} | [{lo:+.2f}, {hi:+.2f}] | {reading} |")
    return "\n".join(lines)


def tuning_markdown(tuning: dict) -> str:
    """Each baseline's tuned parameter: validation sample FID per value (first seed) and the choice, flagged
    when it is the grid's smallest or largest value (the optimum may lie beyond the grid)."""
    lines = ["| network | parameter | validation sample FID per value | chosen |", "|---|---|---|---|"]
    for kind, t in tuning.items():
        per = ", ".join(f"{k}: {v:.2f}" for k, v in t["val_sample_fid"].items())
        grid = [float(k) for k in t["val_sample_fid"]]
        end = " (the grid's end)" if float(t["chosen"]) in (min(grid), max(grid)) else ""
        lines.append(f"| {kind} | {t['param']} | {per} | {t['chosen']}{end} |")
    return "\n".join(lines)


def report(table: pd.DataFrame, summary: dict) -> str:
    """All of R7's markdown: DAE used, models, paired comparison, tuning and the verdict."""
    dae = summary["dae"]
    verdict = summary.get("verdict", {"status": "—", "reasons": ["no verdict"]})
    parts = [
        f"DAE weakening (R5's validation choice): **{dae['weakening']} {dae['strength']:g}**; seeds "
        f"{', '.join(str(s) for s in summary['seeds'])}.", "",
        "Mean ± sd over seeds; calibration rows (one evaluation of real test digits) at the bottom:", "",
        models_markdown(table), "",
        f"Sample FID against the best DAE row ({summary['best_dae']}), paired by seed:", "",
        paired_markdown(table, summary["best_dae"]), "",
        "Tuning (first seed, validation images only):", "",
        tuning_markdown(summary.get("tuning_val_sample_fid", {})), "",
        f"Verdict by the rule: **{verdict['status']}** — {summary['statement']} "
        f"(Spearman ρ = {summary['spearman']:.3f}, 95% CI [{summary['ci'][0]:.3f}, {summary['ci'][1]:.3f}], "
        f"{summary['n_points']} points).",
    ]
    return "\n".join(parts)


def interim(unit_dir: str | Path = "figures/units/R7") -> str:
    """The units a full run has stored so far: one line per (network, hyper-parameters, seed) file with its
    models' sample and validation FID (no verdict: that needs every unit). Reads every digest-checked file
    in ``unit_dir``; the files' names say which unit each is."""
    from latentdist.experiments.cache import load_file

    files = sorted(Path(unit_dir).glob("*.pkl"))
    lines = [f"R7 units stored in {unit_dir}: {len(files)} (interim, no verdict).", "",
             "| unit | model | sample FID | val sample FID | latent D_G − floor | train s |",
             "|---|---|---|---|---|---|"]
    for path in files:
        name, out = path.stem.rsplit("-", 1)[0], load_file(path)  # the name less the config key
        if out is None:
            lines.append(f"| {name} | damaged | | | | |")
            continue
        for r in out[0]:
            lines.append(f"| {name} | {r['model']} | {r['sample_fid']:.2f} | {r['val_sample_fid']:.2f} | "
                         f"{r['latent_dg_excess']:.3f} | {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print :func:`report` for the R7 files in ``argv[0]`` (default ``figures``); ``--interim [dir]`` prints
    :func:`interim` instead."""
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["--interim"]:
        print(interim(*args[1:2]))
        return
    root = Path((args or ["figures"])[0])
    missing = [f for f in ("R7.json", "R7.csv") if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not in {root}; `latentdist repro --only R7` "
                                "writes them")
    meta = json.loads((root / "R7.json").read_text())
    print(report(pd.read_csv(root / "R7.csv"), meta["summary"]))


if __name__ == "__main__":
    main()
