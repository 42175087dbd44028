"""Wasserstein autoencoder with an MMD latent penalty (WAE-MMD, Tolstikhin et al., 2018).

A deterministic encoder f and a Bernoulli decoder g minimise, per batch of n images and n prior draws
u_i ~ N(0, I_d),

    L = (1/n) Σ_i BCE(g(f(x_i)), x_i) + λ · MMD²_k({f(x_i)}, {u_i}),

with the unbiased MMD² U-statistic of :func:`latentdist.distances.mmd2` and the inverse multiquadric
kernel k(a, b) = (1 + ‖a - b‖²/h²)^{-1/2}, h² = 2d (the scale C = 2dσ² Tolstikhin et al. use for a unit
prior; their IMQ has exponent -1 rather than the toolkit's -1/2: both are characteristic and heavy-tailed).
The penalty pulls the aggregate code distribution f#P_x towards N(0, I), so samples are g(u), u ~ N(0, I).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from latentdist._seeding import SeedLike, spawn_seeds
from latentdist._validation import check_scalar
from latentdist.distances import mmd2
from latentdist.train.autoencoder import AutoencoderResult
from latentdist.train.loop import module_repr
from latentdist.train.objective import bernoulli_nll, fit_objective, setup_autoencoder

__all__ = ["wae_loss", "train_wae", "imq_bandwidth"]


def imq_bandwidth(latent_dim: int) -> float:
    """h = sqrt(2d), the IMQ scale for an N(0, I_d) prior (Tolstikhin et al., 2018)."""
    return math.sqrt(2.0 * latent_dim)


def wae_loss(
    encoder: nn.Module, decoder: nn.Module, x: torch.Tensor, gen: torch.Generator, *, lam: float = 10.0,
) -> dict[str, torch.Tensor]:
    """The WAE-MMD objective on one batch (module docstring); prior draws u come from ``gen``.

    Returns
    -------
    dict
        ``loss``, ``recon`` (per-sample BCE), ``mmd`` (MMD² between codes and prior draws), ``mse``.
    """
    z = encoder(x)
    u = torch.randn(z.shape, generator=gen).to(z.device)
    mmd = mmd2(z, u, kernel="imq", bandwidth=imq_bandwidth(z.shape[1]), unbiased=True)
    out = decoder(z)
    recon = bernoulli_nll(out, x).mean()
    return {"loss": recon + lam * mmd, "recon": recon, "mmd": mmd,
            "mse": torch.mean((out.detach().reshape(x.shape) - x) ** 2)}


def train_wae(
    data: Any,
    encoder: Any,
    decoder: Any,
    *,
    lam: float = 10.0,
    steps: int = 2000,
    batch_size: int = 128,
    lr: float = 1e-3,
    latent_dim: int | None = None,
    seed: SeedLike = 0,
    device: str | torch.device = "cpu",
    checkpoint_dir: Any = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    callbacks: Any = (),
    progress: bool = True,
    log_every: int = 50,
    val_data: Any = None,
    validate_every: int | None = None,
    patience: int | None = None,
    min_steps: int = 0,
) -> AutoencoderResult:
    """Train a WAE-MMD (Tolstikhin et al., 2018) with a Bernoulli decoder; sample it from N(0, I).

    Parameters
    ----------
    data : array or tensor in [0, 1], shape (n, D) or (n, C, H, W)
    encoder, decoder : Family or nn.Module
        As in :func:`~latentdist.train.autoencoder.train_autoencoder`; the decoder ends in a sigmoid.
    lam : float >= 0
        λ, the weight of the MMD² penalty (Tolstikhin et al. use 10 on MNIST).
    steps, batch_size, lr, latent_dim, seed, device, checkpoint_dir, checkpoint_every, resume, callbacks,
    progress, log_every :
        As in :func:`~latentdist.train.autoencoder.train_autoencoder`; the checkpoint is ``wae.pt``.
        ``batch_size`` >= 2 (the U-statistic needs two codes).
    val_data, validate_every, patience, min_steps :
        Held-out samples shaped like ``data``: early stopping on the validation objective, best weights kept
        (see :func:`~latentdist.train.objective.fit_objective`); the history gains ``val_loss``.

    Returns
    -------
    AutoencoderResult
        History columns ``step``, ``loss``, ``recon``, ``mmd``, ``mse``.

    Examples
    --------
    >>> from latentdist.train.nets import MLPEncoder
    >>> x = torch.rand(200, 6)
    >>> dec = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Sigmoid())
    >>> res = train_wae(x, MLPEncoder(width=16, latent_dim=2), dec, steps=5, batch_size=16, progress=False)
    >>> res.encode(x).shape
    torch.Size([200, 2])
    """
    lam = check_scalar(lam, "lam", low=0.0, high=1e6)  # larger weights overflow the loss
    if isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 for the MMD U-statistic, got {batch_size}")
    s_enc, s_dec, s_batch, s_global = spawn_seeds(seed, 4)
    st = setup_autoencoder(
        data, encoder, decoder, latent_dim=latent_dim, code_mult=1, lr=lr, device=device, callbacks=callbacks,
        steps=steps, batch_size=batch_size, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
        log_every=log_every, resume=resume, seeds=(s_enc, s_dec), val_data=val_data,
        validate_every=validate_every, patience=patience, min_steps=min_steps,
    )
    x, enc, dec, d = st.x, st.encoder, st.decoder, st.latent_dim

    def objective(batch: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return wae_loss(enc, dec, batch, gen, lam=lam)

    config = dict(trainer="wae", lam=lam, batch_size=batch_size, lr=st.lr, latent_dim=d,
                  seeds=[s_enc, s_dec, s_batch, s_global], data_shape=list(x.shape),
                  encoder=module_repr(encoder), decoder=module_repr(decoder))
    history = fit_objective(x, objective, {"encoder": enc, "decoder": dec}, dec, **st.fit_kwargs(
        "wae.pt", steps=steps, batch_size=batch_size, seeds=(s_batch, s_global), config=config,
        checkpoint_every=checkpoint_every, resume=resume, progress=progress, log_every=log_every, desc="wae"))
    return AutoencoderResult(enc, dec, history, d)
