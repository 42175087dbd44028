"""R7: the DAE among its peers — one MNIST table of latent generative models at equal decoder size, with
the latent's complexity (D_G from N(0, I)) beside every row.

Models (rows), all with the same ``ConvDecoder``, latent dimension, step cap, early-stopping rule and
seeds (see :mod:`latentdist.experiments.r7_models`): a hinge GAN from N(0, I); a VAE sampled from N(0, I),
through an ex-post GMM on its posterior means, and through Dai & Wipf's second stage; an RAE (decoder
gradient penalty) with an ex-post GMM; a WAE-MMD from N(0, I); the joint AE and the DAE, each with an
ex-post GMM and with a RealNVP flow prior.

Tuning: each baseline's one hyper-parameter (GAN lr, VAE β, RAE λ, WAE λ; ``config['tuning']``) is chosen on
the first seed by the sample FID against the *validation* images, never the test images; the DAE's
weakening is R5's validation choice (``dae='R5'`` in full mode reads it from R5's unit files, see
:func:`resolve_dae`; quick mode fixes one).

The verdict (:func:`verdict`, a pure function of the per-seed table) asks whether the points agree with the
thesis "simpler latents give better samples at a fixed decoder": Spearman ρ between the latent's excess
D_G (D_G minus its noise floor) and sample FID over all (model, seed) points, with a percentile bootstrap
95% CI. ``pass`` (status 'reproduced'): ρ > 0 and the CI excludes 0; ``borderline`` ('partial'): ρ > 0
but the CI includes 0 (or too few points); ``fail`` ('not reproduced'): ρ <= 0. It also names every model
whose mean sample FID beats the best DAE row, and those that beat it on every seed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentdist.experiments._common import Verdict, bootstrap_ci, require_columns
from latentdist.experiments.io import save_figure, save_table
from latentdist.experiments.result import ExperimentResult

__all__ = ["CLAIM", "TITLE", "VERSION", "NEEDS_MNIST", "compute", "plot", "run", "verdict", "verdict_detail",
           "summarise", "with_dae_comparison", "check_config", "resolve_dae", "METRICS"]

CLAIM = "R7"
TITLE = "The DAE among its peers on MNIST (equal decoder)"
VERSION = 5  # the claim's result; each network's stored units have their own (r7_models)
#: The CLI fetches MNIST (or stops with one message) before computing anything when a claim needs it.
NEEDS_MNIST = True

#: per-seed columns summarised as mean and sd (ddof=1) in R7.csv
METRICS = ("sample_fid", "recon_fid", "prior_gap", "sample_kid", "sample_precision", "sample_recall",
           "sample_density", "sample_coverage", "class_tv_uniform", "class_entropy", "sample_sw2_pixels",
           "sample_mmd_pixels", "recon_sw2_pixels", "val_sample_fid", "latent_dg", "latent_dg_floor",
           "latent_dg_excess", "decoder_params", "encoder_params", "prior_params", "train_seconds", "steps")

_DAE_MODELS = ("dae_gmm", "dae_flow")
_STATUS = {"pass": "reproduced", "borderline": "partial", "fail": "not reproduced"}


def check_config(config: dict) -> None:
    """Refuse a bad configuration before any training: the DAE's auxiliary decoder must not be larger than
    the shared decoder, and every tuning grid is one parameter with at least one value."""
    from latentdist.experiments.r5_dae import aux_family
    from latentdist.experiments.r7_models import NETWORKS, decoder_family
    from latentdist.train.autoencoder import check_aux_not_larger

    d, dae = int(config["latent_dim"]), resolve_dae(config)
    final = decoder_family(config)
    try:
        aux = aux_family({**config, "loss": "bce"}, dae["weakening"], dae["strength"])
        check_aux_not_larger(aux.build(d, 784, seed=0), final.build(d, 784, seed=0), aux, final)
    except ValueError as exc:
        raise ValueError(f"dae={dae}: {exc}") from exc
    for kind, grid in config["tuning"].items():
        if kind not in NETWORKS:
            raise ValueError(f"tuning.{kind}: unknown network; expected one of {sorted(NETWORKS)}")
        if not (isinstance(grid, dict) and len(grid) == 1 and all(isinstance(v, list) and v
                                                                   for v in grid.values())):
            raise ValueError(f"tuning.{kind} must be {{param: [values, ...]}} with one parameter, "
                             f"got {grid!r}")
    if int(config["n_seeds"]) < 1:
        raise ValueError(f"n_seeds must be >= 1, got {config['n_seeds']}")


#: what the DAE's weakening depends on in R5: R7 may take R5's choice only with R5's networks
_R5_SHARED = ("latent_dim", "encoder_channels", "decoder", "split_seed", "n_val", "batch_size", "lr")


def resolve_dae(config: dict) -> dict:
    """The DAE's weakening: ``config['dae']`` itself, or with ``dae='R5'`` the weakening R5's full sweep
    chose on validation (read from its unit files; ValueError while that sweep is incomplete or when R7's
    networks differ from R5's, since then R5's choice would not be about these networks)."""
    dae = config["dae"]
    if dae != "R5":
        if not (isinstance(dae, dict) and {"weakening", "strength"} <= set(dae)):
            raise ValueError(f"dae must be 'R5' or {{'weakening': ..., 'strength': ...}}, got {dae!r}")
        return dae
    from latentdist.experiments.config import get_config
    from latentdist.experiments.r5_dae import validation_choice

    r5 = get_config("R5", "full")
    differ = [k for k in _R5_SHARED if config[k] != r5[k]]
    if differ:
        raise ValueError(f"dae='R5' takes R5's full-mode choice, made for R5's networks and data; R7 differs "
                         f"in {differ}; give the weakening explicitly instead")
    weakening, strength = validation_choice("full")
    return {"weakening": weakening, "strength": strength}


def _prepare(config: dict, progress: bool) -> tuple[dict, Any, dict]:
    """Config check, R5's data split, the feature network and the reference features."""
    from latentdist.experiments.r5_dae import load_data
    from latentdist.metrics import MNISTFeatures

    check_config(config)
    data = load_data(config)
    feats = MNISTFeatures.load_or_train(progress=progress)
    return data, feats, {"real": feats.features(data["real"]), "val": feats.features(data["val"])}


