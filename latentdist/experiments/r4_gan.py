"""R4: a GAN from a data-dependent latent vs N(0, I) at a fixed generator size (docs/theory.md §6 R4).

The data-dependent latent is the optimal latent of R3 (particles, 'moment' normalisation) found at the
generator's capacity on the 8-mode ring; a GMM prior fitted on it is what the GAN samples from, so the
pipeline's complexity is prior + generator and both are reported (docs/theory.md §3). The same GAN (hinge
loss, lr 1e-3, one critic step per generator step: the recipe that covers the ring in train_gan's tests)
with the same generator family is trained from N(0, I); N(0, I) is then given wider generators to find the
size it needs to match. Quality: modes covered and high-quality fraction (``mode_coverage``) and sample
distances to held-out data (``distribution_distances``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from latentdist._validation import to_numpy
from latentdist.experiments._common import data_affine, load_toy
from latentdist.experiments.io import save_figure
from latentdist.experiments.result import ExperimentResult

__all__ = ["CLAIM", "TITLE", "VERSION", "compute", "plot", "run"]

CLAIM = "R4"
TITLE = "GAN from a data-dependent latent vs N(0, I)"
VERSION = 2

#: The headline quality number (lower is better) used for "beats" and "matches".
KEY_METRIC = "w2"


def _data_latent(x, config: dict, seed: int, progress: bool):
    from latentdist.generators import MLP
    from latentdist.optimal import optimal_latent
    from latentdist.train import fit_prior

    family = MLP(width=config["width"], depth=config["depth"])
    # The search's own re-estimate of D is not used here, so its budget is minimal.
    opt = optimal_latent(x, config["latent_dim"], family, "w2", parameterization="particles",
                         normalization="moment", steps=config["latent_steps"], n_restarts=1,
                         distance_steps=1, distance_restarts=1, seed=seed, progress=progress)
    z = to_numpy(opt.latent.sample(len(x), seed=seed + 1))
    return fit_prior(z, config["prior"]), z


def _evaluate(samples, x_eval, modes, mode_std, seed: int) -> dict:
    """Mode coverage/quality and W2, Sinkhorn, MMD to held-out data, each with its noise floor."""
    from latentdist.metrics import distribution_distances, mode_coverage

    out = {k: float(v) for k, v in mode_coverage(samples, modes, mode_std).items()}
    for name, d in distribution_distances(samples, x_eval, ("w2", "sinkhorn", "mmd"), seed=seed).items():
        out[name] = d["value"]
        out[f"{name}_floor"] = d["floor_mean"]
        out[f"{name}_floor_std"] = d["floor_std"]
    return out


def compute(config: dict, *, progress: bool = True) -> ExperimentResult:
    """Train the GANs and score their samples; see the module docstring."""
    from latentdist.generators import MLP
    from latentdist.latents import Gaussian, normalize
    from latentdist.train import MLPCritic, prior_parameter_count, train_gan

    seed = config["seed"]
    ds, x = load_toy(config["dataset"], config["n"], seed)
    ds_eval, x_eval = load_toy(config["dataset"], config["n_eval"], seed + 500)
    shift, scale = data_affine(ds, x)
    modes = (ds.modes - shift) * scale
    mode_std = ds.mode_std * scale
    prior, z_found = _data_latent(x, config, seed, progress)
    runs = [("data-dependent", prior, config["width"])]
    gauss = normalize(Gaussian(config["latent_dim"]), "moment")
    runs += [("gaussian", gauss, w) for w in config["gaussian_widths"]]
    critic = MLPCritic(width=config["critic_width"])
    rows, samples_for_plot = [], {}
    for rep in range(config["seeds"]):
        for name, latent, width in runs:
            res = train_gan(x, latent, MLP(width=width, depth=config["depth"]), critic, loss=config["loss"],
                            steps=config["steps"], lr_g=config["lr"], lr_d=config["lr"],
                            seed=seed + 100 * rep, progress=progress)
            samples = to_numpy(res.sampler(config["n_eval"], seed=seed + 9 + rep))
            gen_params = sum(p.numel() for p in res.generator.parameters())
            prior_params = prior_parameter_count(latent) if name != "gaussian" else 0
            rows.append({"latent": name, "width": width, "repeat": rep, "generator_params": gen_params,
                         "prior_params": prior_params, "total_params": gen_params + prior_params,
                         **_evaluate(samples, to_numpy(x_eval), modes, mode_std, seed)})
            if rep == 0:
                samples_for_plot[f"{name} (width {width})"] = samples
    table = pd.DataFrame(rows)
    summary = _summarise(table, config)
    extras = {"samples": samples_for_plot, "x": to_numpy(x_eval), "z_found": z_found}
    return ExperimentResult(CLAIM, table, summary, extras)


def _summarise(table: pd.DataFrame, config: dict) -> dict:
    labels = ("latent", "width", "repeat")
    metrics = [c for c in table.columns
               if c not in labels and not c.endswith("params") and "floor" not in c]
    agg = table.groupby(["latent", "width"])[metrics].agg(["mean", "std"])
    dd = table[table["latent"] == "data-dependent"][KEY_METRIC]
    gauss = table[table["latent"] == "gaussian"].groupby("width")[KEY_METRIC]
    same = gauss.mean().get(config["width"], np.nan)
    # "matches": the Gaussian GAN's mean key metric is within one std of the data-dependent one's.
    slack = float(dd.std()) if len(dd) > 1 else 0.0
    match = [w for w, m in gauss.mean().items() if m <= dd.mean() + slack]

    def beats(metric: str, higher_better: bool = False) -> bool:
        """Data-dependent vs N(0, I) at the same width: means apart by more than both seed spreads."""
        a = table[table["latent"] == "data-dependent"][metric]
        b = table[(table["latent"] == "gaussian") & (table["width"] == config["width"])][metric]
        sa = float(a.std()) if len(a) > 1 else 0.0
        sb = float(b.std()) if len(b) > 1 else 0.0
        gap = (a.mean() - b.mean()) if higher_better else (b.mean() - a.mean())
        return bool(gap > sa + sb)

    return {
        "key_metric": KEY_METRIC,
        "data_dependent": {"mean": float(dd.mean()), "std": float(dd.std()) if len(dd) > 1 else None},
        "gaussian_same_width": float(same),
        "data_dependent_beats_gaussian_same_width": bool(dd.mean() < same),
        "beats_beyond_seed_spread": {**{m: beats(m) for m in ("w2", "sinkhorn", "mmd") if m in table},
                                     "coverage": beats("coverage", higher_better=True)},
        "gaussian_width_to_match": float(min(match)) if match else None,
        "per_setting": {f"{lat}/w{w}": {f"{m}_{s}": float(v) for (m, s), v in row.items()}
                        for (lat, w), row in agg.iterrows()},
    }


def plot(result: ExperimentResult, out_dir: str | Path) -> list[Path]:
    """``R4_gan_samples`` (samples per setting) and ``R4_gan_quality`` (key metric against size)."""
    import matplotlib.pyplot as plt

    ex = result.extras
    n = len(ex["samples"]) + 1
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    axes[0, 0].scatter(ex["z_found"][:, 0], ex["z_found"][:, 1], s=2, color="C3")
    axes[0, 0].set(title="found latent (prior fitted on it)", aspect="equal")
    for ax, (name, s) in zip(axes[0, 1:], ex["samples"].items(), strict=True):
        ax.scatter(ex["x"][:, 0], ex["x"][:, 1], s=2, color="0.8")
        ax.scatter(s[:, 0], s[:, 1], s=2, color="C0")
        ax.set(title=name, aspect="equal")
    fig.tight_layout()
    paths = save_figure(fig, out_dir, "R4_gan_samples")

    t = result.table
    fig, ax = plt.subplots(figsize=(5, 3.8))
    def per_size(latent: str) -> pd.DataFrame:
        sub = t[t["latent"] == latent]
        return sub.groupby("total_params")[KEY_METRIC].agg(["mean", "std"]).reset_index()

    g = per_size("gaussian")
    ax.errorbar(g["total_params"], g["mean"], yerr=g["std"].fillna(0), marker="o", capsize=2, label="N(0, I)")
    d = per_size("data-dependent")
    ax.errorbar(d["total_params"], d["mean"], yerr=d["std"].fillna(0), marker="s", color="C3", capsize=2,
                label="data-dependent latent + GMM prior")
    ax.set(xscale="log", xlabel="parameters (generator + prior)", ylabel=f"{KEY_METRIC}(samples, data)",
           title="R4: GAN quality against pipeline size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return paths + save_figure(fig, out_dir, "R4_gan_quality")


def run(mode: str | None = None, **kwargs) -> pd.DataFrame:
    """Run R4 (cached) and return its tidy table."""
    from latentdist.experiments.runner import run_experiment

    return run_experiment(CLAIM, mode, **kwargs).table
