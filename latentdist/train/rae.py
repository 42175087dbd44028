"""Regularised autoencoder (RAE, Ghosh et al., 2020): a deterministic AE with a decoder regulariser.

Per batch, with deterministic codes z = f(x) and reconstruction probabilities g(z) (Bernoulli decoder),

    L = E_x [BCE(g(f(x)), x)] + β · E_x [½ ‖f(x)‖²] + λ · R(g),

where the latent L2 term keeps the code space bounded and R smooths the decoder:

* ``'gp'`` (RAE-GP): R = E_x ‖J_g(f(x))‖_F², the squared Frobenius norm of the decoder Jacobian at the
  codes, estimated without forming J as E_v ‖J^T v‖², v ~ N(0, I) in output space (Hutchinson; unbiased
  because E[v v^T] = I), one draw of v per sample;
* ``'l2'`` (RAE-L2): R = Σ_θ θ² over the decoder's parameters.

Samples come from an ex-post density fitted on the codes (a GMM, as in the paper).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from latentdist._seeding import SeedLike, spawn_seeds
from latentdist._validation import check_option, check_scalar
from latentdist.train.autoencoder import AutoencoderResult
from latentdist.train.loop import module_repr
from latentdist.train.objective import bernoulli_nll, fit_objective, setup_autoencoder

__all__ = ["rae_loss", "train_rae", "RAE_REGULARISERS"]

RAE_REGULARISERS = ("gp", "l2")


def _decoder_jacobian_sq(decoder: nn.Module, z: torch.Tensor, out: torch.Tensor,
                         gen: torch.Generator) -> torch.Tensor:
    """Hutchinson estimate of E ‖J_g(z)‖_F² (differentiable): mean over rows of ‖J^T v‖², v ~ N(0, I)."""
    v = torch.randn(out.shape, generator=gen).to(out.device)
    (jtv,) = torch.autograd.grad((out * v).sum(), z, create_graph=True)
    return jtv.pow(2).sum(1).mean()


def rae_loss(
    encoder: nn.Module, decoder: nn.Module, x: torch.Tensor, gen: torch.Generator, *,
    beta: float = 1e-2, lam: float = 1e-2, regulariser: str = "gp",
) -> dict[str, torch.Tensor]:
    """The RAE objective on one batch (module docstring).

    Parameters
    ----------
    encoder : nn.Module
        x (n, ...) -> z (n, d).
    decoder : nn.Module
        z -> probabilities, reshaped like ``x``.
    x : torch.Tensor, shape (n, ...), entries in [0, 1]
    gen : torch.Generator
        CPU Generator of the Hutchinson probes (``'gp'``).
    beta, lam : float >= 0
        Weights of the latent L2 term and of the decoder regulariser.
    regulariser : {'gp', 'l2'}

    Returns
    -------
    dict
        ``loss``, ``recon`` (per-sample BCE), ``latent_l2``, ``reg``, ``mse`` (per entry).
    """
    z = encoder(x)
    if regulariser == "gp" and not z.requires_grad:
        z = z.requires_grad_(True)  # a frozen encoder still needs the Jacobian at its codes
    out = decoder(z)
    if regulariser == "gp":
        reg = _decoder_jacobian_sq(decoder, z, out, gen)
    else:
        reg = sum(p.pow(2).sum() for p in decoder.parameters())
    recon = bernoulli_nll(out, x).mean()
    latent = 0.5 * z.pow(2).sum(1).mean()
    return {"loss": recon + beta * latent + lam * reg, "recon": recon, "latent_l2": latent, "reg": reg,
            "mse": torch.mean((out.detach().reshape(x.shape) - x) ** 2)}


def train_rae(
    data: Any,
    encoder: Any,
    decoder: Any,
    *,
    beta: float = 1e-2,
    lam: float = 1e-2,
    regulariser: str = "gp",
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
    """Train a regularised autoencoder (Ghosh et al., 2020) with a Bernoulli decoder.

    Parameters
    ----------
    data : array or tensor in [0, 1], shape (n, D) or (n, C, H, W)
    encoder, decoder : Family or nn.Module
        As in :func:`~latentdist.train.autoencoder.train_autoencoder`; the decoder ends in a sigmoid.
    beta : float >= 0
        Weight of ½‖z‖².
    lam : float >= 0
        Weight of the decoder regulariser.
    regulariser : {'gp', 'l2'}
        Decoder-Jacobian penalty or weight decay on the decoder (module docstring).
    steps, batch_size, lr, latent_dim, seed, device, checkpoint_dir, checkpoint_every, resume, callbacks,
    progress, log_every :
        As in :func:`~latentdist.train.autoencoder.train_autoencoder`; the checkpoint is ``rae.pt``.
    val_data, validate_every, patience, min_steps :
        Held-out samples shaped like ``data``: early stopping on the validation objective, best weights kept
        (see :func:`~latentdist.train.objective.fit_objective`); the history gains ``val_loss``.

    Returns
    -------
    AutoencoderResult
        History columns ``step``, ``loss``, ``recon``, ``latent_l2``, ``reg``, ``mse``.

    Examples
    --------
    >>> from latentdist.generators import MLP
    >>> from latentdist.train.nets import MLPEncoder
    >>> x = torch.rand(200, 6)
    >>> dec = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Sigmoid())
    >>> res = train_rae(x, MLPEncoder(width=16, latent_dim=2), dec, steps=5, progress=False)
    >>> res.encode(x).shape
    torch.Size([200, 2])
    """
    regulariser = check_option(regulariser, "regulariser", RAE_REGULARISERS)
    beta = check_scalar(beta, "beta", low=0.0, high=1e6)  # larger weights overflow the loss
    lam = check_scalar(lam, "lam", low=0.0, high=1e6)  # larger weights overflow the loss
    s_enc, s_dec, s_batch, s_global = spawn_seeds(seed, 4)
    st = setup_autoencoder(
        data, encoder, decoder, latent_dim=latent_dim, code_mult=1, lr=lr, device=device, callbacks=callbacks,
        steps=steps, batch_size=batch_size, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
        log_every=log_every, resume=resume, seeds=(s_enc, s_dec), val_data=val_data,
        validate_every=validate_every, patience=patience, min_steps=min_steps,
    )
    x, enc, dec, d = st.x, st.encoder, st.decoder, st.latent_dim

    def objective(batch: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return rae_loss(enc, dec, batch, gen, beta=beta, lam=lam, regulariser=regulariser)

    config = dict(trainer="rae", regulariser=regulariser, beta=beta, lam=lam, batch_size=batch_size, lr=st.lr,
                  latent_dim=d, seeds=[s_enc, s_dec, s_batch, s_global], data_shape=list(x.shape),
                  encoder=module_repr(encoder), decoder=module_repr(decoder))
    history = fit_objective(x, objective, {"encoder": enc, "decoder": dec}, dec, **st.fit_kwargs(
        "rae.pt", steps=steps, batch_size=batch_size, seeds=(s_batch, s_global), config=config,
        checkpoint_every=checkpoint_every, resume=resume, progress=progress, log_every=log_every, desc="rae"))
    return AutoencoderResult(enc, dec, history, d)
