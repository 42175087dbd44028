"""R2: generator complexity against the latent (docs/theory.md §3, §6 R2).

For disconnected data (8-mode ring) and a curved manifold (spiral), each put at the 'moment'
normalisation, trace the capacity profile c -> D_{G_c}(P_z, P_x) of an MLP family indexed by width for
latents at the same normalisation:

* ``gaussian``: N(0, I_2), the data-independent baseline;
* ``topology``: a latent that shares the data's topology, not its coordinates, at the data's intrinsic
  dimension d = 1: a uniform on an interval for the spiral, 8 small Gaussians on a line for the ring;
* ``optimal1d``: particles found by ``optimal_latent`` at d = 1 on a separate data split.

No latent is a copy of the data, so no identity map reaches the floor by construction. The ε-complexity
C_ε = min{width : D <= ε} uses ε = noise floor + ``eps_k`` × its sd ("indistinguishable from the floor").
It is reported in generator parameters and in generator + latent parameters (a mixture's means, sds and
weights; the particles' coordinates); **the verdict uses generator + latent parameters**. Each profile is
measured under W2 and sliced W2, and on the dataset that needed the largest budget (the ring) also with
the optimisation steps ×2 and ×4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from latentdist.experiments._common import (
    Verdict,
    claim_task,
    family_at,
    generator_params,
    latent_params,
    load_toy,
    log_ticks_at,
    particle_latent,
    particles_of,
    require_columns,
    run_claim_tasks,
    unit_config,
)
from latentdist.experiments.io import save_figure, save_table
from latentdist.experiments.result import ExperimentResult

__all__ = ["CLAIM", "TITLE", "VERSION", "compute", "plot", "run", "verdict", "topology_latent", "eps_table"]

CLAIM = "R2"
TITLE = "generator complexity against the latent"
VERSION = 2

#: Which parameter count the verdict compares (the other is reported alongside).
VERDICT_PARAMS = "total_params"
DATA_DEPENDENT = ("topology", "optimal1d")


def topology_latent(name: str, spec: dict) -> object:
    """A d = 1 latent with the data's topology (moment-normalised), never the data's coordinates.

    ``gaussian_mixture_ring`` with k modes: k equal Gaussians on a line, sd 1/20 of their spacing (the
    ring's modes have sd/spacing ≈ 1/30); ``spiral`` (one curve): a uniform on an interval.
    """
    from latentdist.latents import Gaussian, Mixture, Uniform, normalize

    if name == "gaussian_mixture_ring":
        k = int(spec.get("params", {}).get("k", 8))
        comps = [Gaussian(1, mean=[2.0 * j], cov=[[0.1**2]]) for j in range(k)]
        return normalize(Mixture(comps), "moment")
    if name == "spiral":
        return normalize(Uniform(1), "moment")
    raise ValueError(f"no topology latent for dataset {name!r}; expected 'gaussian_mixture_ring' or 'spiral'")


def _search(config: dict, spec: dict, progress: bool) -> list:
    """The d = 1 optimal particles, searched on a split the profiles never see (one task)."""
    from latentdist.generators import MLP
    from latentdist.optimal import optimal_latent

    o = config["optimal"]
    _, x_search = load_toy(spec, config["n"], config["seed"] + 2000, config["noise"])
    opt = optimal_latent(x_search, 1, MLP(width=o["width"], depth=config["depth"]), "w2",
                         parameterization="particles", normalization="moment", steps=o["steps"], n_restarts=1,
                         batch_size=config["batch_size"], lr=config["lr"], distance_steps=1,
                         distance_restarts=1, seed=config["seed"], progress=progress)
    return particles_of(opt.latent).tolist()


def _latents(spec: dict, found: list) -> dict:
    """The three latents of a profile; ``found`` is the dataset's searched d = 1 particles (a task)."""
    from latentdist.latents import Gaussian, normalize

    return {"gaussian": normalize(Gaussian(2), "moment"), "topology": topology_latent(spec["name"], spec),
            "optimal1d": particle_latent(found)}


def _profile(config: dict, key: str, spec: dict, distance: str, mult: int, found: list,
             progress: bool) -> list[dict]:
    """One (dataset, distance, budget) profile over every latent and width (one task)."""
    from latentdist.profile import complexity_profile

    _, x = load_toy(spec, config["n"], config["seed"], config["noise"])
    latents = _latents(spec, found)
    families = family_at(config["family"], config["capacities"], config["width"], config["depth"])
    prof = complexity_profile(
        latents, x, families, distance, n_restarts=config["restarts"], steps=config["steps"] * mult,
        batch_size=config["batch_size"], lr=config["lr"], holdout=config["holdout"], seed=config["seed"],
        progress=progress,
    )
    keep = ["latent", "capacity", "value", "std", "noise_floor", "noise_floor_std"]
    prof = prof[keep].assign(dataset=key, distance=distance, steps=config["steps"] * mult)
    dims = {name: lat.dim for name, lat in latents.items()}
    prof["latent_params"] = prof["latent"].map({n: latent_params(lat) for n, lat in latents.items()})
    fam = {float(f.capacity): f for f in families}
    out_dim = x.shape[1]
    prof["generator_params"] = [generator_params(fam[float(c)], dims[lat], out_dim)
                                for lat, c in zip(prof["latent"], prof["capacity"], strict=True)]
    return prof.to_dict(orient="records")


def _units(config: dict) -> list[tuple]:
    units = [(key, dist, 1) for key in config["datasets"] for dist in config["distances"]]
    sens = config["budget_sensitivity"]
    units += [(sens["dataset"], config["distances"][0], m) for m in sens["multipliers"] if m != 1]
    return units


def eps_table(profiles: pd.DataFrame, eps_k: float) -> pd.DataFrame:
    """C_ε per (dataset, distance, steps, latent) in width, generator and total parameters (inf: never)."""
    rows = []
    for (key, dist, steps), grp in profiles.groupby(["dataset", "distance", "steps"], sort=False):
        eps = float(grp["noise_floor"].mean() + eps_k * grp["noise_floor_std"].mean())
        for latent, sub in grp.groupby("latent", sort=False):
            hit = sub[sub["value"] <= eps].sort_values("capacity")
            first = hit.iloc[0] if len(hit) else None
            gen = float(first["generator_params"]) if first is not None else np.inf
            lat = float(sub["latent_params"].iloc[0])
            rows.append({"dataset": key, "distance": dist, "steps": int(steps), "latent": latent, "eps": eps,
                         "eps_complexity": float(first["capacity"]) if first is not None else np.inf,
                         "generator_params": gen, "latent_params": lat, "total_params": gen + lat,
                         "min_value": float(sub["value"].min())})
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame) -> Verdict:
    """R2's verdict from the C_ε table (:func:`eps_table`), on generator + latent parameters.

    A (dataset, distance, budget) case passes when some data-dependent latent reaches ε with strictly
    fewer total parameters than N(0, I) (N(0, I) never reaching ε counts as infinitely many). All cases
    pass -> reproduced; some -> partial; none -> not reproduced.
    """
    require_columns(table, {"dataset", "distance", "steps", "latent", VERDICT_PARAMS})
    n_pass, reasons, cases = 0, [], list(table.groupby(["dataset", "distance", "steps"], sort=False))
    for (key, dist, steps), grp in cases:
        p = dict(zip(grp["latent"], grp[VERDICT_PARAMS], strict=True))
        gauss = p.get("gaussian", np.inf)
        best_name = min((n for n in DATA_DEPENDENT if n in p), key=lambda n: p[n], default=None)
        best = p[best_name] if best_name else np.inf
        ok = bool(np.isfinite(best) and best < gauss)
        n_pass += ok
        reasons.append(f"{key}/{dist}/{steps} steps: {best_name} {best:g} vs gaussian {gauss:g} total params "
                       f"-> {'pass' if ok else 'fail'}")
    if not cases:
        return Verdict("not reproduced", ("no cases",))
    status = "reproduced" if n_pass == len(cases) else "not reproduced" if n_pass == 0 else "partial"
    return Verdict(status, (f"{n_pass}/{len(cases)} cases pass on {VERDICT_PARAMS}", *reasons))


