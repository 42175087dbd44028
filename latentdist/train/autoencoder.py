"""Joint autoencoder and the two-stage Decoupled Autoencoder (DAE) of docs/theory.md §4.

Joint training minimises E ℓ(g(f(x)), x) over encoder f and decoder g together. The DAE splits it:

1. stage 1 minimises E ℓ(g_aux(f(x)), x) over f and a *weaker* auxiliary decoder g_aux;
2. stage 2 freezes f (``requires_grad=False``, eval mode, not in any optimizer), encodes the data once,
   z_i = f(x_i), and minimises E ℓ(g(z), x) over the full decoder g alone.

ℓ is ``'mse'`` (mean squared error per entry), ``'bce'`` (binary cross-entropy per entry, for data and
decoder outputs in [0, 1]) or ``'bce_logits'`` (the same Bernoulli likelihood with the decoder emitting
logits, numerically stable; images are sigmoid(logits)). Every logged row also carries ``mse`` (on images,
after the sigmoid for logits), whose square root bounds the latent-data
distance from above (docs/theory.md §4: D_{G,W1}(f#P_x, P_x) <= E||x - g(f(x))||).

With ``val_data`` every stage early-stops on the validation reconstruction loss (see
:func:`latentdist.train.loop.run_loop`) and keeps its best weights; the history gains ``val_loss``.
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
from latentdist._validation import (
    check_device,
    check_int,
    check_lr,
    check_option,
    check_scalar,
    check_steps,
    probe_module,
    to_tensor,
)
from latentdist.generators import ConvDecoder, Family
from latentdist.train.loop import (
    as_module,
    check_callbacks,
    check_loop_args,
    module_repr,
    n_params,
    prepare_data,
    run_loop,
    sample_index,
)
from latentdist.train.nets import add_dropout

__all__ = ["AutoencoderResult", "DAEResult", "train_autoencoder", "train_dae", "encode",
           "check_aux_not_larger", "AE_LOSSES", "STAGE2_INITS"]

AE_LOSSES = ("mse", "bce", "bce_logits")
STAGE2_INITS = ("fresh", "aux")


def encode(encoder: nn.Module, data: Any, *, batch_size: int = 1024) -> torch.Tensor:
    """Codes f(x) of ``data`` (n, ...) as a float32 CPU tensor (n, d), in eval mode, without gradients."""
    if not isinstance(encoder, nn.Module):
        raise TypeError(f"encoder must be a torch.nn.Module, got {type(encoder).__name__}")
    batch_size = check_int(batch_size, "batch_size", low=1)
    param = next(encoder.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = prepare_data(data, torch.device("cpu"), min_samples=1)
    probe_module(encoder, x[:2].to(device), "encoder")  # the wrong input size fails with a clear message
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
    loss: str = "mse"

    def image_decoder(self) -> nn.Module:
        """The decoder as a map from codes to images: followed by a sigmoid when it emits logits."""
        return nn.Sequential(self.decoder, nn.Sigmoid()) if self.loss == "bce_logits" else self.decoder

    def encode(self, data: Any, *, batch_size: int = 1024) -> torch.Tensor:
        """Codes f(x), float32 CPU tensor (n, latent_dim)."""
        return encode(self.encoder, data, batch_size=batch_size)

    def reconstruct(self, data: Any, *, batch_size: int = 1024) -> torch.Tensor:
        """g(f(x)), shaped like ``data``."""
        x = prepare_data(data, torch.device("cpu"), min_samples=1)
        out = encode(self.image_decoder(), self.encode(x, batch_size=batch_size), batch_size=batch_size)
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
    if loss == "bce_logits":
        return F.binary_cross_entropy_with_logits
    return F.mse_loss


def _as_image(out: torch.Tensor, loss: str) -> torch.Tensor:
    """Decoder output as an image (sigmoid of logits for ``'bce_logits'``)."""
    return torch.sigmoid(out) if loss == "bce_logits" else out


def _validation_loss(inputs: torch.Tensor, targets: torch.Tensor, forward, criterion, batch: int = 1000):
    """``validate()`` for run_loop: the mean reconstruction loss over the validation set, in batches."""

    def validate() -> float:
        total = 0.0
        for i in range(0, inputs.shape[0], batch):
            t = targets[i:i + batch]
            total += float(criterion(forward(inputs[i:i + batch]).reshape(t.shape), t, reduction="sum"))
        return total / targets.numel()

    return validate


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
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    early: dict | None = None,
) -> pd.DataFrame:
    """Minimise E loss(forward(inputs_i), targets_i) over the parameters of ``modules`` with Adam.

    ``val`` = (inputs, targets) turns on early stopping with the run_loop keywords in ``early``.
    """
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
            logs["mse"] = F.mse_loss(_as_image(out.detach(), loss), target)
        else:
            logs["mse"] = logs["loss"]
        return logs

    stopping = {}
    if val is not None:
        stopping = dict(early or {}, validate=_validation_loss(val[0], val[1], forward, criterion))

    history = run_loop(
        step_fn, state={**modules, "opt": opt}, generators={"batch": gen}, watched=watched, steps=steps,
        seed=seeds[1], device=dev, config=config, checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every, resume=resume, callbacks=callbacks, progress=progress,
        log_every=log_every, desc=desc, extra_logs=extra_logs, **stopping,
    )
    for m in modules.values():
        m.eval()
    return history


def _check_validation(val_data: Any, x: torch.Tensor, loss: str, dev, validate_every, patience,
                      min_steps, min_delta: float = 0.0) -> tuple[torch.Tensor | None, dict]:
    """The validation tensor (same sample shape as the data) and the early-stopping keywords."""
    unit_range = None if loss == "mse" else f"loss={loss!r}"
    return check_validation_data(val_data, x, dev, unit_range, validate_every, patience, min_steps,
                                 min_delta=min_delta)


def check_validation_data(val_data: Any, x: torch.Tensor, dev, unit_range: str | None, validate_every,
                          patience, min_steps, *, min_samples: int = 1,
                          min_delta: float = 0.0) -> tuple[torch.Tensor | None, dict]:
    """``val_data`` as a tensor shaped like the data ``x`` (in [0, 1] when ``unit_range`` names why it must
    be) and run_loop's early-stopping keywords; ``(None, {})`` without validation data. Shared by every
    autoencoder-style trainer."""
    if val_data is None:
        if validate_every is not None or patience is not None:
            raise ValueError("validate_every and patience need val_data (held-out samples to validate on)")
        return None, {}
    v = prepare_data(val_data, dev, min_samples=min_samples)
    if tuple(v.shape[1:]) != tuple(x.shape[1:]):
        raise ValueError(f"val_data must have samples shaped like data {tuple(x.shape[1:])}, "
                         f"got {tuple(v.shape[1:])}")
    if unit_range is not None and (v.min() < 0 or v.max() > 1):
        raise ValueError(f"{unit_range} needs val_data in [0, 1]")
    early = {"validate_every": validate_every, "patience": patience,
             "min_steps": check_int(min_steps, "min_steps", low=0)}
    if min_delta:  # only when set, so the checkpoint configs of earlier runs still match
        early["min_delta"] = check_scalar(min_delta, "min_delta", low=0.0)
    return v, early


def _resolve_latent_dim(encoder: Any, latent_dim: int | None, in_dim: int, sample: torch.Tensor) -> int:
    """The code dimension: from ``latent_dim``, the encoder family's ``latent_dim`` field, or a probe."""
    if not isinstance(encoder, nn.Module) and not callable(getattr(encoder, "build", None)):
        raise TypeError("encoder must be a torch.nn.Module or a family with .build(in_dim, out_dim, seed=), "
                        f"got {type(encoder).__name__}")
    own = getattr(encoder, "latent_dim", None) if not isinstance(encoder, nn.Module) else None
    if isinstance(encoder, nn.Module):  # a module of the wrong input size fails here, not mid-training
        dev = next(encoder.parameters(), sample).device
        code = probe_module(encoder, sample.to(dev), "encoder")
        if code.ndim != 2:
            raise ValueError(f"encoder must return codes of shape (n, d), got {tuple(code.shape)}")
        if latent_dim is None:
            return int(code.shape[1])
    if latent_dim is not None:
        latent_dim = check_int(latent_dim, "latent_dim", low=1)
        if own is not None and own != latent_dim:
            raise ValueError(f"latent_dim={latent_dim} contradicts the encoder family's latent_dim={own}")
        return latent_dim
    if own is not None:
        return check_int(own, "encoder.latent_dim", low=1)
    raise ValueError("latent_dim is required when the encoder family has no latent_dim field")


