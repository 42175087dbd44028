"""Joint autoencoder and the two-stage Decoupled Autoencoder (DAE) of THEORY.md §4.

Joint training minimises E ℓ(g(f(x)), x) over encoder f and decoder g together. The DAE splits it:

1. stage 1 minimises E ℓ(g_aux(f(x)), x) over f and a *weaker* auxiliary decoder g_aux;
2. stage 2 freezes f (``requires_grad=False``, eval mode, not in any optimizer), encodes the data once,
   z_i = f(x_i), and minimises E ℓ(g(z), x) over the full decoder g alone.

ℓ is ``'mse'`` (mean squared error per entry) or ``'bce'`` (binary cross-entropy per entry, for data and
decoder outputs in [0, 1]). Every logged row also carries ``mse``, whose square root bounds the latent-data
distance from above (THEORY.md §4: D_{G,W1}(f#P_x, P_x) <= E||x - g(f(x))||).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from latentdist._seeding import SeedLike, make_torch_generator, spawn_seeds
from latentdist._validation import check_device, check_int, check_option, check_scalar, to_tensor
from latentdist.train.loop import (
    as_module,
    check_callbacks,
    check_loop_args,
    module_repr,
    prepare_data,
    run_loop,
    sample_index,
)
from latentdist.train.nets import add_dropout

__all__ = ["AutoencoderResult", "DAEResult", "train_autoencoder", "train_dae", "encode", "AE_LOSSES"]

AE_LOSSES = ("mse", "bce")


def encode(encoder: nn.Module, data: Any, *, batch_size: int = 1024) -> torch.Tensor:
    """Codes f(x) of ``data`` (n, ...) as a float32 CPU tensor (n, d), in eval mode, without gradients."""
    batch_size = check_int(batch_size, "batch_size", low=1)
    param = next(encoder.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = prepare_data(data, torch.device("cpu"), min_samples=1)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            codes = [encoder(x[i:i + batch_size].to(device)).cpu() for i in range(0, x.shape[0], batch_size)]
    finally:
        encoder.train(was_training)
    return torch.cat(codes)


@dataclasses.dataclass
class AutoencoderResult:
    """A jointly trained autoencoder: ``encoder``, ``decoder`` and the logged ``history``.

    ``encode(x)`` gives the codes to fit a prior on; ``reconstruct(x)`` gives g(f(x)).
    """

    encoder: nn.Module
    decoder: nn.Module
    history: pd.DataFrame
    latent_dim: int

    def encode(self, data: Any, *, batch_size: int = 1024) -> torch.Tensor:
        """Codes f(x), float32 CPU tensor (n, latent_dim)."""
        return encode(self.encoder, data, batch_size=batch_size)

    def reconstruct(self, data: Any, *, batch_size: int = 1024) -> torch.Tensor:
        """g(f(x)), shaped like ``data``."""
        x = prepare_data(data, torch.device("cpu"), min_samples=1)
        out = encode(self.decoder, self.encode(x, batch_size=batch_size), batch_size=batch_size)
        shape = tuple(x.shape[1:])
        return out.reshape(out.shape[0], *shape)


@dataclasses.dataclass
class DAEResult(AutoencoderResult):
    """A Decoupled Autoencoder: the frozen ``encoder``, stage-1 ``aux_decoder`` and stage-2 ``decoder``.

    ``history`` has a ``stage`` column (1 or 2); ``step`` counts within each stage.
    """

    aux_decoder: nn.Module = None


def _reconstruction_loss(loss: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if loss == "bce":
        return F.binary_cross_entropy
    return F.mse_loss


def _fit(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    forward: Callable[[torch.Tensor], torch.Tensor],
    modules: dict[str, nn.Module],
    watched: nn.Module,
    *,
    loss: str,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seeds: tuple[int, int],
    dev: torch.device,
    config: dict,
    checkpoint_path,
    checkpoint_every: int,
    resume: bool,
    callbacks: tuple,
    progress: bool,
    log_every: int,
    desc: str,
    extra_logs: dict | None = None,
) -> pd.DataFrame:
    """Minimise E loss(forward(inputs_i), targets_i) over the parameters of ``modules`` with Adam."""
    params = [p for m in modules.values() for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    gen = make_torch_generator(seeds[0])
    criterion = _reconstruction_loss(loss)
    for m in modules.values():
        m.train()

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        idx = sample_index(inputs.shape[0], batch_size, gen, dev)
        target = targets[idx]
        out = forward(inputs[idx]).reshape(target.shape)
        value = criterion(out, target)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        logs = {"loss": value.detach()}
        if loss != "mse":
            logs["mse"] = F.mse_loss(out.detach(), target)
        else:
            logs["mse"] = logs["loss"]
        return logs

    history = run_loop(
        step_fn, state={**modules, "opt": opt}, generators={"batch": gen}, watched=watched, steps=steps,
        seed=seeds[1], device=dev, config=config, checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every, resume=resume, callbacks=callbacks, progress=progress,
        log_every=log_every, desc=desc, extra_logs=extra_logs,
    )
    for m in modules.values():
        m.eval()
    return history


def _resolve_latent_dim(encoder: Any, latent_dim: int | None, in_dim: int, sample: torch.Tensor) -> int:
    """The code dimension: from ``latent_dim``, the encoder family's ``latent_dim`` field, or a probe."""
    if not isinstance(encoder, nn.Module) and not callable(getattr(encoder, "build", None)):
        raise TypeError("encoder must be a torch.nn.Module or a family with .build(in_dim, out_dim, seed=), "
                        f"got {type(encoder).__name__}")
    own = getattr(encoder, "latent_dim", None) if not isinstance(encoder, nn.Module) else None
    if latent_dim is not None:
        latent_dim = check_int(latent_dim, "latent_dim", low=1)
        if own is not None and own != latent_dim:
            raise ValueError(f"latent_dim={latent_dim} contradicts the encoder family's latent_dim={own}")
        return latent_dim
    if own is not None:
        return check_int(own, "encoder.latent_dim", low=1)
    if isinstance(encoder, nn.Module):
        was_training = encoder.training
        encoder.eval()
        with torch.no_grad():
            dev = next(encoder.parameters()).device
            code = encoder(sample.to(dev))
        encoder.train(was_training)
        if code.ndim != 2:
            raise ValueError(f"encoder must return codes of shape (n, d), got {tuple(code.shape)}")
        return int(code.shape[1])
    raise ValueError("latent_dim is required when the encoder family has no latent_dim field")