def _unit(kind: str, hp: dict, data: dict, feats, ref: dict, config: dict, seed: int, progress: bool):
    """Train one network and score all its models: (rows, grids)."""
    from latentdist.experiments.r7_models import score_network, train_network

    t0 = time.perf_counter()
    net = train_network(kind, hp, data, config, seed, progress)
    return score_network(kind, net, time.perf_counter() - t0, data, feats, ref, config, seed, progress)


def _tune(config: dict, data: dict, feats, ref: dict, progress: bool) -> tuple[dict, dict, dict]:
    """Each network's hyper-parameters: a grid of one parameter, chosen on the first seed by the
    validation sample FID of the network's first model (never on test images). Returns the choices, the
    validation scores and the first seed's scored units of the chosen values (reused, not retrained)."""
    from latentdist.experiments.r7_models import NETWORKS

    seed = config["seed"]
    choices, scores, reuse = {kind: {} for kind in NETWORKS}, {}, {}
    grids = [(kind, *next(iter(grid.items()))) for kind, grid in config["tuning"].items()]
    tuned = [(kind, param, v) for kind, param, values in grids if len(values) > 1 for v in values]
    tasks = [_task(config, f"tune-{kind}-{param}-{v}", kind, {param: v}, seed, data, feats, ref, progress)
             for kind, param, v in tuned]
    done = dict(zip(tuned, _run(config, tasks, progress), strict=True))
    for kind, param, values in grids:
        if len(values) == 1:
            choices[kind] = {param: values[0]}
            continue
        units = {v: done[(kind, param, v)] for v in values}
        fids = {}
        for v in values:
            first = [r for r in units[v][0] if r["model"] == NETWORKS[kind][0]][0]
            fids[v] = float(first["val_sample_fid"])
        best = min(fids, key=fids.get)
        choices[kind], reuse[kind] = {param: best}, units[best]
        scores[kind] = {"param": param, "chosen": best,
                        "val_sample_fid": {str(k): f for k, f in fids.items()}}
    return choices, scores, reuse