def _check_decoder(decoder: nn.Module, latent_dim: int, shape: tuple, loss: str, name: str, dev) -> None:
    # bce_logits puts no range on the outputs: they are logits
    out = probe_module(decoder, torch.zeros(2, latent_dim, device=dev), name)
    decoder.eval()
    if out.numel() != 2 * int(np.prod(shape)):
        raise ValueError(f"{name} must map (n, {latent_dim}) to n samples of shape {shape}, "
                         f"got output shape {tuple(out.shape)}")
    if loss == "bce" and (out.min() < 0 or out.max() > 1):
        raise ValueError(f"loss='bce' needs {name} outputs in [0, 1] (end the network with a sigmoid)")


def _check_common(data, loss, lr, weight_decay, device, callbacks):
    loss = check_option(loss, "loss", AE_LOSSES)
    dev = check_device(device)
    lr = check_lr(lr, "lr")
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
    val_data: Any = None,
    validate_every: int | None = None,
    patience: int | None = None,
    min_steps: int = 0,
    min_delta: float = 0.0,
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
        Adam on both networks, minibatches drawn with replacement; ``steps`` is the cap when early stopping.
    loss : {'mse', 'bce', 'bce_logits'}
        ``'bce_logits'`` expects a decoder emitting logits (e.g. ``ConvDecoder(output='linear')``).
    latent_dim : int, optional
        Code dimension; defaults to the encoder family's ``latent_dim`` (or a module's output size).
    val_data : array or tensor, optional
        Held-out samples shaped like ``data``; turns on early stopping on their reconstruction loss.
    validate_every, patience, min_steps, min_delta :
        As in :func:`~latentdist.train.loop.run_loop` (defaults: every ``log_every`` steps, never stop early).
    seed, device, checkpoint_dir, checkpoint_every, resume, callbacks, progress, log_every :
        As in :func:`~latentdist.train.gan.train_gan`; the checkpoint is ``autoencoder.pt`` and callbacks
        receive the decoder.

    Returns
    -------
    AutoencoderResult
        History columns: ``step``, ``loss``, ``mse``, ``val_loss`` (with ``val_data``) and whatever callbacks
        add; with ``val_data`` the history's ``attrs`` hold ``best_step``, ``best_val_loss``,
        ``stopped_step`` and the networks carry the best validated weights.

    Notes
    -----
    Seeds are spawned as (encoder, decoder, batches, global) = ``spawn_seeds(seed, 4)``, the first four of
    :func:`train_dae`'s, so a joint AE and a DAE with the same seed share encoder and final-decoder
    initialisation and draw the same minibatches.

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
    v, early = _check_validation(val_data, x, loss, dev, validate_every, patience, min_steps, min_delta)
    shape, flat = tuple(x.shape[1:]), int(np.prod(x.shape[1:]))
    s_enc, s_dec, s_batch, s_global = spawn_seeds(seed, 4)
    d = _resolve_latent_dim(encoder, latent_dim, flat, x[:2])
    enc = as_module(encoder, flat, d, s_enc, "encoder", dev)
    dec = as_module(decoder, d, flat, s_dec, "decoder", dev)
    _check_decoder(dec, d, shape, loss, "decoder", dev)
    config = dict(trainer="autoencoder", loss=loss, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                  latent_dim=d, seeds=[s_enc, s_dec, s_batch, s_global], data_shape=list(x.shape),
                  encoder=module_repr(encoder), decoder=module_repr(decoder), **_early_config(v, early))
    history = _fit(
        x, x, lambda b: dec(enc(b)), {"encoder": enc, "decoder": dec}, dec, loss=loss, steps=steps,
        batch_size=batch_size, lr=lr, weight_decay=weight_decay, seeds=(s_batch, s_global), dev=dev,
        config=config, checkpoint_path=None if ckpt_dir is None else ckpt_dir / "autoencoder.pt",
        checkpoint_every=checkpoint_every, resume=resume, callbacks=callbacks, progress=progress,
        log_every=log_every, desc="autoencoder", val=None if v is None else (v, v), early=early,
    )
    return AutoencoderResult(enc, dec, history, d, loss)


