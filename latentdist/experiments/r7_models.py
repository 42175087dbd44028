"""R7's models and scores: train each network once per seed, sample it through each of its priors, score.

A *network* is one trained object (a GAN, a VAE, an RAE, a WAE, a joint AE, a DAE); a *model* is a network
plus the prior it is sampled from (VAE with N(0, I), with an ex-post GMM, or through Dai & Wipf's second
stage, ...). All networks share ``ConvDecoder(decoder_channels)`` (sigmoid output, Bernoulli likelihood),
``ConvEncoder(encoder_channels)``, the latent dimension, the step cap, the batch size and the early-stopping
rule (validation objective every ``validate_every`` steps, ``patience``); the GAN has no validation
objective and runs to the cap.

Per model and seed the scores are (``score_model``): sample FID, KID, precision/recall, density/coverage,
the class-histogram TV distance from uniform (the toolkit classifier's predictions), a pixel-space sliced
W2 (``sw2_pixels_placeholder``, standing in for R5's blur-robust score until it lands), recon FID
(decoder(encoder(test)) against the test images), the prior gap (sample FID - recon FID), and the latent
D_G: the toolkit's D_G from N(0, I) to the moment-normalised test codes at a fixed small capacity, with its
noise floor and the excess D_G - floor (the GAN's latent is N(0, I) itself, measured the same way, so its
excess is about 0). The floors differ between latents (a concentrated code cloud has a smaller
finite-sample W2 floor than N(0, I)), so latents are ranked by the excess.

With ``unit_cache`` each (network, seed) unit is cached on disk once scored, so an interrupted full run
resumes per model and seed.
"""

from __future__ import annotations

import pickle
import time
from typing import Any

import numpy as np

from latentdist._io import atomic_write_bytes, cache_dir
from latentdist.experiments.cache import config_hash

__all__ = ["NETWORKS", "MODELS", "train_network", "score_network", "quality", "class_tv", "latent_dg",
           "cached_unit", "blur", "primary_fid"]

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


def _early(cfg: dict, val) -> dict:
    return {"val_data": val, "validate_every": cfg["validate_every"], "patience": cfg["patience"],
            "min_steps": cfg["min_steps"]}


def train_network(kind: str, hp: dict, x, val, cfg: dict, seed: int, progress: bool) -> Any:
    """Train one network of ``kind`` with the tuned hyper-parameters ``hp``; every network gets the same
    encoder, decoder, latent dimension, step cap, batch size and early-stopping rule from ``cfg``."""
    from latentdist.generators import ConvDecoder
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

    d, steps = cfg["latent_dim"], cfg["steps"]
    enc = ConvEncoder(channels=cfg["encoder_channels"], latent_dim=d)
    dec = ConvDecoder(channels=cfg["decoder_channels"])
    common = dict(batch_size=cfg["batch_size"], seed=seed, progress=progress, log_every=cfg["validate_every"])
    lr = hp.get("lr", cfg["lr"])
    if kind == "gan":
        return train_gan(x, Gaussian(d), dec, ConvCritic(channels=cfg["critic_channels"]), loss="hinge",
                         steps=steps, lr_g=lr, lr_d=lr, **common)
    early = _early(cfg, val)
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
        aux = ConvDecoder(channels=cfg["dae"]["aux_channels"])
        return train_dae(x, enc, aux, dec, aux_dropout=cfg["dae"]["aux_dropout"], stage1_steps=steps,
                         stage2_steps=steps, loss="bce", lr=lr, **early, **common)
    raise ValueError(f"unknown network kind {kind!r}; expected one of {sorted(NETWORKS)}")


def _priors(kind: str, net, x, cfg: dict, seed: int, progress: bool) -> dict[str, Any]:
    """model name -> latent sampler, for the models of one trained network."""
    from latentdist.latents import Gaussian
    from latentdist.train import fit_prior, train_two_stage_vae
    from latentdist.train.nets import MLPEncoder

    d = cfg["latent_dim"]
    if kind in ("gan", "wae"):
        return {kind: Gaussian(d)}
    codes = net.encode(x)
    gmm = fit_prior(codes, "gmm", n_components=cfg["gmm_components"], seed=seed)
    if kind == "vae":
        from latentdist.generators import MLP

        w = cfg["second_stage_width"]
        two = train_two_stage_vae(net, x, MLPEncoder(width=w, latent_dim=d), MLP(width=w), seed=seed + 1,
                                  steps=cfg["second_stage_steps"], batch_size=cfg["batch_size"],
                                  progress=progress, log_every=cfg["validate_every"])
        return {"vae": Gaussian(d), "vae_gmm": gmm, "two_stage_vae": two.prior}
    if kind == "rae":
        return {"rae_gmm": gmm}
    flow = fit_prior(codes, "flow", steps=cfg["flow_steps"], seed=seed, progress=progress)
    return {f"{kind}_gmm": gmm, f"{kind}_flow": flow}


def class_tv(labels: np.ndarray, n_classes: int = 10) -> float:
    """Total-variation distance of the label histogram from uniform: ½ Σ_c |p_c - 1/K|."""
    p = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)[:n_classes] / len(labels)
    return float(0.5 * np.abs(p - 1.0 / n_classes).sum())