def _check_decoder(decoder: nn.Module, latent_dim: int, shape: tuple, loss: str, name: str, dev) -> None:
    decoder.eval()
    with torch.no_grad():
        out = decoder(torch.zeros(2, latent_dim, device=dev))
    if out.numel() != 2 * int(np.prod(shape)):
        raise ValueError(f"{name} must map (n, {latent_dim}) to n samples of shape {shape}, "
                         f"got output shape {tuple(out.shape)}")
    if loss == "bce" and (out.min() < 0 or out.max() > 1):
        raise ValueError(f"loss='bce' needs {name} outputs in [0, 1] (end the network with a sigmoid)")


def _check_common(data, loss, lr, weight_decay, device, callbacks):
    loss = check_option(loss, "loss", AE_LOSSES)
    dev = check_device(device)
    lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
    weight_decay = check_scalar(weight_decay, "weight_decay", low=0.0)
    callbacks = check_callbacks(callbacks)
    x = prepare_data(data, dev)
    if loss == "bce" and (x.min() < 0 or x.max() > 1):
        raise ValueError("loss='bce' needs data in [0, 1]; rescale the data or use loss='mse'")
    return loss, dev, lr, weight_decay, callbacks, x


def train_autoencoder(
    data: Any,
    encoder: Any,
    decoder: Any,
    *,
    steps: int = 2000,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    loss: str = "mse",
    latent_dim: int | None = None,
    seed: SeedLike = 0,
    device: str | torch.device = "cpu",
    checkpoint_dir: Any = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    callbacks: Any = (),
    progress: bool = True,
    log_every: int = 50,
) -> AutoencoderResult:
    """Train encoder and decoder jointly: min over f, g of E ℓ(g(f(x)), x) (the baseline of the DAE).

    Parameters
    ----------
    data : array or tensor, shape (n, D) or (n, C, H, W)
    encoder : Family or nn.Module
        Built as ``encoder.build(prod(data.shape[1:]), latent_dim, seed=...)``.
    decoder : Family or nn.Module
        Built as ``decoder.build(latent_dim, prod(data.shape[1:]), seed=...)``; outputs are reshaped like
        the data. Modules are copied, never trained in place.
    steps, batch_size, lr, weight_decay :
        Adam on both networks, minibatches drawn with replacement.
    loss : {'mse', 'bce'}
    latent_dim : int, optional
        Code dimension; defaults to the encoder family's ``latent_dim`` (or a module's output size).
    seed, device, checkpoint_dir, checkpoint_every, resume, callbacks, progress, log_every :
        As in :func:`~latentdist.train.gan.train_gan`; the checkpoint is ``autoencoder.pt`` and callbacks
        receive the decoder.

    Returns
    -------
    AutoencoderResult
        History columns: ``step``, ``loss``, ``mse`` and whatever callbacks add.

    Examples
    --------
    >>> from latentdist.generators import MLP
    >>> from latentdist.train.nets import MLPEncoder
    >>> x = torch.randn(200, 3)
    >>> res = train_autoencoder(x, MLPEncoder(width=16, latent_dim=2), MLP(width=16), steps=5, progress=False)
    >>> res.encode(x).shape
    torch.Size([200, 2])
    """
    loss, dev, lr, weight_decay, callbacks, x = _check_common(data, loss, lr, weight_decay, device, callbacks)
    ckpt_dir = check_loop_args(steps, batch_size, checkpoint_dir, checkpoint_every, log_every, resume)
    shape, flat = tuple(x.shape[1:]), int(np.prod(x.shape[1:]))
    s_enc, s_dec, s_batch, s_global = spawn_seeds(seed, 4)
    d = _resolve_latent_dim(encoder, latent_dim, flat, x[:2])
    enc = as_module(encoder, flat, d, s_enc, "encoder", dev)
    dec = as_module(decoder, d, flat, s_dec, "decoder", dev)
    _check_decoder(dec, d, shape, loss, "decoder", dev)
    config = dict(trainer="autoencoder", loss=loss, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                  latent_dim=d, seeds=[s_enc, s_dec, s_batch, s_global], data_shape=list(x.shape),
                  encoder=module_repr(encoder), decoder=module_repr(decoder))
    history = _fit(
        x, x, lambda b: dec(enc(b)), {"encoder": enc, "decoder": dec}, dec, loss=loss, steps=steps,
        batch_size=batch_size, lr=lr, weight_decay=weight_decay, seeds=(s_batch, s_global), dev=dev,
        config=config, checkpoint_path=None if ckpt_dir is None else ckpt_dir / "autoencoder.pt",
        checkpoint_every=checkpoint_every, resume=resume, callbacks=callbacks, progress=progress,
        log_every=log_every, desc="autoencoder",
    )
    return AutoencoderResult(enc, dec, history, d)