def _early_config(v: torch.Tensor | None, early: dict) -> dict:
    """Checkpoint-config entries of the validation set and early-stopping keywords (empty without)."""
    if v is None:
        return {}
    return {"val_shape": list(v.shape), "val_sum": round(float(v.double().sum()), 6), **early}


def _aux_family(aux_decoder: Any, aux_dropout: float) -> Any:
    """``aux_decoder`` with its dropout: the ConvDecoder's own Dropout2d field, else nn.Dropout layers."""
    if aux_dropout > 0 and isinstance(aux_decoder, ConvDecoder):
        if aux_decoder.dropout > 0:
            raise ValueError(f"aux_dropout={aux_dropout} and aux_decoder.dropout={aux_decoder.dropout} "
                             "both set; give the dropout once")
        return dataclasses.replace(aux_decoder, dropout=aux_dropout)
    return aux_decoder


def check_aux_not_larger(aux: nn.Module, decoder: nn.Module, aux_spec: Any = None,
                         dec_spec: Any = None) -> None:
    """Refuse an auxiliary decoder larger than the final one (the DAE's premise is a *weaker* g_aux).

    Larger means more parameters or, for two families with ``channels``/``width`` and ``depth`` fields,
    a larger value of either.

    Raises
    ------
    ValueError
        Naming ``aux_decoder`` and both sizes.
    """
    n_aux, n_dec = n_params(aux), n_params(decoder)
    if n_aux > n_dec:
        raise ValueError(f"aux_decoder must not be larger than decoder: {n_aux} parameters > {n_dec}")
    if isinstance(aux_spec, Family) and isinstance(dec_spec, Family):
        for field in ("channels", "width", "depth"):
            a, b = getattr(aux_spec, field, None), getattr(dec_spec, field, None)
            if a is not None and b is not None and a > b:
                raise ValueError(f"aux_decoder must not be larger than decoder: {field} {a} > {b}")