def quality(real, fake, feats, seed: int) -> dict[str, float]:
    """Sample-quality scores of images ``fake`` against ``real`` (both (n, 1, 28, 28) in [0, 1])."""
    from latentdist.distances import sliced_wasserstein
    from latentdist.metrics import mnist_metrics

    m = mnist_metrics(real, fake, features=feats, seed=seed)
    out = {k: float(m[k]) for k in ("fid", "kid_mean", "precision", "recall", "density", "coverage")}
    out["class_tv"] = class_tv(feats.predict(fake))
    flat = (np.asarray(real, dtype=np.float64).reshape(len(real), -1),
            np.asarray(fake, dtype=np.float64).reshape(len(fake), -1))
    out["sw2_pixels_placeholder"] = float(sliced_wasserstein(*flat, n_projections=128, seed=seed))
    return out


def latent_dg(codes, cfg: dict, seed: int, progress: bool) -> tuple[float, float]:
    """(D_G, noise floor) from N(0, I) to the moment-normalised ``codes`` at the fixed small capacity."""
    import torch

    from latentdist.experiments._common import estimate, make_family
    from latentdist.latents import Gaussian, normalize_samples

    g = cfg["dg"]
    z = normalize_samples(torch.as_tensor(np.asarray(codes)[: g["n"]], dtype=torch.float32), "moment")
    family = make_family(g["family"], g["capacity"], g["width"], g["depth"])
    res = estimate(Gaussian(z.shape[1]), z.detach(), family, "w2", g, seed=seed, progress=progress)
    return float(res.value), float(res.noise_floor)


def score_network(kind: str, net, seconds: float, x, real, feats, cfg: dict, seed: int,
                  progress: bool) -> tuple[list[dict], dict]:
    """Rows (one per model of the network) and 64-sample grids for one trained network and seed."""
    from latentdist.latents import Gaussian
    from latentdist.train import GenerativePipeline, prior_parameter_count

    t0 = time.perf_counter()
    priors = _priors(kind, net, x, cfg, seed, progress)
    prior_seconds = time.perf_counter() - t0
    n_eval = len(real)
    decoder = net.generator if kind == "gan" else net.decoder
    base = {"decoder_params": sum(p.numel() for p in decoder.parameters()),
            "encoder_params": 0 if kind == "gan" else sum(p.numel() for p in net.encoder.parameters())}
    if kind == "gan":
        codes, recon = Gaussian(cfg["latent_dim"]).sample(n_eval, seed + 7), None
    else:
        codes = net.encode(real)
        recon = quality(real, net.reconstruct(real).clamp(0, 1), feats, seed)["fid"]
    dg, floor = latent_dg(codes, cfg, seed, progress)
    rows, grids = [], {}
    for model, prior in priors.items():
        pipe = GenerativePipeline(prior, decoder, output_shape=(1, 28, 28))
        fake = pipe.sample(n_eval, seed=seed + 1).clamp(0, 1)
        q = quality(real, fake, feats, seed)
        rows.append({"model": model, "network": kind, "seed": seed, **q,
                     "recon_fid": np.nan if recon is None else recon,
                     "prior_gap": np.nan if recon is None else q["fid"] - recon,
                     "latent_dg": dg, "latent_dg_floor": floor, "latent_dg_excess": dg - floor, **base,
                     "prior_params": int(prior_parameter_count(prior)),
                     "train_seconds": seconds + prior_seconds})
        grids[model] = fake[:64].reshape(-1, 28, 28).numpy()
    return rows, grids


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each (1, 28, 28) image with standard deviation ``sigma`` pixels."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(np.asarray(images, dtype=np.float32), sigma=(0, 0, sigma, sigma))


def cached_unit(claim: str, config: dict, version: int, kind: str, seed: int, fn):
    """``fn()`` for one (network, seed) unit, cached on disk (when ``config['unit_cache']``) under
    ``cache_dir('experiments', '<claim>-units')``, so an interrupted run resumes per model and seed."""
    if not config.get("unit_cache", False):
        return fn()
    key = config_hash(claim, {"config": config, "network": kind, "seed": seed}, version)
    path = cache_dir("experiments", f"{claim}-units") / f"{kind}-{seed}-{key}.pkl"
    if path.exists():
        try:
            with open(path, "rb") as fh:
                return pickle.load(fh)
        except Exception:  # noqa: BLE001 - an unreadable unit is recomputed
            pass
    out = fn()
    atomic_write_bytes(path, pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))
    return out


def primary_fid(kind: str, net, x, val, feats, cfg: dict, seed: int) -> float:
    """FID of the network's first model (GAN/VAE/WAE from N(0, I), RAE/AE with a GMM) against the
    *validation* images: the tuning criterion (the test images are never looked at)."""
    from latentdist.latents import Gaussian
    from latentdist.metrics import fid
    from latentdist.train import GenerativePipeline, fit_prior

    if kind in ("gan", "vae", "wae"):
        prior = Gaussian(cfg["latent_dim"])
    else:
        prior = fit_prior(net.encode(x), "gmm", n_components=cfg["gmm_components"], seed=seed)
    decoder = net.generator if kind == "gan" else net.decoder
    fake = GenerativePipeline(prior, decoder, output_shape=(1, 28, 28)).sample(len(val), seed=seed + 1)
    return float(fid(feats.features(val), feats.features(fake.clamp(0, 1))))
