"""Variational autoencoders: the VAE (Kingma & Welling, 2014) and the two-stage VAE (Dai & Wipf, 2019).

VAE. A Gaussian encoder q(z|x) = N(μ(x), diag σ²(x)) (the encoder returns (μ, log σ²), shape (n, 2d)) and a
decoder p(x|z), trained by maximising the ELBO, i.e. minimising per sample

    L(x) = E_{ε ~ N(0, I)} [-log p(x | μ + σ ⊙ ε)] + β KL(q(z|x) || N(0, I)),
    KL = ½ Σ_j (μ_j² + σ_j² - 1 - log σ_j²)      (closed form, :func:`gaussian_kl`),

with one reparameterised draw per sample. ``likelihood='bernoulli'`` is the Bernoulli decoder
-log p(x|z) = BCE(g(z), x) summed over pixels (data in [0, 1], decoder ending in a sigmoid);
``'gaussian'`` is N(g(z), γ I) with a learned scalar γ: ‖x - g(z)‖²/(2γ) + (D/2) log(2πγ).

Sampling: x = g(z) with z ~ N(0, I), or through any prior fitted on the posterior means μ(x) (ex-post GMM).

Two-stage VAE. Stage 1 is a VAE on the data. Stage 2 freezes it, computes the posterior means z_i = μ(x_i)
once, and fits a second, small VAE with the Gaussian learned-γ decoder on them (Dai & Wipf's key
ingredient: γ → 0 lets the second stage match the aggregate posterior). Samples are
g₁(g₂(u)), u ~ N(0, I): :class:`SecondStagePrior` is the latent sampler u ↦ g₂(u).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pandas as pd
import torch
from torch import nn

from latentdist._seeding import SeedLike, make_torch_generator, seed_int, spawn_seeds
from latentdist._validation import check_int, check_option, check_scalar, to_tensor
from latentdist.train.autoencoder import AutoencoderResult, encode
from latentdist.train.loop import module_repr, n_params
from latentdist.train.objective import bernoulli_nll, fit_objective, setup_autoencoder

__all__ = ["gaussian_kl", "vae_loss", "VAEResult", "train_vae", "SecondStagePrior", "TwoStageVAEResult",
           "train_two_stage_vae", "LIKELIHOODS"]

LIKELIHOODS = ("bernoulli", "gaussian")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""KL(N(μ, diag e^{logvar}) ‖ N(0, I)) per row: :math:`\tfrac12\sum_j (\mu_j^2 + e^{v_j} - 1 - v_j)`.

    Parameters
    ----------
    mu, logvar : torch.Tensor, shape (n, d)

    Returns
    -------
    torch.Tensor, shape (n,)

    Examples
    --------
    >>> float(gaussian_kl(torch.zeros(1, 3), torch.zeros(1, 3))[0])
    0.0
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


class _LogGamma(nn.Module):
    """The learned log-variance log γ of a Gaussian decoder N(g(z), γ I) (a scalar, initialised at 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.zeros(()))


