"""R6: every toy comparison under W2, Sinkhorn and MMD, with noise floors (docs/theory.md §6 R6).

For each dataset (8-mode ring, spiral) and each distance d, at a fixed capacity: D_d for N(0, I), uniform,
the d = 1 topology latent of R2 (never a copy of the data) and the optimal latent found under that same
distance (R3). The conclusion
"the data-dependent latent has lower D than N(0, I)" is checked per distance (gap larger than both restart
spreads and the floor); a conclusion that holds under only one distance is flagged.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from latentdist.experiments._common import (
    Verdict,
    claim_task,
    estimate,
    estimate_row,
    load_toy,
    make_family,
    require_columns,
    run_claim_tasks,
    standard_latents,
    unit_config,
)
from latentdist.experiments.io import save_figure, save_table
from latentdist.experiments.result import ExperimentResult

__all__ = ["CLAIM", "TITLE", "VERSION", "compute", "plot", "run", "verdict"]

CLAIM = "R6"
TITLE = "conclusions across W2, Sinkhorn and MMD"
VERSION = 2


def _unit(config: dict, key: str, spec: dict, dist: str, progress: bool) -> list[dict]:
    """One (dataset, distance): the optimal latent searched under ``dist``, then D of every latent."""
    from latentdist.experiments.r2_complexity import topology_latent
    from latentdist.experiments.r3_optimal import find_optimal

    seed = config["seed"]
    family = make_family(config["family"], config["capacity"], config["width"], config["depth"])
    opt_cfg = {"latent_dim": config["latent_dim"], "parameterization": "particles", "normalization": "moment",
               "steps": config["optimal_steps"], "batch_size": config["batch_size"], "lr": config["lr"]}
    _, x = load_toy(spec, config["n"], seed)
    _, x_search = load_toy(spec, config["n"], seed + 2000)  # the search never sees evaluation rows
    opt = find_optimal(x_search, opt_cfg, family, dist, seed=seed, progress=progress)
    latents = {**standard_latents(config["latent_dim"]), "topology": topology_latent(spec["name"], spec),
               "optimal": opt.latent}
    rows = []
    for name, latent in latents.items():
        res = estimate(latent, x, family, dist, config, seed=seed + 1, progress=progress)
        rows.append(estimate_row(res, dataset=key, distance=dist, latent=name, capacity=config["capacity"]))
    return rows


def compute(config: dict, *, progress: bool = True) -> ExperimentResult:
    """D per (dataset, distance, latent) and the per-distance verdicts."""
    own = unit_config(config)
    tasks = [claim_task(config, CLAIM, VERSION, f"{key}-{dist}", _unit, progress, config=own, key=key,
                        spec=spec, dist=dist)
             for key, spec in config["datasets"].items() for dist in config["distances"]]
    rows = [row for unit in run_claim_tasks(config, CLAIM, VERSION, tasks, progress) for row in unit]
    result = ExperimentResult(CLAIM, pd.DataFrame(rows), {}, extras={})
    _derive(result)
    return result


#: The latents whose "below N(0, I)" conclusion the verdict judges (uniform is reported, not judged).
DATA_DEPENDENT = ("topology", "optimal")
#: The rule the verdict uses (see :data:`RULES`).
VERDICT_RULE = "floor_sd"


def verdict(table: pd.DataFrame) -> Verdict:
    """R6's verdict from the D table, under rule :data:`VERDICT_RULE`.

    For each (dataset, data-dependent latent) the conclusion "D below N(0, I)" is checked per distance.
    Every conclusion holds under every distance -> reproduced; at least one holds under some distance ->
    partial (conclusions holding under exactly one distance are named); none -> not reproduced.
    """
    require_columns(table, {"dataset", "distance", "latent", "value", "std", "noise_floor",
                            "noise_floor_std"})
    v = _verdicts(table[table["latent"].isin(("gaussian", *DATA_DEPENDENT))], VERDICT_RULE)
    if v.empty:
        return Verdict("not reproduced", ("no data-dependent latent in the table",))
    reasons = [f"{r.dataset}/{r.latent}: below N(0, I) under {r.n_distances_holding}/{r.n_distances} "
               f"distances{' (' + r.flag + ')' if r.flag else ''}" for r in v.itertuples()]
    if (v["n_distances_holding"] == v["n_distances"]).all():
        return Verdict("reproduced", tuple(reasons))
    return Verdict("partial" if (v["n_distances_holding"] > 0).any() else "not reproduced", tuple(reasons))


def _derive(result: ExperimentResult) -> None:
    """Verdicts are derived from the table (cheap), so a rule change never needs a recomputation."""
    verdicts = all_verdicts(result.table)
    result.extras["verdicts"] = verdicts
    flagged = verdicts[verdicts["flag"] != ""]
    result.summary.update({"verdicts": verdicts.to_dict(orient="records"),
                           "flagged_single_distance": flagged.to_dict(orient="records"),
                           "verdict_rule": VERDICT_RULE, "verdict": verdict(result.table).to_dict()})


#: Verdict rules: the gap D(N(0, I)) - D(latent) must exceed both restart sds plus
#: ``'floor'``: the larger noise floor itself (strict: treats the floor's bias, shared by both estimates at
#: equal n, as if it were noise; hard to pass for W2/Sinkhorn, whose floors are large, easy for unbiased MMD);
#: ``'floor_sd'``: twice the larger floor sd (the sampling noise of one estimate at this n).
RULES = ("floor", "floor_sd")


def _verdicts(table: pd.DataFrame, rule: str = "floor") -> pd.DataFrame:
    """Per (dataset, latent != gaussian): under which distances is D below N(0, I) beyond the error?"""
    out = []
    for (key, latent), grp in table[table["latent"] != "gaussian"].groupby(["dataset", "latent"]):
        holds = {}
        for r in grp.itertuples():
            g = table[(table["dataset"] == key) & (table["distance"] == r.distance)
                      & (table["latent"] == "gaussian")].iloc[0]
            if rule == "floor":
                noise = max(r.noise_floor, g["noise_floor"])
            else:
                noise = 2 * max(r.noise_floor_std, g["noise_floor_std"])
            holds[r.distance] = bool(r.value + r.std + g["std"] + noise < g["value"])
        n_hold = sum(holds.values())
        flag = "holds for only one distance" if n_hold == 1 else ""
        out.append({"rule": rule, "dataset": key, "latent": latent,
                    **{f"below_gaussian_{d}": h for d, h in holds.items()},
                    "n_distances_holding": n_hold, "n_distances": len(holds), "flag": flag})
    return pd.DataFrame(out)


def all_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """The verdicts under every rule in :data:`RULES`, stacked."""
    return pd.concat([_verdicts(table, rule) for rule in RULES], ignore_index=True)


def plot(result: ExperimentResult, out_dir: str | Path) -> list[Path]:
    """``R6_baselines``: D and noise floor per latent for each (dataset, distance); ``R6_verdicts.csv``."""
    import matplotlib.pyplot as plt

    _derive(result)  # results cached before a rule change get the current verdicts too
    t = result.table
    datasets, dists = list(dict.fromkeys(t["dataset"])), list(dict.fromkeys(t["distance"]))
    fig, axes = plt.subplots(len(datasets), len(dists), figsize=(3.8 * len(dists), 3.2 * len(datasets)),
                             squeeze=False)
    for i, key in enumerate(datasets):
        for j, dist in enumerate(dists):
            ax = axes[i, j]
            sub = t[(t["dataset"] == key) & (t["distance"] == dist)]
            ax.bar(sub["latent"], sub["value"], yerr=sub["std"], capsize=3,
                   color=[f"C{k}" for k in range(len(sub))])
            fl, fs = sub["noise_floor"].mean(), sub["noise_floor_std"].mean()
            ax.axhline(fl, color="k", ls=":", label="noise floor")
            ax.axhspan(fl - 2 * fs, fl + 2 * fs, color="k", alpha=0.12, label="band: floor ± 2 sd")
            ax.set(title=f"{key}, {dist} (bars: restart sd)", ylabel=f"D ({dist})")
            ax.tick_params(axis="x", labelrotation=30)
            ax.legend(fontsize=7)
    fig.tight_layout()
    paths = save_figure(fig, out_dir, "R6_baselines")
    paths.append(save_table(result.extras["verdicts"], out_dir, "R6_verdicts"))
    return paths


def run(mode: str | None = None, **kwargs) -> pd.DataFrame:
    """Run R6 (cached) and return its tidy table."""
    from latentdist.experiments.runner import run_experiment

    return run_experiment(CLAIM, mode, **kwargs).table