def train_dae(
    data: Any,
    encoder: Any,
    aux_decoder: Any,
    decoder: Any,
    *,
    stage1_steps: int = 2000,
    stage2_steps: int = 2000,
    aux_dropout: float = 0.0,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    loss: str = "mse",
    latent_dim: int | None = None,
    seed: SeedLike = 0,
    device: str | torch.device = "cpu",
    checkpoint_dir: Any = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    callbacks: Any = (),
    progress: bool = True,
    log_every: int = 50,
) -> DAEResult:
    """Two-stage Decoupled Autoencoder (THEORY.md §4).

    Stage 1: min over f, g_aux of E ℓ(g_aux(f(x)), x). Stage 2: freeze f and min over g of E ℓ(g(f(x)), x),
    with the codes f(x) computed once in eval mode. The encoder's parameters do not change in stage 2.

    Parameters
    ----------
    data : array or tensor, shape (n, D) or (n, C, H, W)
    encoder : Family or nn.Module
    aux_decoder : Family or nn.Module
        The weaker stage-1 decoder, e.g. ``weaken(ConvDecoder(32), width_mult=0.25)``.
    decoder : Family or nn.Module
        The full decoder trained in stage 2 from scratch.
    stage1_steps, stage2_steps : int
    aux_dropout : float in [0, 1)
        Dropout after every hidden activation of the auxiliary decoder (another way to weaken it).
    batch_size, lr, weight_decay, loss, latent_dim :
        As in :func:`train_autoencoder`; shared by both stages.
    seed, device, checkpoint_dir, checkpoint_every, resume, callbacks, progress, log_every :
        As in :func:`train_autoencoder`. Checkpoints are ``dae_stage1.pt`` and ``dae_stage2.pt``; callbacks
        receive the auxiliary decoder in stage 1 and the decoder in stage 2, and ``logs['stage']``.

    Returns
    -------
    DAEResult
        History columns: ``stage``, ``step``, ``loss``, ``mse`` and whatever callbacks add.

    Examples
    --------
    >>> from latentdist.generators import MLP
    >>> from latentdist.train.nets import MLPEncoder
    >>> x = torch.randn(200, 3)
    >>> res = train_dae(x, MLPEncoder(width=16, latent_dim=2), MLP(width=4), MLP(width=16),
    ...                 stage1_steps=5, stage2_steps=5, progress=False)
    >>> sorted(res.history["stage"].unique().tolist())
    [1, 2]
    """
    loss, dev, lr, weight_decay, callbacks, x = _check_common(data, loss, lr, weight_decay, device, callbacks)
    ckpt_dir = check_loop_args(stage1_steps, batch_size, checkpoint_dir, checkpoint_every, log_every, resume,
                               steps_name="stage1_steps")
    check_int(stage2_steps, "stage2_steps", low=1)
    aux_dropout = check_scalar(aux_dropout, "aux_dropout", low=0.0, high=1.0, high_inclusive=False)
    shape, flat = tuple(x.shape[1:]), int(np.prod(x.shape[1:]))
    s_enc, s_aux, s_dec, s_b1, s_g1, s_b2, s_g2 = spawn_seeds(seed, 7)
    d = _resolve_latent_dim(encoder, latent_dim, flat, x[:2])
    enc = as_module(encoder, flat, d, s_enc, "encoder", dev)
    aux = as_module(aux_decoder, d, flat, s_aux, "aux_decoder", dev)
    if aux_dropout > 0:
        aux = add_dropout(aux, aux_dropout)
    dec = as_module(decoder, d, flat, s_dec, "decoder", dev)
    _check_decoder(aux, d, shape, loss, "aux_decoder", dev)
    _check_decoder(dec, d, shape, loss, "decoder", dev)
    base = dict(trainer="dae", loss=loss, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                latent_dim=d,
                seeds=[s_enc, s_aux, s_dec, s_b1, s_g1, s_b2, s_g2], data_shape=list(x.shape),
                encoder=module_repr(encoder), aux_decoder=module_repr(aux_decoder), aux_dropout=aux_dropout,
                decoder=module_repr(decoder))
    common = dict(loss=loss, batch_size=batch_size, lr=lr, weight_decay=weight_decay, dev=dev,
                  checkpoint_every=checkpoint_every, resume=resume, callbacks=callbacks, progress=progress,
                  log_every=log_every)

    h1 = _fit(
        x, x, lambda b: aux(enc(b)), {"encoder": enc, "aux_decoder": aux}, aux, steps=stage1_steps,
        seeds=(s_b1, s_g1), config={**base, "stage": 1},
        checkpoint_path=None if ckpt_dir is None else ckpt_dir / "dae_stage1.pt", desc="dae stage 1",
        extra_logs={"stage": 1}, **common,
    )

    # Stage 2: the encoder is frozen for good; the decoder learns from fixed codes.
    enc.requires_grad_(False)
    enc.eval()
    codes = to_tensor(encode(enc, x), dtype=torch.float32).to(dev)
    h2 = _fit(
        codes, x, dec, {"decoder": dec}, dec, steps=stage2_steps, seeds=(s_b2, s_g2),
        config={**base, "stage": 2, "stage1_steps": stage1_steps},
        checkpoint_path=None if ckpt_dir is None else ckpt_dir / "dae_stage2.pt", desc="dae stage 2",
        extra_logs={"stage": 2}, **common,
    )
    history = pd.concat([h1, h2], ignore_index=True)
    return DAEResult(enc, dec, history, d, aux_decoder=aux)
