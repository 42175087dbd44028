"""R7's models and scores: train each network once per seed, sample it through each of its priors, score.

A *network* is one trained object (a GAN, a VAE, an RAE, a WAE, a joint AE, a DAE); a *model* is a network
plus the prior it is sampled from (VAE with N(0, I), with an ex-post GMM, or through Dai & Wipf's second
stage, ...). All networks share the final decoder of R5's family (``ConvDecoder(channels, depth)`` with a
sigmoid output, Bernoulli likelihood), ``ConvEncoder(encoder_channels)``, the latent dimension, the step cap,
the batch size and the early-stopping rule (validation objective every ``validate_every`` steps,
``patience``, at least ``min_steps``); the GAN has no validation objective and runs to the cap.

Scores reuse R5's helpers (:mod:`latentdist.experiments.r5_dae`, :mod:`latentdist.metrics.robust`), on R5's
data split: sample and recon metrics in the classifier's feature space (FID, KID, precision/recall,
density/coverage) plus R5's blur-robust second view on pixels (sliced W2 and MMD²), the prior gap
(sample FID - recon FID), the class histogram (entropy, TV from uniform), and the latent D_G from N(0, I)
to the standardised training codes at R5's fixed small capacity, with its noise floor and the excess
D_G - floor (the GAN's latent is N(0, I) itself, measured the same way, so its excess is about 0; floors
differ between latents, so latents are ranked by the excess). Ex-post GMMs are fitted on standardised
codes with the component count chosen on the validation codes' likelihood (R5's rule); flows likewise on
standardised codes.

With ``unit_cache`` each (network, seed) unit is a task (:mod:`latentdist.tasks`) cached on disk once
scored, so an interrupted full run resumes per model and seed (see ``r7_peers._run``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["NETWORKS", "MODELS", "UNIT_VERSIONS", "decoder_family", "train_network", "score_network"]

#: network kind -> the models (rows of the table) it is sampled as
NETWORKS = {
    "gan": ("gan",),
    "vae": ("vae", "vae_gmm", "two_stage_vae"),
    "rae": ("rae_gmm",),
    "wae": ("wae",),
    "joint": ("joint_gmm", "joint_flow"),
    "dae": ("dae_gmm", "dae_flow"),
}
MODELS = tuple(m for ms in NETWORKS.values() for m in ms)


#: each network's unit version, part of its stored units' key (``r7_peers._task``): bumped when that
#: network's training or scoring changes, so only its units are recomputed (gan 5: linear output in training).
UNIT_VERSIONS = {"gan": 5, "vae": 4, "rae": 4, "wae": 4, "joint": 4, "dae": 4}


def decoder_family(cfg: dict, output: str = "sigmoid"):
    """The one decoder every network shares: R5's final decoder family, with a sigmoid output (the GAN
    trains it with ``output='linear'``: same layers and parameters, see :func:`train_network`)."""
    from latentdist.generators import ConvDecoder

    return ConvDecoder(cfg["decoder"]["channels"], depth=cfg["decoder"]["depth"], output=output)


def train_network(kind: str, hp: dict, data: dict, cfg: dict, seed: int, progress: bool) -> Any:
    """Train one network of ``kind`` with the tuned hyper-parameters ``hp`` on ``data['train']``
    (validating on ``data['val']``); every network gets the same encoder, decoder, latent dimension, step
    cap, batch size and early-stopping rule from ``cfg``."""
    from latentdist.experiments.r5_dae import aux_family
    from latentdist.latents import Gaussian
    from latentdist.train import (
        ConvCritic,
        ConvEncoder,
        train_autoencoder,
        train_dae,
        train_gan,
        train_rae,
        train_vae,
        train_wae,
    )

    d, steps, x = cfg["latent_dim"], cfg["max_steps"], data["train"]
    enc = ConvEncoder(channels=cfg["encoder_channels"], latent_dim=d)
    dec = decoder_family(cfg)
    common = dict(batch_size=cfg["batch_size"], seed=seed, progress=progress, log_every=cfg["validate_every"])
    early = dict(val_data=data["val"], validate_every=cfg["validate_every"], patience=cfg["patience"],
                 min_steps=cfg["min_steps"])
    lr = hp.get("lr", cfg["lr"])
    if kind == "gan":
        # With the sigmoid, the critic's gradient drives every pixel into the sigmoid's flat tail and the
        # generator never recovers: all samples black within 250 steps for hinge, NS and WGAN-GP at lr 2e-5
        # to 2e-4 (measured on 20k images, paper_repro R7). The same layers with an identity output train;
        # samples are clamped to [0, 1] when scored, like every model's.
        return train_gan(x, Gaussian(d), decoder_family(cfg, output="linear"),
                         ConvCritic(channels=cfg["critic_channels"]), loss="hinge", steps=steps, lr_g=lr,
                         lr_d=lr, **common)
    if kind == "vae":
        return train_vae(x, enc, dec, beta=hp.get("beta", 1.0), steps=steps, lr=lr, **early, **common)
    if kind == "rae":
        return train_rae(x, enc, dec, beta=hp.get("beta", 1e-2), lam=hp.get("lam", 1e-2), steps=steps, lr=lr,
                         **early, **common)
    if kind == "wae":
        return train_wae(x, enc, dec, lam=hp.get("lam", 10.0), steps=steps, lr=lr, **early, **common)
    if kind == "joint":
        return train_autoencoder(x, enc, dec, loss="bce", steps=steps, lr=lr, **early, **common)
    if kind == "dae":
        aux = aux_family({**cfg, "loss": "bce"}, cfg["dae"]["weakening"], cfg["dae"]["strength"])
        return train_dae(x, enc, aux, dec, stage1_steps=steps, stage2_steps=steps, loss="bce", lr=lr, **early,
                         **common)
    raise ValueError(f"unknown network kind {kind!r}; expected one of {sorted(NETWORKS)}")


class _Standard:
    """A prior fitted on standardised codes, sampled back on the codes' scale: z = mean + std * prior."""

    def __init__(self, prior, mean: np.ndarray, std: np.ndarray):
        self.prior, self.mean, self.std = prior, mean, std
        self.dim = len(mean)
        self.n_parameters = int(getattr(prior, "n_parameters", 0))

    def sample(self, n: int, seed: int = 0):
        import torch

        z = np.asarray(self.prior.sample(n, seed), dtype=np.float64) * self.std + self.mean
        return torch.as_tensor(z, dtype=torch.float32)


