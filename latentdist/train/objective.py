"""Minibatch minimisation of an arbitrary per-batch objective on the shared :func:`run_loop`.

The VAE, two-stage VAE, RAE and WAE trainers differ only in their objective L(batch); this module owns the
rest (optimizer, batch stream, the loop call), so none of them carries a copy of a training loop. An
objective is ``objective(batch, gen) -> {'loss': scalar tensor, other: scalar tensor, ...}``: ``gen`` is
the trainer's CPU torch Generator (for reparameterisation noise or prior draws, so a checkpointed run
resumes bit-identically); ``loss`` is minimised and every entry is logged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from latentdist._seeding import make_torch_generator
from latentdist.train.loop import run_loop, sample_index

__all__ = ["Objective", "fit_objective", "bernoulli_nll", "setup_autoencoder", "check_validation", "Setup"]

Objective = Callable[[torch.Tensor, torch.Generator], Mapping[str, torch.Tensor]]


def fit_objective(
    data: torch.Tensor,
    objective: Objective,
    modules: Mapping[str, nn.Module],
    watched: nn.Module,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seeds: tuple[int, int],
    dev: torch.device,
    config: Mapping[str, Any],
    checkpoint_path: Any,
    checkpoint_every: int,
    resume: bool,
    callbacks: tuple,
    progress: bool,
    log_every: int,
    desc: str,
    extra_logs: Mapping[str, Any] | None = None,
    val: torch.Tensor | None = None,
    early: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    r"""Minimise :math:`\mathbb{E}_{B}\, L(B)` over the parameters of ``modules`` with Adam.

    Each step draws a minibatch B of ``batch_size`` rows of ``data`` (n, ...) uniformly with replacement
    from a Generator seeded with ``seeds[0]``, evaluates ``objective(B, gen)`` and takes one Adam step on
    its ``'loss'``. ``seeds[1]`` seeds the global RNG inside the loop (dropout). The modules are in train
    mode during the loop and in eval mode afterwards. The remaining arguments are those of
    :func:`~latentdist.train.loop.run_loop`.

    With ``val`` (held-out rows shaped like ``data``) the loop early-stops on the objective's mean
    ``'loss'`` over ``val`` (batches of 1000, noise from a Generator re-seeded with ``seeds[0]`` at every
    validation, so the validation loss is a deterministic function of the weights), with the run_loop
    keywords in ``early`` (``validate_every``, ``patience``, ``min_steps``), and keeps the best weights.

    Returns
    -------
    pandas.DataFrame
        The logged history: ``step`` and every entry the objective returns.
    """
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    gen = make_torch_generator(seeds[0])
    for m in modules.values():
        m.train()

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        out = objective(data[sample_index(data.shape[0], batch_size, gen, dev)], gen)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        return {k: v.detach() for k, v in out.items()}

    stopping: dict[str, Any] = {}
    if val is not None:
        stopping = dict(early or {}, validate=_validation(val, objective, seeds[0]))
    history = run_loop(
        step_fn, state={**modules, "opt": opt}, generators={"batch": gen}, watched=watched, steps=steps,
        seed=seeds[1], device=dev, config=config, checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every, resume=resume, callbacks=callbacks, progress=progress,
        log_every=log_every, desc=desc, extra_logs=extra_logs, **stopping,
    )
    for m in modules.values():
        m.eval()
    return history


def _validation(val: torch.Tensor, objective: Objective, seed: int, batch: int = 1000):
    """``validate()`` for run_loop: the objective's mean loss over ``val``, with fixed noise."""

    def validate() -> float:
        gen, total = make_torch_generator(seed), 0.0
        # enable_grad: a decoder-Jacobian penalty (RAE-GP) needs autograd even while validating
        with torch.enable_grad():
            for i in range(0, val.shape[0], batch):
                part = val[i:i + batch]
                total += float(objective(part, gen)["loss"].detach()) * part.shape[0]
        return total / val.shape[0]

    return validate