def compute(config: dict, *, progress: bool = True) -> ExperimentResult:
    """Capacity profiles per dataset, distance and budget, and their ε-complexities."""
    own, units = unit_config(config), _units(config)
    # stage 1: one d = 1 latent search per dataset; stage 2: the profiles, each given its dataset's search
    keys = list(dict.fromkeys(key for key, _, _ in units))
    searches = [claim_task(config, CLAIM, VERSION, f"search-{k}", _search, progress, config=own,
                           spec=config["datasets"][k]) for k in keys]
    found = dict(zip(keys, run_claim_tasks(config, CLAIM, VERSION, searches, progress), strict=True))
    tasks = [claim_task(config, CLAIM, VERSION, f"profile-{key}-{dist}-x{mult}", _profile, progress,
                        config=own, key=key, spec=config["datasets"][key], distance=dist, mult=mult,
                        found=found[key])
             for key, dist, mult in units]
    rows = [row for unit in run_claim_tasks(config, CLAIM, VERSION, tasks, progress) for row in unit]
    table = pd.DataFrame(rows)
    eps = eps_table(table, config["eps_k"])
    v = verdict(eps)
    summary = {"verdict_uses": VERDICT_PARAMS, "verdict": v.to_dict(),
               "eps_complexity": {f"{r.dataset}/{r.distance}/{r.steps}/{r.latent}":
                                  {"width": r.eps_complexity, "generator_params": r.generator_params,
                                   "total_params": r.total_params} for r in eps.itertuples()}}
    return ExperimentResult(CLAIM, table, summary, extras={"eps": eps})


