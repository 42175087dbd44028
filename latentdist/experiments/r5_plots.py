"""Figures of R5: the trade-off curves, sample grids, training curves and paired differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from latentdist.experiments.io import save_figure
from latentdist.experiments.result import ExperimentResult

__all__ = ["plot_all", "tradeoff", "sample_grids", "training_curves", "paired_bars"]

TRADEOFF_METRICS = (("recon_fid", "recon FID"), ("prior_gap", "prior gap (sample - recon FID)"),
                    ("sample_fid", "sample FID"), ("latent_dg", "latent D_G(N(0,I), codes)"))


def plot_all(result: ExperimentResult, out_dir: str | Path) -> list[Path]:
    """Write ``R5_tradeoff``, ``R5_samples``, ``R5_curves`` and ``R5_paired`` (png and pdf), plus the
    training curves and calibration rows as ``R5_curves.csv`` and ``R5_calibration.csv``."""
    from latentdist.experiments.io import save_table

    save_table(result.extras["curves"], out_dir, "R5_curves")
    save_table(result.extras["calibration"], out_dir, "R5_calibration")
    return (tradeoff(result, out_dir) + sample_grids(result, out_dir) + training_curves(result, out_dir)
            + paired_bars(result, out_dir))


def tradeoff(result: ExperimentResult, out_dir) -> list[Path]:
    """Auxiliary strength -> recon FID, prior gap, sample FID, latent D_G; mean ± sd over sweep seeds."""
    import matplotlib.pyplot as plt

    t = result.table
    dae = t[(t["method"] == "dae") & (t["init"] == "fresh")]
    joint = t[t["method"] == "joint"]
    kinds = [k for k in ("dropout", "width", "depth") if k in set(dae["weakening"])]
    fig, axes = plt.subplots(len(TRADEOFF_METRICS), max(1, len(kinds)), squeeze=False,
                             figsize=(3.4 * max(1, len(kinds)), 2.4 * len(TRADEOFF_METRICS)))
    for j, kind in enumerate(kinds):
        g = dae[dae["weakening"] == kind].groupby("strength")
        for i, (m, label) in enumerate(TRADEOFF_METRICS):
            ax = axes[i, j]
            mean, sd = g[m].mean(), g[m].std(ddof=1).fillna(0.0)
            ax.plot(mean.index, mean.values, "o-", label="DAE")
            ax.fill_between(mean.index, mean - sd, mean + sd, alpha=0.25)
            jm, js = joint[m].mean(), joint[m].std(ddof=1) if len(joint) > 1 else 0.0
            ax.axhline(jm, color="k", ls="--", label="joint AE")
            ax.axhspan(jm - js, jm + js, color="k", alpha=0.08)
            if m == "latent_dg":
                ax.axhline(dae["latent_dg_floor"].mean(), color="g", ls=":", label="noise floor")
            if m in ("recon_fid", "sample_fid"):
                ax.axhline(result.summary["fid_floor"], color="g", ls=":", label="real vs real")
            ax.set(xlabel=f"aux {kind}" + (" (stronger ->)" if kind != "dropout" else " (weaker ->)"),
                   ylabel=label if j == 0 else None)
            if i == 0:
                ax.set_title(f"weakened by {kind}")
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle(f"R5 trade-off (mean ± sd over {dae['seed'].nunique()} seeds)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_dir, "R5_tradeoff")


def _tile(imgs: np.ndarray) -> np.ndarray:
    k = int(np.sqrt(len(imgs)))
    return imgs[: k * k].reshape(k, k, 28, 28).transpose(0, 2, 1, 3).reshape(28 * k, 28 * k)


def sample_grids(result: ExperimentResult, out_dir) -> list[Path]:
    """8x8 samples of the joint AE and the chosen DAE from the same seed."""
    import matplotlib.pyplot as plt

    grids = result.extras["grids"]
    fig, axes = plt.subplots(1, len(grids), figsize=(3.3 * len(grids), 3.5), squeeze=False)
    best = result.summary["chosen_dae"]
    for ax, (name, imgs) in zip(axes[0], grids.items(), strict=True):
        title = "joint AE" if name == "joint" else f"DAE ({best['weakening']}={best['strength']:g})"
        ax.imshow(_tile(np.asarray(imgs, dtype=np.float32) / (255.0 if imgs.dtype == np.uint8 else 1.0)),
                  cmap="gray", vmin=0, vmax=1)
        ax.set(title=f"{title}, seed {result.summary['seeds'][0]}", xticks=[], yticks=[])
    fig.tight_layout()
    return save_figure(fig, out_dir, "R5_samples")


def training_curves(result: ExperimentResult, out_dir) -> list[Path]:
    """Training and validation loss of the joint AE and both DAE stages (first seed)."""
    import matplotlib.pyplot as plt

    c: pd.DataFrame = result.extras["curves"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    names = {("joint", 0): "joint", ("dae", 1): "DAE stage 1 (aux)", ("dae", 2): "DAE stage 2"}
    for (model, stage), g in c.groupby(["model", "stage"]):
        label = names.get((model, int(stage)), f"{model} {stage}")
        line = ax.plot(g["step"], g["loss"], alpha=0.5, lw=1, label=f"{label} train")[0]
        if "val_loss" in g:
            v = g.dropna(subset=["val_loss"])
            ax.plot(v["step"], v["val_loss"], "o-", ms=3, color=line.get_color(), label=f"{label} val")
    ax.set(xlabel="step (within stage)", ylabel="reconstruction loss (BCE per pixel)",
           title="R5 training curves (first seed; early stopping on val)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_dir, "R5_curves")


def paired_bars(result: ExperimentResult, out_dir) -> list[Path]:
    """Mean paired difference DAE - joint per metric with its bootstrap 95% CI (negative: DAE lower)."""
    import matplotlib.pyplot as plt

    paired = result.summary.get("paired_dae_minus_joint", {})
    fig, ax = plt.subplots(figsize=(7, 3.4))
    names = list(paired)
    if names:
        mean = np.array([paired[m]["mean"] for m in names])
        lo = np.array([paired[m]["ci_low"] for m in names])
        hi = np.array([paired[m]["ci_high"] for m in names])
        err = np.nan_to_num(np.vstack([mean - lo, hi - mean]), nan=0.0)
        ax.bar(range(len(names)), mean, yerr=err, capsize=3, color=["C2" if v < 0 else "C3" for v in mean])
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=7)
        ax.set_yscale("symlog", linthresh=1e-2)
    ax.axhline(0, color="k", lw=0.8)
    v = result.summary.get("verdict", {}).get("status", "n/a")
    ax.set(ylabel="DAE - joint (paired)", title=f"R5 paired differences, 95% bootstrap CI; verdict: {v}")
    fig.tight_layout()
    return save_figure(fig, out_dir, "R5_paired")
