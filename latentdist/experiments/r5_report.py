"""R5's tables for ``paper_repro.md``, printed from the files a run writes (no number typed by hand).

    python -m latentdist.experiments.r5_report [figures]
    python -m latentdist.experiments.r5_report --interim    # a full run still in progress

reads ``R5.csv`` (one row per model and seed), ``R5.json`` (the summary: chosen DAE, verdict, headroom) and
``R5_calibration.csv`` from the directory and prints the headline table (joint AE against the DAE chosen
on validation, mean ± sd over seeds and the paired difference with its bootstrap 95% CI and tests), the
sweep table (every weakening and strength, mean ± sd over the sweep seeds), the calibration rows, the
training lengths, the headroom check and the verdict.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

__all__ = ["report", "interim", "headline_markdown", "sweep_markdown", "calibration_markdown"]

#: (column, label, format) of the headline table, in order
HEADLINE = (
    ("sample_fid", "sample FID", ".2f"), ("recon_fid", "recon FID", ".2f"),
    ("prior_gap", "prior gap (sample − recon FID)", ".2f"), ("sample_kid", "KID (×1000)", ".1f"),
    ("sample_precision", "precision", ".3f"), ("sample_recall", "recall", ".3f"),
    ("sample_density", "density", ".3f"), ("sample_coverage", "coverage", ".3f"),
    ("class_entropy", "class-histogram entropy (nats; uniform 2.303)", ".3f"),
    ("class_tv_uniform", "class-histogram TV from uniform", ".3f"),
    ("prior_nll", "prior NLL of standardised test codes (nats)", ".2f"),
    ("latent_dg", "latent D_G (W2, MLP 32x2)", ".3f"), ("latent_dg_floor", "its noise floor", ".3f"),
    ("sample_sw2_pixels", "sample sliced W2, pixels", ".4f"),
    ("recon_sw2_pixels", "recon sliced W2, pixels", ".4f"),
    ("sample_mmd_pixels", "sample MMD², pixels", ".5f"),
    ("sample_sw2_features", "sample sliced W2, classifier features", ".3f"),
    ("recon_mse", "recon MSE (pixels)", ".5f"),
)
SWEEP = (("val_sample_fid", "val sample FID", ".2f"), ("sample_fid", "sample FID", ".2f"),
         ("recon_fid", "recon FID", ".2f"), ("prior_gap", "prior gap", ".2f"),
         ("latent_dg", "latent D_G", ".3f"), ("class_tv_uniform", "class TV", ".3f"))


def _pm(values: pd.Series, fmt: str) -> str:
    v = values.dropna()
    if len(v) == 0:
        return "—"
    sd = f" ± {v.std(ddof=1):{fmt}}" if len(v) > 1 else ""
    return f"{v.mean():{fmt}}{sd}"


def _label(weakening: str, strength: float) -> str:
    return f"{weakening} {strength:g}" if weakening != "dropout" else f"dropout p={strength:g}"


def headline_markdown(table: pd.DataFrame, best: tuple[str, float]) -> str:
    """Joint AE against the chosen DAE: mean ± sd over seeds and DAE − joint paired by seed."""
    from latentdist.experiments.r5_dae import headline_table
    from latentdist.experiments.r5_stats import paired_differences, paired_summary

    head = headline_table(table, best)
    joint, dae = head[head["method"] == "joint"], head[head["method"] == "dae"]
    lines = [f"| metric | joint AE | DAE ({_label(*best)}) | DAE − joint, paired [95% CI] | t-test p "
             "| Wilcoxon p |", "|---|---|---|---|---|---|"]
    for col, label, fmt in HEADLINE:
        if col not in head:
            continue
        s = paired_summary(paired_differences(head, col))
        diff = f"{s['mean']:+{fmt}} [{s['ci_low']:+{fmt}}, {s['ci_high']:+{fmt}}]"
        lines.append(f"| {label} | {_pm(joint[col], fmt)} | {_pm(dae[col], fmt)} | {diff} | "
                     f"{s['p_ttest']:.3g} | {s['p_wilcoxon']:.3g} |")
    return "\n".join(lines)


def sweep_markdown(table: pd.DataFrame) -> str:
    """Every DAE sweep point (and the joint AE on the same seeds): mean ± sd over the sweep seeds."""
    dae = table[table["method"] == "dae"]
    seeds = sorted(dae["seed"].unique())
    sweep_seeds = [s for s in seeds if (dae["seed"] == s).sum() > 1]  # headline-only seeds have one DAE row
    sub = table[table["seed"].isin(sweep_seeds)]
    lines = ["| model | " + " | ".join(lab for _, lab, _ in SWEEP) + " |", "|---" * (len(SWEEP) + 1) + "|"]
    groups = [("joint AE", sub[sub["method"] == "joint"])]
    for (kind, strength, init), g in sub[sub["method"] == "dae"].groupby(["weakening", "strength", "init"]):
        name = _label(kind, strength) + (", stage 2 from aux" if init == "aux" else "")
        groups.append((name, g))
    for name, g in groups:
        lines.append(f"| {name} | " + " | ".join(_pm(g[c], f) for c, _, f in SWEEP) + " |")
    return "\n".join(lines)


def calibration_markdown(calib: pd.DataFrame) -> str:
    """The calibration rows: real-vs-real floor, blurred and noisy real digits."""
    cols = [("fid", "FID", ".2f"), ("kid", "KID (×1000)", ".1f"), ("precision", "precision", ".3f"),
            ("recall", "recall", ".3f"), ("coverage", "coverage", ".3f"),
            ("sw2_features", "sliced W2, features", ".3f"),
            ("sw2_pixels", "sliced W2, pixels", ".4f"), ("mmd_pixels", "MMD², pixels", ".5f")]
    cols = [c for c in cols if c[0] in calib]
    lines = ["| row | " + " | ".join(lab for _, lab, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for _, r in calib.iterrows():
        name = "real vs real (floor)" if r["calibration"] == "real" else r["calibration"]
        lines.append(f"| {name} | " + " | ".join(f"{r[c]:{f}}" for c, _, f in cols) + " |")
    return "\n".join(lines)


def _training_lengths(table: pd.DataFrame, epoch: int) -> str:
    """Mean trained and best-validated epochs per stage, over every unit."""
    out = []
    for stage, name in ((0, "joint"), (1, "DAE stage 1"), (2, "DAE stage 2")):
        col = f"stage{stage}_steps"
        if col not in table:
            continue
        v = table[col].dropna() / epoch
        b = table[f"stage{stage}_best_step"].dropna() / epoch
        out.append(f"{name}: {v.mean():.1f} epochs trained (range {v.min():.0f}–{v.max():.0f}), best "
                   f"validation at epoch {b.mean():.1f} on average")
    return "; ".join(out)


def report(table: pd.DataFrame, summary: dict, calib: pd.DataFrame, config: dict) -> str:
    """All of R5's markdown: headline, sweep, calibration, training lengths, headroom and verdict."""
    best = (summary["chosen_dae"]["weakening"], float(summary["chosen_dae"]["strength"]))
    h = summary["headroom"]
    epoch = int(config.get("validate_every", 1))
    verdict = summary.get("verdict", {"status": "—", "reasons": ["no paired rows"]})
    parts = [
        f"Chosen DAE (lowest mean validation sample FID over the sweep seeds): **{_label(*best)}**.",
        "", headline_markdown(table, best), "",
        "Sweep (mean ± sd over the sweep seeds; the choice is made on the first column):", "",
        sweep_markdown(table), "",
        "Calibration rows (the reference test digits against other test digits, blurred or noisy):", "",
        calibration_markdown(calib), "",
        f"Training lengths ({epoch} steps = 1 epoch): {_training_lengths(table, epoch)}.", "",
        f"Headroom: joint recon FID / floor = {h['joint_recon_fid_over_floor']:.2f} "
        f"(check ≤ 3: {'passes' if h['within_3x_floor'] else 'fails'}); in pixel sliced W2 "
        f"{h['joint_recon_sw2_pixels_over_floor']:.2f}× the floor.", "",
        f"Verdict by the rule: **{verdict['status']}** — {'; '.join(verdict['reasons'])}.",
    ]
    return "\n".join(parts)


def interim() -> str:
    """Where a resumable full run stands: units stored and missing, and the sweep table so far (no
    verdict: the headline needs every unit)."""
    from latentdist.experiments.r5_dae import stored_rows

    rows, missing = stored_rows("full")
    head = f"R5 full: {len(rows)} units stored, {missing} still to train (interim, no verdict)."
    return head if rows.empty else f"{head}\n\n{sweep_markdown(rows)}"


def main(argv: list[str] | None = None) -> None:
    """Print :func:`report` for the R5 files in ``argv[0]`` (default ``figures``); ``--interim`` prints
    :func:`interim` instead."""
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["--interim"]:
        print(interim())
        return
    root = Path((args or ["figures"])[0])
    missing = [f for f in ("R5.json", "R5.csv", "R5_calibration.csv") if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not in {root}; `latentdist repro --only R5` "
                                "writes them")
    meta = json.loads((root / "R5.json").read_text())
    table = pd.read_csv(root / "R5.csv")
    calib = pd.read_csv(root / "R5_calibration.csv")
    print(report(table, meta["summary"], calib, meta["config"]))


if __name__ == "__main__":
    main()