def _task(config: dict, name: str, kind: str, hp: dict, seed: int, data: dict, feats, ref: dict,
          progress: bool):
    """One (network, hyper-parameters, seed) unit as a task: its identity is the config, the network, its
    hyper-parameters and the seed; the data, feature network and reference features go along unhashed."""
    from latentdist.experiments.r7_models import UNIT_VERSIONS
    from latentdist.tasks import Task

    # the key leaves out what does not change a unit: the seed count, the grids (hp holds the value) and
    # where units are kept, so adding seeds or moving the store reuses finished units
    own = {k: v for k, v in config.items() if k not in ("n_seeds", "tuning", "unit_cache", "unit_dir")}
    return Task(_unit, {"kind": kind, "hp": hp, "config": own, "seed": seed},
                name=f"{CLAIM}-{name}-{seed}", version=UNIT_VERSIONS[kind],
                context={"data": data, "feats": feats, "ref": ref, "progress": progress})


def _run(config: dict, tasks: list, progress: bool) -> list:
    """The tasks' results on the current executor, each cached (when ``config['unit_cache']``) under
    ``cache_root('experiments', 'R7-units')`` once scored, so an interrupted run resumes per network and
    seed."""
    from latentdist._io import cache_root
    from latentdist.tasks import run_tasks

    store = None
    if config.get("unit_dir"):  # full mode: files committed with the results, so a later session resumes
        store = Path(config["unit_dir"])
    elif config.get("unit_cache", False):
        store = cache_root("experiments", f"{CLAIM}-units")
    return run_tasks(tasks, store=store, progress=progress, desc=f"{CLAIM} units")


def _calibration(data: dict, feats, ref: dict, config: dict) -> list[dict]:
    """R5's calibration rows (real-vs-real floor, blurred and noisy real digits) in R7's columns."""
    from latentdist.experiments.r5_dae import calibration_rows

    names = {"real": "real (floor)"}
    rows = []
    for r in calibration_rows(data, feats, ref, config).to_dict("records"):
        name = r.pop("calibration")
        rows.append({"model": names.get(name, name), "network": "calibration", "seed": config["seed"],
                     **{f"sample_{k}": v for k, v in r.items()}})
    return rows


def compute(config: dict, *, progress: bool = True) -> ExperimentResult:
    """Train every network on every seed, score every model; see the module docstring.

    Seed ``s = seed + k`` fixes every network's initialisation and batch order (R5's data split is fixed),
    so within a seed all models are compared on the same data and paired across seeds.
    """
    from latentdist.experiments.r7_models import NETWORKS

    config = {**config, "dae": resolve_dae(config)}
    data, feats, ref = _prepare(config, progress)
    choices, tuning, reuse = _tune(config, data, feats, ref, progress)
    seeds = [config["seed"] + k for k in range(config["n_seeds"])]
    # the tuning run of a chosen value is that network's unit on the first seed: reused, not retrained
    units = [(seed, kind) for seed in seeds for kind in NETWORKS
             if not (seed == config["seed"] and kind in reuse)]
    tasks = [_task(config, kind, kind, choices[kind], seed, data, feats, ref, progress)
             for seed, kind in units]
    done = dict(zip(units, _run(config, tasks, progress), strict=True))
    rows, grids = [], {}
    for seed in seeds:
        for kind in NETWORKS:
            r, g = reuse[kind] if (seed, kind) not in done else done[(seed, kind)]
            rows += r
            if seed == seeds[0]:
                grids.update(g)
    per_seed = pd.DataFrame(rows + _calibration(data, feats, ref, config))
    detail = verdict_detail(per_seed)
    summary = {"seeds": seeds, "dae": config["dae"], "choices": choices, "tuning_val_sample_fid": tuning,
               "verdict": verdict(per_seed).to_dict(), **detail}
    extras = {"grids": grids, "per_seed": per_seed}
    return ExperimentResult(CLAIM, with_dae_comparison(summarise(per_seed), detail), summary, extras=extras)


def with_dae_comparison(table: pd.DataFrame, detail: dict) -> pd.DataFrame:
    """``table`` plus, per peer, its sample FID minus the best DAE row's (mean of the per-seed paired
    differences and its 95% CI from :func:`verdict_detail`), so the table itself says who beats the DAE."""
    out = table.copy()
    paired = detail.get("paired_minus_best_dae", {})
    out["sample_fid_minus_best_dae"] = out["model"].map(lambda m: paired.get(m, {}).get("mean", np.nan))
    for i, side in enumerate(("lo", "hi")):
        out[f"sample_fid_minus_best_dae_ci_{side}"] = out["model"].map(
            lambda m, i=i: paired[m]["ci"][i] if m in paired else np.nan)
    return out


