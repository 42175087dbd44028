"""R5: Decoupled Autoencoder vs joint training on MNIST (THEORY.md §4, §6 R5).

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
VERSION = 1


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
    """Train joint AEs and DAEs and score them; see the module docstring."""
    from latentdist.data import load_mnist
    from latentdist.generators import ConvDecoder
    from latentdist.train import ConvEncoder, train_autoencoder, train_dae

    seed = config["seed"]
    x, _ = load_mnist("train", n=config["n_train"], seed=seed)
    real, _ = load_mnist("test", n=config["n_eval"], seed=seed)
    enc = ConvEncoder(channels=config["encoder_channels"], latent_dim=config["latent_dim"])
    common = {"batch_size": config["batch_size"], "latent_dim": config["latent_dim"], "seed": seed,
              "progress": progress}
    rows, grids = [], {}

    def record(method: str, decoder_ch: int, aux_ch: float, res) -> dict:
        metrics, grid = _score(res, x, real, config, seed + 1)
        row = {"method": method, "decoder_channels": decoder_ch, "aux_channels": aux_ch, **metrics}
        rows.append(row)
        grids[f"{method} (dec {decoder_ch}" + (f", aux {aux_ch:g})" if method == "dae" else ")")] = grid
        return row

    for ch in (config["decoder_channels"], config["small_channels"]):
        res = train_autoencoder(x, enc, ConvDecoder(channels=ch), steps=config["joint_steps"], **common)
        record("joint", ch, np.nan, res)
    for aux in config["aux_channels"]:
        res = train_dae(x, enc, ConvDecoder(channels=aux), ConvDecoder(channels=config["decoder_channels"]),
                        stage1_steps=config["stage1_steps"], stage2_steps=config["stage2_steps"],
                        aux_dropout=config["aux_dropout"], **common)
        record("dae", config["decoder_channels"], aux, res)
    dae = pd.DataFrame([r for r in rows if r["method"] == "dae"])
    best_aux = float(dae.loc[dae["fid"].idxmin(), "aux_channels"])
    small = ConvDecoder(channels=config["small_channels"])
    res = train_dae(x, enc, ConvDecoder(channels=int(best_aux)), small,
                    stage1_steps=config["stage1_steps"], stage2_steps=config["stage2_steps"],
                    aux_dropout=config["aux_dropout"], **common)
    record("dae", config["small_channels"], best_aux, res)
    table = pd.DataFrame(rows)
    return ExperimentResult(CLAIM, table, _summarise(table, config, best_aux), extras={"grids": grids})


def _summarise(table: pd.DataFrame, config: dict, best_aux: float) -> dict:
    big, small = config["decoder_channels"], config["small_channels"]

    def fid(method: str, ch: int, aux: float | None = None) -> float:
        sub = table[(table["method"] == method) & (table["decoder_channels"] == ch)]
        if aux is not None:
            sub = sub[sub["aux_channels"] == aux]
        return float(sub["fid"].iloc[0])

    joint_big, dae_big, dae_small = fid("joint", big), fid("dae", big, best_aux), fid("dae", small, best_aux)
    sweep = table[(table["method"] == "dae") & (table["decoder_channels"] == big)].sort_values("aux_channels")
    interior = len(sweep) >= 3 and best_aux not in (sweep["aux_channels"].min(), sweep["aux_channels"].max())
    return {
        "fid_joint_equal_decoder": joint_big, "fid_dae_equal_decoder": dae_big,
        "fid_joint_small_decoder": fid("joint", small), "fid_dae_small_decoder": dae_small,
        "dae_beats_joint_equal_decoder": dae_big < joint_big,
        "dae_small_decoder_matches_joint": dae_small <= joint_big,
        "best_aux_channels": best_aux, "aux_sweep_interior_optimum": bool(interior),
        "aux_sweep_fid": dict(zip(sweep["aux_channels"].astype(float), sweep["fid"], strict=True)),
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
    sweep = t[(t["method"] == "dae") & (t["decoder_channels"] == big)].sort_values("aux_channels")
    joint = t[(t["method"] == "joint") & (t["decoder_channels"] == big)].iloc[0]
    metrics = [m for m in ("fid", "precision", "recall", "coverage") if m in t]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.3), squeeze=False)
    for ax, m in zip(axes[0], metrics, strict=True):
        ax.plot(sweep["aux_channels"], sweep[m], "o-", label="DAE")
        ax.axhline(joint[m], color="k", ls="--", label="joint AE")
        ax.set(xscale="log", xlabel="aux decoder channels", ylabel=m, title=f"R5: {m} (decoder {big} ch)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return paths + save_figure(fig, out_dir, "R5_aux_sweep")


def run(mode: str | None = None, **kwargs) -> pd.DataFrame:
    """Run R5 (cached) and return its tidy table."""
    from latentdist.experiments.runner import run_experiment

    return run_experiment(CLAIM, mode, **kwargs).table