def check_validation(val_data: Any, x: torch.Tensor, dev: torch.device, bernoulli: bool, validate_every: Any,
                     patience: Any, min_steps: Any) -> tuple[torch.Tensor | None, dict]:
    """The validation tensor (samples shaped like ``x``) and the early-stopping keywords of run_loop."""
    from latentdist.train.autoencoder import check_validation_data

    return check_validation_data(val_data, x, dev, "a Bernoulli decoder" if bernoulli else None,
                                 validate_every, patience, min_steps, min_samples=2)


def bernoulli_nll(probs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""Per-sample Bernoulli negative log-likelihood :math:`-\sum_j x_j \log p_j + (1-x_j)\log(1-p_j)`.

    ``probs`` (decoder outputs in [0, 1]) is reshaped like ``x`` (n, ...); returns shape (n,). Logs are
    clamped at -100 (``torch.nn.functional.binary_cross_entropy``), so a saturated pixel costs 100 nats,
    not infinity.
    """
    bce = torch.nn.functional.binary_cross_entropy(probs.reshape(x.shape), x, reduction="none")
    return bce.flatten(1).sum(1)


@dataclasses.dataclass
class Setup:
    """What :func:`setup_autoencoder` validated and built."""

    x: torch.Tensor
    encoder: nn.Module
    decoder: nn.Module
    latent_dim: int
    device: torch.device
    lr: float
    callbacks: tuple
    checkpoint_dir: Any
    val: torch.Tensor | None
    early: dict

    def fit_kwargs(self, checkpoint_name: str, **kw: Any) -> dict[str, Any]:
        """The keywords of :func:`fit_objective` that come from the setup (plus ``kw``)."""
        path = None if self.checkpoint_dir is None else self.checkpoint_dir / checkpoint_name
        return dict(dev=self.device, lr=self.lr, callbacks=self.callbacks, checkpoint_path=path, val=self.val,
                    early=self.early, **kw)


def setup_autoencoder(
    data: Any, encoder: Any, decoder: Any, *, latent_dim: int | None, code_mult: int, lr: float,
    device: Any, callbacks: Any, steps: int, batch_size: int, checkpoint_dir: Any, checkpoint_every: int,
    log_every: int, resume: bool, seeds: tuple[int, int], bernoulli: bool = True, val_data: Any = None,
    validate_every: int | None = None, patience: int | None = None, min_steps: int = 0,
) -> Setup:
    """Validate the arguments every encoder-decoder trainer shares and build both networks.

    The encoder is built with ``code_mult * latent_dim`` outputs (2 for a Gaussian encoder that returns
    mean and log-variance, 1 for a deterministic one). With ``bernoulli`` the data must lie in [0, 1] and
    the decoder must end in a sigmoid. ``val_data`` and the early-stopping keywords are checked as in
    :func:`check_validation`.
    """
    from latentdist.train.autoencoder import _check_common, _check_decoder, _resolve_latent_dim
    from latentdist.train.loop import as_module, check_loop_args

    loss = "bce" if bernoulli else "mse"
    _, dev, lr, _, callbacks, x = _check_common(data, loss, lr, 0.0, device, callbacks)
    ckpt_dir = check_loop_args(steps, batch_size, checkpoint_dir, checkpoint_every, log_every, resume)
    val, early = check_validation(val_data, x, dev, bernoulli, validate_every, patience, min_steps)
    shape, flat = tuple(x.shape[1:]), int(np.prod(x.shape[1:]))
    if isinstance(encoder, nn.Module) and latent_dim is None:
        raise ValueError("latent_dim is required when the encoder is a module (its output has "
                         f"{code_mult} x latent_dim entries)")
    d = _resolve_latent_dim(encoder, latent_dim, flat, x[:2])
    enc = as_module(encoder, flat, code_mult * d, seeds[0], "encoder", dev)
    with torch.no_grad():
        enc.eval()
        out = enc(x[:2])
    if out.ndim != 2 or out.shape[1] != code_mult * d:
        raise ValueError(f"encoder must return (n, {code_mult * d}) = (n, {code_mult} x latent_dim), "
                         f"got {tuple(out.shape)}")
    dec = as_module(decoder, d, flat, seeds[1], "decoder", dev)
    _check_decoder(dec, d, shape, loss, "decoder", dev)
    return Setup(x, enc, dec, d, dev, lr, callbacks, ckpt_dir, val, early)