def summarise(per_seed: pd.DataFrame) -> pd.DataFrame:
    """One row per model (table order), calibration rows at the bottom: ``n_seeds`` and, for every metric,
    ``<metric>_mean`` and ``<metric>_sd`` (ddof=1; NaN with one seed)."""
    from latentdist.experiments.r7_models import MODELS

    cols = [m for m in METRICS if m in per_seed]
    g = per_seed.groupby("model", sort=False)
    out = pd.concat([g[cols].mean().add_suffix("_mean"), g[cols].std(ddof=1).add_suffix("_sd")], axis=1)
    out = out[[f"{m}_{s}" for m in cols for s in ("mean", "sd")]]
    out.insert(0, "n_seeds", g["seed"].nunique())
    out.insert(0, "network", g["network"].first())
    order = [m for m in MODELS if m in out.index] + [m for m in out.index if m not in MODELS]
    return out.loc[order].reset_index()


def _spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rho of each row pair of ``a``, ``b`` (k, n): Pearson correlation of the average ranks (as
    ``scipy.stats.spearmanr``, ties included), vectorised over the rows; NaN for a row with a constant side
    (no ranking)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=-1), rankdata(b, axis=-1)
    ra, rb = ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True)
    den = np.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(-1) / den, np.nan)


def verdict(per_seed: pd.DataFrame) -> Verdict:
    """R7's verdict: ``pass`` -> reproduced, ``borderline`` -> partial, ``fail`` -> not reproduced (rule of
    :func:`verdict_detail`); the reasons are its plain sentence and the correlation with its CI."""
    d = verdict_detail(per_seed)
    return Verdict(_STATUS[d["label"]], (d["statement"], f"spearman={d['spearman']:.3f}, "
                                         f"95% CI [{d['ci'][0]:.3f}, {d['ci'][1]:.3f}], n={d['n_points']}"))


def verdict_detail(per_seed: pd.DataFrame, *, x: str = "latent_dg_excess", n_boot: int = 2000,
                   seed: int = 0) -> dict:
    """The R7 rule on the per-seed table (columns ``model``, ``network``, ``seed``, ``sample_fid`` and the
    complexity column ``x``; rows with ``network == 'calibration'`` are ignored). Pure: same table, same
    answer.

    Returns
    -------
    dict
        ``label`` ('pass', 'borderline' or 'fail', see the module docstring), ``spearman``, ``ci``
        (percentile bootstrap 95% over (model, seed) points), ``n_points``, ``statement`` (one plain
        sentence), ``best_dae`` (the DAE row with the lowest mean sample FID), ``paired_minus_best_dae``
        (per peer: mean and percentile-bootstrap 95% CI of its sample FID minus ``best_dae``'s, paired by
        seed), and the peers better than ``best_dae`` on the mean (``beats_dae_on_mean``), on every seed
        (``beats_dae_every_seed``) and with the paired CI below 0 (``beats_dae_ci``).
    """
    require_columns(per_seed, {"model", "network", "seed", "sample_fid", x}, "per_seed")
    pts = per_seed[per_seed["network"] != "calibration"].dropna(subset=["sample_fid", x])
    dg, fid = pts[x].to_numpy(float), pts["sample_fid"].to_numpy(float)
    rho = float(_spearman(dg, fid)) if len(pts) >= 3 else float("nan")
    idx = np.random.default_rng(seed).integers(0, max(len(pts), 1), (n_boot, len(pts)))
    boots = _spearman(dg[idx], fid[idx]) if len(pts) >= 3 else np.empty(0)
    boots = boots[np.isfinite(boots)]  # resamples with one distinct value have no ranking
    lo, hi = (np.quantile(boots, [0.025, 0.975]).tolist() if len(boots) else [float("nan")] * 2)
    if not np.isfinite(rho):
        label, sentence = "borderline", "Too few distinct points to rank latent D_G against sample FID."
    else:
        what = (f"Spearman rho between the latent's D_G above its floor and sample FID is {rho:.2f} "
                f"(95% CI [{lo:.2f}, {hi:.2f}])")
        if rho <= 0:
            label = "fail"
            sentence = f"The points do not agree with 'simpler latents give better samples': {what}."
        elif lo > 0:
            label = "pass"
            sentence = f"The points agree with 'simpler latents give better samples': {what}, excluding 0."
        else:
            label = "borderline"
            sentence = (f"The points lean towards 'simpler latents give better samples' but do not establish "
                        f"it: {what}, including 0.")
    models = per_seed[per_seed["network"] != "calibration"]
    by_seed = models.pivot_table(index="seed", columns="model", values="sample_fid")
    dae = [m for m in _DAE_MODELS if m in by_seed]
    best = min(dae, key=lambda m: by_seed[m].mean()) if dae else None
    on_mean, every, in_ci, paired = [], [], [], {}
    if best is not None:
        for m in by_seed.columns:
            if m in _DAE_MODELS:
                continue
            diff = (by_seed[m] - by_seed[best]).dropna()  # paired by seed; negative = the peer is better
            if not len(diff):
                continue
            mean, d_lo, d_hi = bootstrap_ci(diff.to_numpy(), n_boot=n_boot, seed=seed)
            paired[m] = {"mean": mean, "ci": [d_lo, d_hi], "n": int(len(diff))}
            on_mean += [m] if mean < 0 else []
            every += [m] if (diff < 0).all() else []
            in_ci += [m] if d_hi < 0 else []
        if on_mean:
            sentence += (f" Beating the best DAE row ({best}) on mean sample FID: {', '.join(on_mean)}"
                         f"; with the paired 95% CI below 0: {', '.join(in_ci) or 'none'}.")
        else:
            sentence += f" No peer beats the best DAE row ({best}) on mean sample FID."
    return {"label": label, "spearman": rho, "ci": [float(lo), float(hi)], "n_points": int(len(pts)),
            "statement": sentence, "best_dae": best, "beats_dae_on_mean": on_mean,
            "beats_dae_every_seed": every, "beats_dae_ci": in_ci, "paired_minus_best_dae": paired}


