"""R3: the optimal latent is data-dependent (docs/theory.md §3, §6 R3).

At a fixed capacity c, minimise D_{G_c}(P_z, P_x) over normalised latents P_z (``optimal_latent``,
learnable particles) on a search sample, once per independent search seed. Each found latent's D,
re-estimated from scratch on an independent evaluation sample (fresh generators, held-out evaluation), is
compared with N(0, I) and uniform latents at the same generator, and with N(0, I) given a wider generator
so that both sides have equal *total* parameters (generator + the particles' coordinates). Whether the
found latent mirrors the data is measured, not eyeballed: its number of connected components
(``n_components`` at a stated radius) and its intrinsic dimension against the data's, on the same number of
points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from latentdist.experiments._common import (
    Verdict,
    claim_task,
    estimate,
    estimate_row,
    generator_params,
    latent_params,
    load_toy,
    make_family,
    particles_of,
    require_columns,
    run_claim_tasks,
    standard_latents,
    unit_config,
)
from latentdist.experiments.io import save_figure
from latentdist.experiments.result import ExperimentResult

__all__ = ["CLAIM", "TITLE", "VERSION", "compute", "plot", "run", "find_optimal", "verdict",
           "equal_total_width", "shape_stats"]

CLAIM = "R3"
TITLE = "optimal latents mirror the data"
VERSION = 2

#: Paired gaps must exceed this many standard errors (over search seeds) for "beats".
SE_K = 2.0
#: The found latent "mirrors" the data's intrinsic dimension within this much.
ID_TOL = 0.5


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


def equal_total_width(config: dict, extra: int, in_dim: int, out_dim: int) -> int:
    """The smallest width (same parity) with >= ``extra`` more generator parameters than the configured."""
    def params(w: int) -> int:
        return generator_params(make_family(config["family"], config["capacity"], w, config["depth"]), in_dim,
                                out_dim)

    target, w = params(config["width"]) + extra, config["width"]
    while params(w) < target:
        w += 2  # even widths: GroupSort/MaxMin activations pair the units
    return w


def shape_stats(points: np.ndarray, scale: float) -> dict:
    """``n_components`` at radius ``scale`` and the MLE intrinsic dimension of a point set (unique rows)."""
    from latentdist.complexity import intrinsic_dimension, n_components

    pts = np.unique(np.asarray(points, dtype=float), axis=0)
    return {"n_components": int(n_components(pts, scale)),
            "intrinsic_dim": float(intrinsic_dimension(pts, k=min(20, len(pts) - 1)))}


def _seed_unit(config: dict, key: str, spec: dict, s: int, progress: bool) -> dict:
    """One (dataset, search seed): search, shape measurements, four D estimates on the evaluation sample."""
    seed = config["seed"]
    family = make_family(config["family"], config["capacity"], config["width"], config["depth"])
    _, x = load_toy(spec, config["n"], seed)
    _, x_search = load_toy(spec, config["n"], seed + 2000 + s)  # never the evaluation rows
    opt = find_optimal(x_search, config, family, config["distance"], seed=seed + s, progress=progress)
    found = particles_of(opt.latent)
    lat_params = latent_params(opt.latent)
    dim, out_dim = config["latent_dim"], x.shape[1]
    wide = equal_total_width(config, lat_params, dim, out_dim)
    m = min(len(found), len(x))  # both shapes on the same number of points
    x_sub = np.asarray(x)[np.random.default_rng(seed + s).choice(len(x), m, replace=False)]
    shape_x, shape_z = shape_stats(x_sub, config["scale"]), shape_stats(found[:m, :-1], config["scale"])
    std = standard_latents(dim)
    runs = [("optimal", opt.latent, config["width"]), ("gaussian", std["gaussian"], config["width"]),
            ("uniform", std["uniform"], config["width"]), ("gaussian_equal_total", std["gaussian"], wide)]
    rows = []
    own = {"latent_n_components": shape_z["n_components"], "latent_intrinsic_dim": shape_z["intrinsic_dim"]}
    for name, latent, width in runs:
        fam = make_family(config["family"], config["capacity"], width, config["depth"])
        res = estimate(latent, x, fam, config["distance"], config, seed=seed + 1 + s, progress=progress)
        gp, lp = generator_params(fam, dim, out_dim), (lat_params if name == "optimal" else 0)
        rows.append(estimate_row(res, dataset=key, search_seed=s, latent=name, width=width,
                                 capacity=config["capacity"], distance=config["distance"],
                                 generator_params=gp, latent_params=lp, total_params=gp + lp,
                                 data_n_components=shape_x["n_components"],
                                 data_intrinsic_dim=shape_x["intrinsic_dim"],
                                 **{k: (v if name == "optimal" else np.nan) for k, v in own.items()}))
    return {"rows": rows, "particles": found}


def verdict(table: pd.DataFrame) -> Verdict:
    """R3's verdict from the per-seed table.

    Per dataset, the paired gap D(N(0, I) at equal total parameters) − D(optimal) over search seeds must
    have mean > :data:`SE_K` standard errors ("beats"); the optimal latent "mirrors" the data when its mean
    component count rounds to the data's and its mean intrinsic dimension is within :data:`ID_TOL`.
    Every dataset beats and mirrors -> reproduced; at least one beats -> partial; none -> not reproduced.
    """
    require_columns(table, {"dataset", "search_seed", "latent", "value", "data_n_components",
                            "data_intrinsic_dim", "latent_n_components", "latent_intrinsic_dim"})
    beats, mirrors, reasons = 0, 0, []
    datasets = list(dict.fromkeys(table["dataset"]))
    for key in datasets:
        t = table[table["dataset"] == key]
        wide = t[t["latent"] == "gaussian_equal_total"].set_index("search_seed")["value"]
        opt = t[t["latent"] == "optimal"].set_index("search_seed")
        gaps = (wide - opt["value"]).dropna().to_numpy()
        se = float(np.std(gaps, ddof=1) / np.sqrt(len(gaps))) if len(gaps) > 1 else np.inf
        ok = bool(len(gaps) and gaps.mean() > SE_K * se)
        nc, idim = float(opt["latent_n_components"].mean()), float(opt["latent_intrinsic_dim"].mean())
        dnc, did = float(t["data_n_components"].mean()), float(t["data_intrinsic_dim"].mean())
        mirror = bool(round(nc) == round(dnc) and abs(idim - did) <= ID_TOL)
        beats += ok
        mirrors += mirror
        gap_text = f"{gaps.mean():.3f} (se {se:.3f}, {len(gaps)} seeds)" if len(gaps) else "n/a"
        reasons.append(f"{key}: gap vs N(0,I) at equal total params {gap_text} -> "
                       f"{'beats' if ok else 'does not beat'}; components {nc:.1f} vs data {dnc:.0f}, "
                       f"intrinsic dim {idim:.2f} vs {did:.2f} -> "
                       f"{'mirrors' if mirror else 'does not mirror'}")
    n = len(datasets)
    status = ("reproduced" if n and beats == n and mirrors == n else "partial" if beats
              else "not reproduced")
    return Verdict(status, tuple(reasons))


def compute(config: dict, *, progress: bool = True) -> ExperimentResult:
    """Search the optimal latent per dataset and seed; compare its D and shape with the baselines."""
    rows, found, own = [], {}, unit_config(config)
    units = [(key, spec, s) for key, spec in config["datasets"].items()
             for s in range(config["search_seeds"])]
    tasks = [claim_task(config, CLAIM, VERSION, f"{key}-seed{s}", _seed_unit, progress, config=own, key=key,
                        spec=spec, s=s) for key, spec, s in units]
    for (key, _, _), out in zip(units, run_claim_tasks(config, CLAIM, VERSION, tasks, progress), strict=True):
        rows += out["rows"]
        found.setdefault(key, np.asarray(out["particles"], dtype=float))
    table = pd.DataFrame(rows)
    agg = table.groupby(["dataset", "latent"])["value"].agg(["mean", "std"])
    v = verdict(table)
    summary = {"D_mean_sd_over_search_seeds": {f"{k}/{lat}": [float(r["mean"]), float(r["std"])]
                                               for (k, lat), r in agg.iterrows()},
               "verdict": v.to_dict()}
    data = {key: load_toy(spec, config["n"], config["seed"]) for key, spec in config["datasets"].items()}
    extras = {"found": {k: {"z": found[k][:, :-1], "x": np.asarray(data[k][1]), "labels": data[k][0].labels}
                        for k in found}}
    return ExperimentResult(CLAIM, table, summary, extras=extras)


def plot(result: ExperimentResult, out_dir: str | Path) -> list[Path]:
    """``R3_optimal_latents``: data, the first seed's found particles, and D per latent (mean ± sd)."""
    import matplotlib.pyplot as plt

    found = result.extras["found"]
    t = result.table
    fig, axes = plt.subplots(len(found), 3, figsize=(13, 3.9 * len(found)), squeeze=False)
    for row, (key, f) in zip(axes, found.items(), strict=True):
        x, z = f["x"], f["z"]
        colors = f["labels"] if f["labels"] is not None else np.zeros(len(x))
        row[0].scatter(x[:, 0], x[:, 1], s=3, c=colors, cmap="tab10")
        row[0].set(title=f"{key}: data (normalised)", aspect="equal")
        sub = t[t["dataset"] == key]
        opt = sub[sub["latent"] == "optimal"]
        row[1].scatter(z[:, 0], z[:, 1], s=6, color="C3")
        first, data = opt.iloc[0], sub.iloc[0]
        row[1].set(aspect="equal", title=f"found particles (seed 0): {first['latent_n_components']:.0f} "
                   f"comp., ID {first['latent_intrinsic_dim']:.2f}\n(data: "
                   f"{data['data_n_components']:.0f} comp., ID {data['data_intrinsic_dim']:.2f})")
        g = sub.groupby("latent", sort=False)
        means, sds, params = g["value"].mean(), g["value"].std().fillna(0), g["total_params"].first()
        labels = [f"{name}\n({params[name]:.0f} p.)" for name in means.index]
        colors = [f"C{i}" for i in range(len(means))]
        row[2].bar(labels, means.values, yerr=sds.values, capsize=3, color=colors)
        fl, fs = sub["noise_floor"].mean(), sub["noise_floor_std"].mean()
        row[2].axhline(fl, color="k", ls=":", label="noise floor")
        row[2].axhspan(fl - 2 * fs, fl + 2 * fs, color="k", alpha=0.12, label="band: floor ± 2 sd")
        row[2].set(ylabel=f"D ({result.config['distance']})",
                   title=f"{key}: D, mean ± sd over {sub['search_seed'].nunique()} search seeds")
        row[2].tick_params(axis="x", labelsize=7)
        row[2].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_dir, "R3_optimal_latents")


def run(mode: str | None = None, **kwargs) -> pd.DataFrame:
    """Run R3 (cached) and return its tidy table."""
    from latentdist.experiments.runner import run_experiment

    return run_experiment(CLAIM, mode, **kwargs).table