def _init_from(dec: nn.Module, aux: nn.Module) -> None:
    """Copy the auxiliary decoder's parameters into ``dec`` (equal shapes in order; dropout has none)."""
    pa, pd_ = list(aux.parameters()), list(dec.parameters())
    if [p.shape for p in pa] != [p.shape for p in pd_]:
        raise ValueError("stage2_init='aux' needs an aux_decoder with the decoder's parameter shapes "
                         "(weaken it by dropout only)")
    with torch.no_grad():
        for a, b in zip(pa, pd_, strict=True):
            b.copy_(a)


def train_dae(
    data: Any,
    encoder: Any,
    aux_decoder: Any,
    decoder: Any,
    *,
    stage1_steps: int = 2000,
    stage2_steps: int = 2000,
    aux_dropout: float = 0.0,
    stage2_init: str = "fresh",
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    loss: str = "mse",
    latent_dim: int | None = None,
    val_data: Any = None,
    validate_every: int | None = None,
    patience: int | None = None,
    min_steps: int = 0,
    min_delta: float = 0.0,
    seed: SeedLike = 0,
    device: str | torch.device = "cpu",
    checkpoint_dir: Any = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    callbacks: Any = (),
    progress: bool = True,
    log_every: int = 50,
) -> DAEResult:
    """Two-stage Decoupled Autoencoder (docs/theory.md §4).

    Stage 1: min over f, g_aux of E ℓ(g_aux(f(x)), x). Stage 2: freeze f and min over g of E ℓ(g(f(x)), x),
    with the codes f(x) computed once in eval mode. The encoder's parameters do not change in stage 2.

    Parameters
    ----------
    data : array or tensor, shape (n, D) or (n, C, H, W)
    encoder : Family or nn.Module
    aux_decoder : Family or nn.Module
        The weaker stage-1 decoder, weakened by width, depth or dropout, e.g.
        ``ConvDecoder(8, depth=0)`` against ``ConvDecoder(32, depth=1)``. It must not be larger than
        ``decoder`` (more parameters, channels/width or depth): such a config raises ``ValueError``.
    decoder : Family or nn.Module
        The full decoder trained in stage 2.
    stage1_steps, stage2_steps : int
        Step caps of the two stages.
    aux_dropout : float in [0, 1)
        Dropout of the auxiliary decoder: ``Dropout2d`` after every hidden activation for a
        :class:`~latentdist.generators.ConvDecoder` family, ``nn.Dropout`` (via :func:`add_dropout`) else.
    stage2_init : {'fresh', 'aux'}
        Stage 2 starts from a freshly initialised decoder (default) or from the auxiliary decoder's
        weights (needs equal parameter shapes, i.e. an aux weakened by dropout only).
    batch_size, lr, weight_decay, loss, latent_dim, val_data, validate_every, patience, min_steps, min_delta :
        As in :func:`train_autoencoder`; shared by both stages, each of which early-stops on its own
        validation loss (stage 1: aux(f(x_val)), stage 2: g(f(x_val))).
    seed, device, checkpoint_dir, checkpoint_every, resume, callbacks, progress, log_every :
        As in :func:`train_autoencoder`. Checkpoints are ``dae_stage1.pt`` and ``dae_stage2.pt``; callbacks
        receive the auxiliary decoder in stage 1 and the decoder in stage 2, and ``logs['stage']``.

    Returns
    -------
    DAEResult
        History columns: ``stage``, ``step``, ``loss``, ``mse``, ``val_loss`` (with ``val_data``) and whatever
        callbacks add; ``history.attrs['stages']`` holds each stage's early-stopping summary.

    Notes
    -----
    Seeds: ``spawn_seeds(seed, 5)`` = (encoder, decoder, batches, global, aux). The first four are those of
    :func:`train_autoencoder` with the same seed, and both stages use the batch stream of the joint AE,
    so a DAE and a joint AE with one seed are paired: same encoder and final-decoder initialisation, same
    minibatch order.

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
    check_steps(stage2_steps, "stage2_steps")
    aux_dropout = check_scalar(aux_dropout, "aux_dropout", low=0.0, high=1.0, high_inclusive=False)
    stage2_init = check_option(stage2_init, "stage2_init", STAGE2_INITS)
    v, early = _check_validation(val_data, x, loss, dev, validate_every, patience, min_steps, min_delta)
    shape, flat = tuple(x.shape[1:]), int(np.prod(x.shape[1:]))
    s_enc, s_dec, s_batch, s_global, s_aux = spawn_seeds(seed, 5)
    d = _resolve_latent_dim(encoder, latent_dim, flat, x[:2])
    enc = as_module(encoder, flat, d, s_enc, "encoder", dev)
    aux_spec = _aux_family(aux_decoder, aux_dropout)
    aux = as_module(aux_spec, d, flat, s_aux, "aux_decoder", dev)
    if aux_dropout > 0 and aux_spec is aux_decoder:
        aux = add_dropout(aux, aux_dropout)
    dec = as_module(decoder, d, flat, s_dec, "decoder", dev)
    check_aux_not_larger(aux, dec, aux_spec, decoder)
    _check_decoder(aux, d, shape, loss, "aux_decoder", dev)
    _check_decoder(dec, d, shape, loss, "decoder", dev)
    base = dict(trainer="dae", loss=loss, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                latent_dim=d, seeds=[s_enc, s_dec, s_batch, s_global, s_aux], data_shape=list(x.shape),
                encoder=module_repr(encoder), aux_decoder=module_repr(aux_decoder), aux_dropout=aux_dropout,
                decoder=module_repr(decoder), stage2_init=stage2_init, **_early_config(v, early))
    common = dict(loss=loss, batch_size=batch_size, lr=lr, weight_decay=weight_decay, dev=dev,
                  checkpoint_every=checkpoint_every, resume=resume, callbacks=callbacks, progress=progress,
                  log_every=log_every, seeds=(s_batch, s_global), early=early)

    h1 = _fit(
        x, x, lambda b: aux(enc(b)), {"encoder": enc, "aux_decoder": aux}, aux, steps=stage1_steps,
        config={**base, "stage": 1}, val=None if v is None else (v, v),
        checkpoint_path=None if ckpt_dir is None else ckpt_dir / "dae_stage1.pt", desc="dae stage 1",
        extra_logs={"stage": 1}, **common,
    )

    # Stage 2: the encoder is frozen for good; the decoder learns from fixed codes.
    enc.requires_grad_(False)
    enc.eval()
    codes = to_tensor(encode(enc, x), dtype=torch.float32).to(dev)
    val2 = None if v is None else (to_tensor(encode(enc, v), dtype=torch.float32).to(dev), v)
    if stage2_init == "aux":
        _init_from(dec, aux)
    h2 = _fit(
        codes, x, dec, {"decoder": dec}, dec, steps=stage2_steps,
        config={**base, "stage": 2, "stage1_steps": stage1_steps}, val=val2,
        checkpoint_path=None if ckpt_dir is None else ckpt_dir / "dae_stage2.pt", desc="dae stage 2",
        extra_logs={"stage": 2}, **common,
    )
    history = pd.concat([h1, h2], ignore_index=True)
    history.attrs = {"stages": {1: dict(h1.attrs), 2: dict(h2.attrs)}}
    return DAEResult(enc, dec, history, d, loss, aux_decoder=aux)