def plot(result: ExperimentResult, out_dir: str | Path) -> list[Path]:
    """``R2_profiles``: D against width per latent, one panel per (dataset, distance, budget)."""
    import matplotlib.pyplot as plt

    t = result.table
    eps = result.extras["eps"]
    cases = list(t.groupby(["dataset", "distance", "steps"], sort=False).groups)
    ncol = min(3, len(cases))
    nrow = -(-len(cases) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.8 * ncol, 5.2 * nrow), squeeze=False)
    for ax, (key, dist, steps) in zip(axes.flat, cases, strict=False):
        sub = t[(t["dataset"] == key) & (t["distance"] == dist) & (t["steps"] == steps)]
        e = eps[(eps["dataset"] == key) & (eps["distance"] == dist) & (eps["steps"] == steps)]
        for i, (latent, grp) in enumerate(sub.groupby("latent", sort=False)):
            grp = grp.sort_values("capacity")
            row = e[e["latent"] == latent].iloc[0]
            ax.errorbar(grp["capacity"], grp["value"], yerr=grp["std"], marker="o", capsize=2, color=f"C{i}",
                        label=f"{latent}: C_eps = {row['total_params']:g} params (gen. + latent)")
        floor = sub.groupby("capacity")[["noise_floor", "noise_floor_std"]].mean()
        ax.plot(floor.index, floor["noise_floor"], "k:", label="noise floor")
        ax.fill_between(floor.index, floor["noise_floor"] - 2 * floor["noise_floor_std"],
                        floor["noise_floor"] + 2 * floor["noise_floor_std"], color="k", alpha=0.12,
                        label="band: floor ± 2 sd")
        ax.axhline(e["eps"].iloc[0], color="grey", lw=0.8, ls="--", label=f"eps = {e['eps'].iloc[0]:.3g}")
        log_ticks_at(ax, sub["capacity"].unique())
        ax.set(xlabel="generator width (MLP)", ylabel=f"D ({dist})",
               title=f"R2: {key}, {dist}, {steps} steps")
        # below the panel: inside it the legend hid curves
        ax.legend(fontsize=6, title="error bars: restart sd", title_fontsize=6, ncol=2, loc="upper center",
                  bbox_to_anchor=(0.5, -0.16))
    for ax in list(axes.flat)[len(cases):]:
        ax.set_visible(False)
    fig.tight_layout()
    paths = save_figure(fig, out_dir, "R2_profiles")
    paths.append(save_table(eps, out_dir, "R2_eps_complexity"))
    return paths


def run(mode: str | None = None, **kwargs) -> pd.DataFrame:
    """Run R2 (cached) and return its tidy profile table."""
    from latentdist.experiments.runner import run_experiment

    return run_experiment(CLAIM, mode, **kwargs).table
