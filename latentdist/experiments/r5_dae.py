"""R5: Decoupled Autoencoder vs joint training on MNIST (docs/theory.md §4, §6 R5).

* Joint AE: encoder f and decoder g trained together on reconstruction.
* DAE: stage 1 trains f with a weaker auxiliary decoder (fewer channels, optional dropout), stage 2 freezes
  f and trains g at full size.
* Both: a GMM prior is fitted on f#P_x and samples are g(z), z ~ prior.

Compared at equal final decoder size, with a smaller final decoder, and across auxiliary-decoder strengths
(channels). Metrics (``mnist_metrics``) live in the feature space of the toolkit's self-trained MNIST
classifier: FID, KID, precision/recall, density/coverage; plus reconstruction MSE on test images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from latentdist._validation import to_numpy
from latentdist.experiments.io import save_figure
from latentdist.experiments.result import ExperimentResult

__all__ = ["CLAIM", "TITLE", "VERSION", "compute", "plot", "run"]

CLAIM = "R5"
TITLE = "DAE vs joint autoencoder on MNIST"
VERSION = 3
#: The CLI fetches MNIST (or stops with one message) before computing anything when a claim needs it.
NEEDS_MNIST = True


def _score(res, x_train, real, config: dict, seed: int) -> tuple[dict, np.ndarray]:
    """Fit the prior on the codes, sample, and compute the metrics; returns (metrics, 64 sample images)."""
    import torch

    from latentdist.metrics import mnist_metrics
    from latentdist.train import GenerativePipeline, fit_prior, prior_parameter_count

    prior = fit_prior(res.encode(x_train), config["prior"])
    pipe = GenerativePipeline(prior, res.decoder, output_shape=(1, 28, 28))
    fake = pipe.sample(config["n_eval"], seed=seed).clamp(0, 1)
    raw = mnist_metrics(real, fake, seed=seed)
    metrics = {k: float(v) for k, v in raw.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    recon = res.reconstruct(real)
    metrics["recon_mse"] = float(torch.mean((recon - torch.as_tensor(real)) ** 2))
    metrics["decoder_params"] = int(sum(p.numel() for p in res.decoder.parameters()))
    metrics["prior_params"] = int(prior_parameter_count(prior))
    return metrics, to_numpy(fake[:64]).reshape(-1, 28, 28)


def compute(config: dict, *, progress: bool = True) -> ExperimentResult:
    """Train joint AEs and DAEs over ``n_seeds`` seeds and score them; see the module docstring.

    Seed ``s = seed + k`` fixes the training subset, the evaluation images, every network's
    initialisation and batch order, so within one seed all models are compared on the same data.
    The auxiliary strength used for the small-decoder DAE is the one with the lowest FID *averaged over
    seeds*. Each seed also records ``fid_floor``: the metrics of a second, disjoint set of real test
    images against the evaluation images (what a perfect generator would score at this ``n``).
    """
    from latentdist.data import load_mnist
    from latentdist.generators import ConvDecoder
    from latentdist.metrics import mnist_metrics
    from latentdist.train import ConvEncoder, train_autoencoder, train_dae

    rows, grids = [], {}
    seeds = [config["seed"] + k for k in range(config.get("n_seeds", 1))]
    enc = ConvEncoder(channels=config["encoder_channels"], latent_dim=config["latent_dim"])
    n_eval, big, small = config["n_eval"], config["decoder_channels"], config["small_channels"]
    # the DAE's final decoder gets as many steps as the joint AE's decoder (stage2_steps == joint_steps)
    stages = {"stage1_steps": config["stage1_steps"], "stage2_steps": config["stage2_steps"],
              "aux_dropout": config["aux_dropout"]}
    data: dict = {}
    for seed in seeds:
        x, _ = load_mnist("train", n=config["n_train"], seed=seed)
        test, _ = load_mnist("test", n=2 * n_eval, seed=seed)
        # load_mnist keeps file order, and MNIST's test file is not exchangeable (its two halves come
        # from different writer pools), so the evaluation/floor split must be a random one.
        perm = np.random.default_rng(seed).permutation(len(test))
        real, other = test[perm[:n_eval]], test[perm[n_eval:]]
        floor = mnist_metrics(real, other, seed=seed + 1)
        common = {"batch_size": config["batch_size"], "latent_dim": config["latent_dim"], "seed": seed,
                  "progress": progress}

        def record(method: str, decoder_ch: int, aux_ch: float, res, seed=seed, x=x, real=real,
                   floor=floor) -> None:
            metrics, grid = _score(res, x, real, config, seed + 1)
            rows.append({"method": method, "decoder_channels": decoder_ch, "aux_channels": aux_ch,
                         "seed": seed, **metrics, "fid_floor": float(floor["fid"]),
                         "kid_floor": float(floor["kid_mean"])})
            if seed == seeds[0]:
                label = f", aux {aux_ch:g})" if method == "dae" else ")"
                grids[f"{method} (dec {decoder_ch}{label}"] = grid

        for ch in (big, small):
            res = train_autoencoder(x, enc, ConvDecoder(channels=ch), steps=config["joint_steps"], **common)
            record("joint", ch, np.nan, res)
        for aux in config["aux_channels"]:
            res = train_dae(x, enc, ConvDecoder(channels=aux), ConvDecoder(channels=big), **stages, **common)
            record("dae", config["decoder_channels"], aux, res)
        data[seed] = (x, real, record, common)
    dae = pd.DataFrame([r for r in rows if r["method"] == "dae"])
    best_aux = float(dae.groupby("aux_channels")["fid"].mean().idxmin())
    for seed in seeds:
        x, _, record, common = data[seed]
        res = train_dae(x, enc, ConvDecoder(channels=int(best_aux)), ConvDecoder(channels=small),
                        **stages, **common)
        record("dae", config["small_channels"], best_aux, res)
    table = pd.DataFrame(rows)
    return ExperimentResult(CLAIM, table, _summarise(table, config, best_aux), extras={"grids": grids})


def _summarise(table: pd.DataFrame, config: dict, best_aux: float) -> dict:
    """Means and standard deviations (ddof=1) over seeds, and paired per-seed differences."""
    big, small = config["decoder_channels"], config["small_channels"]

    def fids(method: str, ch: int, aux: float | None = None) -> pd.Series:
        sub = table[(table["method"] == method) & (table["decoder_channels"] == ch)]
        if aux is not None:
            sub = sub[sub["aux_channels"] == aux]
        return sub.set_index("seed")["fid"].sort_index()

    def ms(s: pd.Series) -> dict:
        return {"mean": float(s.mean()), "std": float(s.std(ddof=1)) if len(s) > 1 else float("nan"),
                "values": [float(v) for v in s]}

    joint_big, dae_big = fids("joint", big), fids("dae", big, best_aux)
    joint_small, dae_small = fids("joint", small), fids("dae", small, best_aux)
    diff = dae_big - joint_big  # paired by seed; negative = DAE better
    sweep = (table[(table["method"] == "dae") & (table["decoder_channels"] == big)]
             .groupby("aux_channels")["fid"].agg(["mean", "std"]).sort_index())
    interior = len(sweep) >= 3 and best_aux not in (sweep.index.min(), sweep.index.max())
    floor = table.groupby("seed")["fid_floor"].first()
    return {
        "seeds": sorted(int(s) for s in table["seed"].unique()),
        "fid_joint_equal_decoder": ms(joint_big), "fid_dae_equal_decoder": ms(dae_big),
        "fid_joint_small_decoder": ms(joint_small), "fid_dae_small_decoder": ms(dae_small),
        "fid_dae_minus_joint_equal_decoder": ms(diff),
        "dae_beats_joint_equal_decoder_every_seed": bool((diff < 0).all()),
        "dae_beats_joint_equal_decoder_on_mean": bool(dae_big.mean() < joint_big.mean()),
        "dae_small_decoder_matches_joint": bool(dae_small.mean() <= joint_big.mean()),
        "best_aux_channels": best_aux, "aux_sweep_interior_optimum": bool(interior),
        "aux_sweep_fid_mean": {float(k): float(v) for k, v in sweep["mean"].items()},
        "aux_sweep_fid_std": {float(k): float(v) for k, v in sweep["std"].items()},
        "fid_floor": ms(floor),
    }


def plot(result: ExperimentResult, out_dir: str | Path) -> list[Path]:
    """``R5_samples`` (8x8 grids per model) and ``R5_aux_sweep`` (metrics against aux strength)."""
    import matplotlib.pyplot as plt

    grids = result.extras["grids"]
    fig, axes = plt.subplots(1, len(grids), figsize=(3 * len(grids), 3.3), squeeze=False)
    for ax, (name, imgs) in zip(axes[0], grids.items(), strict=True):
        k = int(np.sqrt(len(imgs)))
        tile = imgs[: k * k].reshape(k, k, 28, 28).transpose(0, 2, 1, 3).reshape(28 * k, 28 * k)
        ax.imshow(tile, cmap="gray", vmin=0, vmax=1)
        ax.set(title=name, xticks=[], yticks=[])
    fig.tight_layout()
    paths = save_figure(fig, out_dir, "R5_samples")

    t = result.table
    big = result.config["decoder_channels"]
    metrics = [m for m in ("fid", "precision", "recall", "coverage") if m in t]
    sweep = (t[(t["method"] == "dae") & (t["decoder_channels"] == big)]
             .groupby("aux_channels")[metrics].agg(["mean", "std"]).sort_index())
    joint = t[(t["method"] == "joint") & (t["decoder_channels"] == big)][metrics].agg(["mean", "std"])
    n_seeds = t["seed"].nunique() if "seed" in t else 1
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.3), squeeze=False)
    for ax, m in zip(axes[0], metrics, strict=True):
        err = sweep[(m, "std")].fillna(0.0)
        ax.errorbar(sweep.index, sweep[(m, "mean")], yerr=err, fmt="o-", capsize=3, label="DAE (mean ± sd)")
        jm, js = joint.loc["mean", m], (0.0 if np.isnan(joint.loc["std", m]) else joint.loc["std", m])
        ax.axhline(jm, color="k", ls="--", label="joint AE")
        ax.axhspan(jm - js, jm + js, color="k", alpha=0.1)
        if m == "fid" and "fid_floor" in t:
            ax.axhline(t["fid_floor"].mean(), color="g", ls=":", label="real vs real (floor)")
        ax.set_xscale("log")
        ax.set_xticks(list(sweep.index), [f"{v:g}" for v in sweep.index])
        ax.minorticks_off()
        ax.set(xlabel="aux decoder channels", ylabel=m,
               title=f"R5: {m} (decoder {big} ch, {n_seeds} seed{'s' if n_seeds > 1 else ''})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return paths + save_figure(fig, out_dir, "R5_aux_sweep")


def run(mode: str | None = None, **kwargs) -> pd.DataFrame:
    """Run R5 (cached) and return its tidy table."""
    from latentdist.experiments.runner import run_experiment

    return run_experiment(CLAIM, mode, **kwargs).table
