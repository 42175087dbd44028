"""R2: generator complexity against the latent (docs/theory.md §3, §6 R2).

For disconnected data (8-mode ring) and a curved manifold (spiral), each put at the 'moment'
normalisation, trace the capacity profile c -> D_{G_c}(P_z, P_x) of a Lipschitz-bounded (or MLP) family
for three latents at the same normalisation: N(0, I), uniform, and a data-shaped latent (the empirical
law of an independent data sample). The ε-complexity C_ε = min{c : D <= ε} uses ε = noise floor +
``eps_k`` × its std, i.e. "indistinguishable from the floor".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from latentdist.experiments._common import family_at, load_toy, standard_latents
from latentdist.experiments.io import save_figure, save_table
from latentdist.experiments.result import ExperimentResult

__all__ = ["CLAIM", "TITLE", "VERSION", "compute", "plot", "run"]

CLAIM = "R2"
TITLE = "generator complexity against the latent"
VERSION = 1


def compute(config: dict, *, progress: bool = True) -> ExperimentResult:
    """Capacity profiles per dataset and latent, and their ε-complexities."""
    from latentdist.profile import complexity_profile, eps_complexity

    frames, eps_rows = [], []
    seed = config["seed"]
    for key, spec in config["datasets"].items():
        _, x = load_toy(spec, config["n"], seed, config["noise"])
        _, shape_sample = load_toy(spec, config["n"], seed + 1000, config["noise"])
        latents = standard_latents(config["latent_dim"], shape_sample)
        families = family_at(config["family"], config["capacities"], config["width"], config["depth"])
        prof = complexity_profile(
            latents, x, families, config["distance"], n_restarts=config["restarts"], steps=config["steps"],
            batch_size=config["batch_size"], lr=config["lr"], holdout=config["holdout"], seed=seed,
            progress=progress,
        )
        prof = prof.assign(dataset=key)
        frames.append(prof)
        # ε = "indistinguishable from the floor": floor + k floor-std (k = 2 is the estimator's rule).
        eps = float(prof["noise_floor"].mean() + config["eps_k"] * prof["noise_floor_std"].mean())
        c_eps = eps_complexity(prof, eps)
        for latent in latents:
            value = _lookup(c_eps, latent)
            eps_rows.append({"dataset": key, "latent": latent, "eps": eps, "eps_complexity": value})
    table = pd.concat(frames, ignore_index=True)
    eps_table = pd.DataFrame(eps_rows)
    c_eps = {f"{r.dataset}/{r.latent}": r.eps_complexity for r in eps_table.itertuples()}
    summary = {"eps_complexity": c_eps,
               "eps": {k: float(v) for k, v in eps_table.groupby("dataset")["eps"].first().items()}}
    summary["data_dependent_below_gaussian"] = {
        k: _below(eps_table[eps_table["dataset"] == k]) for k in config["datasets"]
    }
    return ExperimentResult(CLAIM, table, summary, extras={"eps": eps_table})


def _lookup(c_eps, latent: str) -> float:
    """ε-complexity of one latent from ``eps_complexity``'s output (inf when ε is never reached)."""
    if isinstance(c_eps, pd.DataFrame):
        row = c_eps[c_eps["latent"] == latent]
        others = [c for c in c_eps.columns if c != "latent"]
        col = "eps_complexity" if "eps_complexity" in c_eps else others[0]
        return float(row[col].iloc[0]) if len(row) else float("inf")
    if isinstance(c_eps, pd.Series):
        c_eps = c_eps.to_dict()
    v = c_eps.get(latent)
    return float("inf") if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def _below(eps_table: pd.DataFrame) -> bool:
    """Does the data-shaped latent reach ε at a strictly smaller capacity than N(0, I)?"""
    c = dict(zip(eps_table["latent"], eps_table["eps_complexity"], strict=True))
    return bool(c.get("data-shaped", np.inf) < c.get("gaussian", np.inf))


def plot(result: ExperimentResult, out_dir: str | Path) -> list[Path]:
    """``R2_profiles``: D against capacity per latent with the noise floor and ε, one panel per dataset."""
    import matplotlib.pyplot as plt

    t = result.table
    datasets = list(dict.fromkeys(t["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    eps = result.extras["eps"]
    for ax, key in zip(axes[0], datasets, strict=True):
        sub = t[t["dataset"] == key]
        for i, (latent, grp) in enumerate(sub.groupby("latent", sort=False)):
            grp = grp.sort_values("capacity")
            c_eps = eps[(eps["dataset"] == key) & (eps["latent"] == latent)]["eps_complexity"].iloc[0]
            ax.errorbar(grp["capacity"], grp["value"], yerr=grp["std"], marker="o", capsize=2, color=f"C{i}",
                        label=f"{latent} (C_eps={c_eps:g})")
        floor = sub.groupby("capacity")["noise_floor"].mean()
        ax.plot(floor.index, floor.values, "k:", label="noise floor")
        e = eps[eps["dataset"] == key]["eps"].iloc[0]
        ax.axhline(e, color="grey", lw=0.8, ls="--", label=f"eps = {e:.3g}")
        cfg = result.config
        ax.set(xscale="log", xlabel=f"capacity ({cfg['family']})", ylabel=f"D ({cfg['distance']})",
               title=f"R2: {key}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths = save_figure(fig, out_dir, "R2_profiles")
    paths.append(save_table(eps, out_dir, "R2_eps_complexity"))
    return paths


def run(mode: str | None = None, **kwargs) -> pd.DataFrame:
    """Run R2 (cached) and return its tidy profile table."""
    from latentdist.experiments.runner import run_experiment

    return run_experiment(CLAIM, mode, **kwargs).table