def _standard_codes(net, data: dict) -> tuple[dict, np.ndarray, np.ndarray]:
    """Training and validation codes standardised with the training codes' mean and sd (R5's rule)."""
    from latentdist.experiments.r5_dae import _standardise

    codes = {k: net.encode(data[k]).numpy().astype(np.float64) for k in ("train", "val")}
    mean, std = codes["train"].mean(0), codes["train"].std(0) + 1e-8
    return {k: _standardise(v, mean, std) for k, v in codes.items()}, mean, std


def _priors(kind: str, net, data: dict, z: dict, mean, std, cfg: dict, seed: int, progress: bool) -> dict:
    """model name -> latent sampler on the network's own code scale, for one trained network."""
    from latentdist.experiments.r5_dae import _fit_prior
    from latentdist.generators import MLP
    from latentdist.latents import Gaussian
    from latentdist.train import fit_prior, train_two_stage_vae
    from latentdist.train.nets import MLPEncoder

    d = cfg["latent_dim"]
    if kind in ("gan", "wae"):
        return {kind: Gaussian(d)}
    gmm = _Standard(_fit_prior(z["train"], z["val"], cfg)[2], mean, std)
    if kind == "vae":
        w = cfg["second_stage"]["width"]
        two = train_two_stage_vae(net, data["train"], MLPEncoder(width=w, latent_dim=d), MLP(width=w),
                                  seed=seed + 1, steps=cfg["second_stage"]["steps"],
                                  batch_size=cfg["batch_size"], progress=progress,
                                  log_every=cfg["validate_every"])
        return {"vae": Gaussian(d), "vae_gmm": gmm, "two_stage_vae": two.prior}
    if kind == "rae":
        return {"rae_gmm": gmm}
    flow = fit_prior(z["train"], "flow", steps=cfg["flow_steps"], seed=seed, progress=progress)
    return {f"{kind}_gmm": gmm, f"{kind}_flow": _Standard(flow, mean, std)}


def _decode(decoder, z) -> np.ndarray:
    """Images decoder(z), (n, 1, 28, 28) in [0, 1], batched in eval mode without gradients."""
    from latentdist.train.autoencoder import encode

    return encode(decoder, z).reshape(-1, 1, 28, 28).clamp(0, 1).numpy()


def score_network(kind: str, net, seconds: float, data: dict, feats, ref: dict, cfg: dict, seed: int,
                  progress: bool) -> tuple[list[dict], dict]:
    """Rows (one per model of the network) and 64-sample grids for one trained network and seed."""
    from latentdist.experiments.r5_dae import _latent_dg, _view_metrics
    from latentdist.latents import Gaussian
    from latentdist.metrics import fid
    from latentdist.metrics.robust import class_histogram
    from latentdist.train import prior_parameter_count

    decoder = net.generator if kind == "gan" else net.decoder
    real, n = data["real"], cfg["n_eval"]
    if kind == "gan":  # the GAN's latent is N(0, I) itself: its complexity is measured on N(0, I) draws
        z = {"train": Gaussian(cfg["latent_dim"]).sample(len(data["train"]), seed).numpy().astype(np.float64)}
        mean, std, recon = None, None, {}
    else:
        z, mean, std = _standard_codes(net, data)
        recon_imgs = net.reconstruct(real).clamp(0, 1).numpy()
        recon = _view_metrics("recon", real, ref["real"], recon_imgs, feats, cfg, seed)
    t0 = time.perf_counter()
    priors = _priors(kind, net, data, z, mean, std, cfg, seed, progress)
    prior_seconds = time.perf_counter() - t0
    dg, floor = _latent_dg(z["train"], cfg, seed)
    base = {"decoder_params": sum(p.numel() for p in decoder.parameters()),
            "encoder_params": 0 if kind == "gan" else sum(p.numel() for p in net.encoder.parameters()),
            "latent_dg": dg, "latent_dg_floor": floor, "latent_dg_excess": dg - floor,
            "train_seconds": seconds + prior_seconds,
            "steps": int(net.history["step"].max()) if "step" in net.history else np.nan}
    rows, grids = [], {}
    for model, prior in priors.items():
        fake = _decode(decoder, prior.sample(n, seed + 1))
        row = {"model": model, "network": kind, "seed": seed,
               **_view_metrics("sample", real, ref["real"], fake, feats, cfg, seed), **recon}
        row["prior_gap"] = row["sample_fid"] - row["recon_fid"] if recon else np.nan
        row["val_sample_fid"] = float(fid(ref["val"], feats.features(fake)))
        row.update(class_histogram(feats.predict(fake)))
        rows.append({**row, **base, "prior_params": int(prior_parameter_count(prior))})
        grids[model] = fake[:64, 0]
    return rows, grids