def _split(h: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    return h[:, :d], h[:, d:]


def vae_loss(
    encoder: nn.Module, decoder: nn.Module, x: torch.Tensor, gen: torch.Generator, *, latent_dim: int,
    beta: float = 1.0, log_gamma: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The negative ELBO on one batch (see the module docstring), averaged over the batch.

    Parameters
    ----------
    encoder : nn.Module
        x (n, ...) -> (μ, log σ²) concatenated, shape (n, 2 * latent_dim).
    decoder : nn.Module
        z (n, latent_dim) -> x̂, reshaped like ``x``.
    x : torch.Tensor, shape (n, ...)
    gen : torch.Generator
        CPU Generator of the reparameterisation noise ε.
    beta : float
        Weight of the KL term (β = 1 is the ELBO).
    log_gamma : 0-d tensor, optional
        Given: Gaussian decoder N(x̂, e^{log_gamma} I); absent: Bernoulli decoder (x̂ are probabilities).

    Returns
    -------
    dict
        ``loss`` (recon + β kl), ``recon``, ``kl`` (both per-sample means), ``mse`` (per entry).
    """
    mu, logvar = _split(encoder(x), latent_dim)
    eps = torch.randn(mu.shape, generator=gen).to(mu.device)
    out = decoder(mu + (0.5 * logvar).exp() * eps).reshape(x.shape)
    if log_gamma is None:
        recon = bernoulli_nll(out, x)
    else:
        dim = out[0].numel()
        sq = (x - out).flatten(1).pow(2).sum(1)
        recon = 0.5 * (sq / log_gamma.exp() + dim * (log_gamma + math.log(2 * math.pi)))
    kl = gaussian_kl(mu, logvar)
    recon, kl = recon.mean(), kl.mean()
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl,
            "mse": torch.mean((out.detach() - x) ** 2)}


@dataclasses.dataclass
class VAEResult(AutoencoderResult):
    """A trained VAE. ``encode(x)`` gives the posterior means μ(x) (what an ex-post prior is fitted on);
    ``encode_stats(x)`` gives (μ, log σ²); ``reconstruct(x)`` gives g(μ(x)). ``log_gamma`` is the learned
    decoder log-variance (Gaussian likelihood) or ``None`` (Bernoulli)."""

    beta: float = 1.0
    likelihood: str = "bernoulli"
    log_gamma: float | None = None

    def encode_stats(self, data: Any, *, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ(x), log σ²(x)), each float32 CPU (n, latent_dim)."""
        return _split(encode(self.encoder, data, batch_size=batch_size), self.latent_dim)

    def encode(self, data: Any, *, batch_size: int = 1024) -> torch.Tensor:
        """Posterior means μ(x), float32 CPU (n, latent_dim)."""
        return self.encode_stats(data, batch_size=batch_size)[0]


def train_vae(
    data: Any,
    encoder: Any,
    decoder: Any,
    *,
    beta: float = 1.0,
    likelihood: str = "bernoulli",
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
) -> VAEResult:
    """Train a VAE: minimise E_x [E_q -log p(x|z) + β KL(q(z|x) ‖ N(0, I))] with Adam (module docstring).

    Parameters
    ----------
    data : array or tensor, shape (n, D) or (n, C, H, W)
        In [0, 1] for ``likelihood='bernoulli'``.
    encoder : Family or nn.Module
        Built as ``encoder.build(prod(data.shape[1:]), 2 * latent_dim, seed=...)``: it returns μ and
        log σ² side by side. A module must already have 2 * latent_dim outputs (pass ``latent_dim``).
    decoder : Family or nn.Module
        Built as ``decoder.build(latent_dim, prod(data.shape[1:]), seed=...)``; for ``'bernoulli'`` it
        must end in a sigmoid (e.g. ``ConvDecoder``).
    beta : float >= 0
        KL weight (1 = the ELBO; the β of β-VAE otherwise).
    likelihood : {'bernoulli', 'gaussian'}
        ``'gaussian'`` learns a scalar decoder variance γ (Dai & Wipf, 2019).
    steps, batch_size, lr : Adam on all parameters, minibatches drawn with replacement.
    latent_dim : int, optional
        Defaults to the encoder family's ``latent_dim``.
    seed, device, checkpoint_dir, checkpoint_every, resume, callbacks, progress, log_every :
        As in :func:`~latentdist.train.autoencoder.train_autoencoder`; the checkpoint is ``vae.pt``.
    val_data, validate_every, patience, min_steps :
        Held-out samples shaped like ``data``: early stopping on the validation objective, best weights kept
        (see :func:`~latentdist.train.objective.fit_objective`); the history gains ``val_loss``.

    Returns
    -------
    VAEResult
        History columns ``step``, ``loss``, ``recon``, ``kl``, ``mse`` (+ ``log_gamma`` for 'gaussian').

    Examples
    --------
    >>> from latentdist.generators import MLP
    >>> from latentdist.train.nets import MLPEncoder
    >>> x = torch.rand(200, 6)
    >>> dec = MLP(width=16)  # 'gaussian': the decoder need not end in a sigmoid
    >>> res = train_vae(x, MLPEncoder(width=16, latent_dim=2), dec, likelihood="gaussian", steps=5,
    ...                 progress=False)
    >>> res.encode(x).shape
    torch.Size([200, 2])
    """
    likelihood = check_option(likelihood, "likelihood", LIKELIHOODS)
    beta = check_scalar(beta, "beta", low=0.0, high=1e6)  # larger weights overflow the loss
    s_enc, s_dec, s_batch, s_global = spawn_seeds(seed, 4)
    st = setup_autoencoder(
        data, encoder, decoder, latent_dim=latent_dim, code_mult=2, lr=lr, device=device, callbacks=callbacks,
        steps=steps, batch_size=batch_size, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
        log_every=log_every, resume=resume, seeds=(s_enc, s_dec), bernoulli=likelihood == "bernoulli",
        val_data=val_data, validate_every=validate_every, patience=patience, min_steps=min_steps,
    )
    x, enc, dec, d = st.x, st.encoder, st.decoder, st.latent_dim
    modules: dict[str, nn.Module] = {"encoder": enc, "decoder": dec}
    gamma = None
    if likelihood == "gaussian":
        gamma = modules["log_gamma"] = _LogGamma().to(st.device)

    def objective(batch: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        out = vae_loss(enc, dec, batch, gen, latent_dim=d, beta=beta,
                       log_gamma=None if gamma is None else gamma.value)
        if gamma is not None:
            out["log_gamma"] = gamma.value.detach()
        return out

    config = dict(trainer="vae", likelihood=likelihood, beta=beta, batch_size=batch_size, lr=st.lr,
                  latent_dim=d, seeds=[s_enc, s_dec, s_batch, s_global], data_shape=list(x.shape),
                  encoder=module_repr(encoder), decoder=module_repr(decoder))
    history = fit_objective(x, objective, modules, dec, **st.fit_kwargs(
        "vae.pt", steps=steps, batch_size=batch_size, seeds=(s_batch, s_global), config=config,
        checkpoint_every=checkpoint_every, resume=resume, progress=progress, log_every=log_every, desc="vae"))
    return VAEResult(enc, dec, history, d, beta=beta, likelihood=likelihood,
                     log_gamma=None if gamma is None else float(gamma.value.detach()))


class SecondStagePrior:
    """The two-stage VAE's latent sampler z = g₂(u), u ~ N(0, I_k): a latent with ``dim``, ``sample`` and
    ``n_parameters`` (the second-stage decoder's weights plus γ), usable in a
    :class:`~latentdist.train.pipeline.GenerativePipeline`.

    Parameters
    ----------
    decoder : nn.Module
        The second-stage decoder R^k -> R^dim (its mean; γ is not added at sampling, as in Dai & Wipf).
    in_dim, dim : int
        k and the first stage's latent dimension.
    """

    def __init__(self, decoder: nn.Module, in_dim: int, dim: int):
        if not isinstance(decoder, nn.Module):
            raise TypeError(f"decoder must be a torch.nn.Module, got {type(decoder).__name__}")
        self.decoder = decoder
        self.in_dim = check_int(in_dim, "in_dim", low=1)
        self.dim = check_int(dim, "dim", low=1)
        self.n_parameters = n_params(decoder) + 1

    def sample(self, n: int, seed: SeedLike = 0) -> torch.Tensor:
        """``n`` latent points g₂(u), float32 CPU (n, dim); same seed, same points."""
        n = check_int(n, "n", low=1)
        u = torch.randn(n, self.in_dim, generator=make_torch_generator(seed_int(seed)))
        return encode(self.decoder, u)

    def __repr__(self) -> str:
        return f"SecondStagePrior(in_dim={self.in_dim}, dim={self.dim}, n_parameters={self.n_parameters})"


@dataclasses.dataclass
class TwoStageVAEResult:
    """A two-stage VAE: the untouched ``first`` stage, the ``second`` VAE fitted on its posterior means,
    and ``prior`` (:class:`SecondStagePrior`) to sample the first decoder from."""

    first: VAEResult
    second: VAEResult
    prior: SecondStagePrior

    @property
    def history(self) -> pd.DataFrame:
        """The second stage's history (the first stage keeps its own)."""
        return self.second.history


def train_two_stage_vae(
    first: VAEResult,
    data: Any,
    encoder: Any,
    decoder: Any,
    *,
    latent_dim: int | None = None,
    beta: float = 1.0,
    seed: SeedLike = 0,
    **kwargs: Any,
) -> TwoStageVAEResult:
    """Fit Dai & Wipf's second stage on a trained VAE, whose parameters are left bit-identical.

    The first stage's encoder and decoder are frozen (``requires_grad=False``, eval mode); the codes
    z_i = μ(x_i) are computed once and a VAE with a learned-variance Gaussian decoder is fitted on them.

    Parameters
    ----------
    first : VAEResult
        The stage-1 VAE (e.g. from :func:`train_vae`).
    data : array or tensor
        The images stage 1 was trained on.
    encoder, decoder : Family or nn.Module
        Stage-2 networks on vectors: R^d -> R^{2k} and R^k -> R^d (e.g. ``MLPEncoder``, ``MLP``).
    latent_dim : int, optional
        k; defaults to the first stage's latent dimension (Dai & Wipf use k = d).
    beta, seed, **kwargs :
        Passed to :func:`train_vae` (``likelihood`` is always ``'gaussian'``); the checkpoint is
        ``vae.pt`` under ``checkpoint_dir``.

    Returns
    -------
    TwoStageVAEResult
    """
    if not isinstance(first, VAEResult):
        raise TypeError(f"first must be a VAEResult (from train_vae), got {type(first).__name__}")
    if "likelihood" in kwargs:
        raise ValueError("likelihood is fixed to 'gaussian' in the second stage (Dai & Wipf, 2019)")
    for m in (first.encoder, first.decoder):
        m.requires_grad_(False)
        m.eval()
    codes = to_tensor(first.encode(data), dtype=torch.float32)
    k = first.latent_dim if latent_dim is None else check_int(latent_dim, "latent_dim", low=1)
    second = train_vae(codes, encoder, decoder, beta=beta, likelihood="gaussian", latent_dim=k, seed=seed,
                       **kwargs)
    return TwoStageVAEResult(first, second, SecondStagePrior(second.decoder, k, first.latent_dim))
