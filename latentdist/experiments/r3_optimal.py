"""R3: the optimal latent is data-dependent (docs/theory.md §3, §6 R3).

At a fixed capacity c, minimise D_{G_c}(P_z, P_x) over normalised latents P_z (``optimal_latent``,
learnable particles by default) on one data sample. The found latent should mirror the data:
clusters for the 8-mode ring, a curve-like set for the spiral. Then its D, re-estimated from scratch
with the same settings as the baselines (fresh generators, held-out evaluation), is compared with
N(0, I) and uniform latents at the same capacity and normalisation, all evaluated on an independent
data sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from latentdist._validation import to_numpy
from latentdist.experiments._common import estimate, estimate_row, load_toy, make_family, standard_latents
from latentdist.experiments.io import save_figure
from latentdist.experiments.result import ExperimentResult

__all__ = ["CLAIM", "TITLE", "VERSION", "compute", "plot", "run", "find_optimal"]

CLAIM = "R3"
TITLE = "optimal latents mirror the data"
VERSION = 1


def find_optimal(x, config: dict, family, distance: str, *, seed: int, progress: bool):
    """``optimal_latent`` with the experiment's settings (shared with R4 and R6).

    Callers pass a data sample independent of the one D is later evaluated on, so the found latent never
    saw the evaluation rows; the search's own re-estimate of D is therefore kept minimal (it is not used).
    """
    from latentdist.optimal import optimal_latent

    return optimal_latent(
        x, config["latent_dim"], family, distance, parameterization=config["parameterization"],
        normalization=config["normalization"], steps=config["steps"], n_restarts=1,
        batch_size=config.get("batch_size", 128), lr=config.get("lr", 0.01), distance_steps=1,
        distance_restarts=1, seed=seed, progress=progress,
    )


def compute(config: dict, *, progress: bool = True) -> ExperimentResult:
    """Find the optimal latent per dataset and compare its D with data-independent latents."""
    seed = config["seed"]
    family = make_family(config["family"], config["capacity"], config["width"], config["depth"])
    rows, found = [], {}
    for key, spec in config["datasets"].items():
        ds, x = load_toy(spec, config["n"], seed)
        _, x_search = load_toy(spec, config["n"], seed + 2000)  # independent of the evaluation sample
        opt = find_optimal(x_search, config, family, config["distance"], seed=seed, progress=progress)
        z = to_numpy(opt.latent.sample(config["n"], seed=seed + 7))
        found[key] = {"z": z, "x": to_numpy(x), "labels": ds.labels}
        latents = {**standard_latents(config["latent_dim"]), "optimal": opt.latent}
        for name, latent in latents.items():
            res = estimate(latent, x, family, config["distance"], config, seed=seed + 1, progress=progress)
            rows.append(estimate_row(res, dataset=key, latent=name, capacity=config["capacity"],
                                     family=family.label(), distance=config["distance"]))
    table = pd.DataFrame(rows)
    summary = {"D": {f"{r.dataset}/{r.latent}": [r.value, r.std, r.noise_floor] for r in table.itertuples()},
               "optimal_beats_gaussian": _beats(table, "gaussian"),
               "optimal_beats_uniform": _beats(table, "uniform")}
    return ExperimentResult(CLAIM, table, summary, extras={"found": found})


def _beats(table: pd.DataFrame, baseline: str) -> dict:
    """Per dataset: is D(optimal) below D(baseline) by more than both restart spreads?"""
    out = {}
    for key, grp in table.groupby("dataset"):
        o = grp[grp["latent"] == "optimal"].iloc[0]
        b = grp[grp["latent"] == baseline].iloc[0]
        out[key] = bool(o["value"] + o["std"] < b["value"] - b["std"])
    return out


def plot(result: ExperimentResult, out_dir: str | Path) -> list[Path]:
    """``R3_optimal_latents``: data and found latent per dataset, and D per latent as bars."""
    import matplotlib.pyplot as plt

    found = result.extras["found"]
    t = result.table
    fig, axes = plt.subplots(len(found), 3, figsize=(12, 3.8 * len(found)), squeeze=False)
    for row, (key, f) in zip(axes, found.items(), strict=True):
        x, z = f["x"], f["z"]
        colors = f["labels"] if f["labels"] is not None else np.zeros(len(x))
        row[0].scatter(x[:, 0], x[:, 1], s=3, c=colors, cmap="tab10")
        row[0].set(title=f"{key}: data (normalised)", aspect="equal")
        if z.shape[1] >= 2:
            row[1].scatter(z[:, 0], z[:, 1], s=3, color="C3")
        else:
            row[1].hist(z[:, 0], bins=60, color="C3")
        row[1].set(title=f"{key}: optimal latent ({result.config['parameterization']})")
        sub = t[t["dataset"] == key]
        row[2].bar(sub["latent"], sub["value"], yerr=sub["std"], color=[f"C{i}" for i in range(len(sub))],
                   capsize=3)
        row[2].axhline(sub["noise_floor"].mean(), color="k", ls=":", label="noise floor")
        row[2].set(ylabel=f"D ({result.config['distance']})", title=f"{key}: D at capacity "
                   f"{result.config['capacity']:g}")
        row[2].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_dir, "R3_optimal_latents")


def run(mode: str | None = None, **kwargs) -> pd.DataFrame:
    """Run R3 (cached) and return its tidy table."""
    from latentdist.experiments.runner import run_experiment

    return run_experiment(CLAIM, mode, **kwargs).table