def plot(result: ExperimentResult, out_dir: str | Path) -> list[Path]:
    """``R7_fid_vs_dg`` (sample FID against latent D_G, one point per model and seed), ``R7_samples`` (an
    8x8 grid per model, first seed) and ``R7_seeds.csv`` (the per-seed table behind both)."""
    import matplotlib.pyplot as plt

    per_seed = result.extras["per_seed"]
    paths = [save_table(per_seed, out_dir, "R7_seeds")]
    pts = per_seed[per_seed["network"] != "calibration"]
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    markers = "osD^v<>pXh*"
    for i, (model, sub) in enumerate(pts.groupby("model", sort=False)):
        ax.scatter(sub["latent_dg_excess"], sub["sample_fid"], marker=markers[i % len(markers)], s=40,
                   label=model)
    floor = per_seed.loc[per_seed["model"] == "real (floor)", "sample_fid"]
    if len(floor):
        ax.axhline(floor.mean(), color="g", ls=":", label="real vs real FID")
    ax.axvline(0.0, color="grey", ls="--", label="D_G at its noise floor")
    s = result.summary
    ax.set(xlabel="latent D_G from N(0, I) minus its noise floor (fixed small capacity)",
           ylabel="sample FID (test images)",
           title=(f"R7: rho = {s['spearman']:.2f}, 95% CI [{s['ci'][0]:.2f}, {s['ci'][1]:.2f}] "
                  f"({s['label']})"))
    ax.legend(fontsize=7, ncol=2)
    import textwrap

    fig.text(0.01, 0.01, textwrap.fill(s["statement"], 150), fontsize=6.5, va="bottom")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    paths += save_figure(fig, out_dir, "R7_fid_vs_dg")

    grids = result.extras["grids"]
    cols = min(5, len(grids))
    rows = -(-len(grids) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, imgs) in zip(axes.ravel(), grids.items(), strict=False):
        k = int(np.sqrt(len(imgs)))
        tile = imgs[: k * k].reshape(k, k, 28, 28).transpose(0, 2, 1, 3).reshape(28 * k, 28 * k)
        ax.imshow(tile, cmap="gray", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return paths + save_figure(fig, out_dir, "R7_samples")


def run(mode: str | None = None, **kwargs) -> pd.DataFrame:
    """Run R7 (cached) and return its summary table."""
    from latentdist.experiments.runner import run_experiment

    return run_experiment(CLAIM, mode, **kwargs).table
