"""The plumbing every trainer shares: seeding, the step loop, logging, callbacks, checkpoint and resume.

A trainer builds its modules, optimizers and torch Generators, writes a ``step_fn(step) -> dict`` that does
one update and returns the scalars to log, and hands both to :func:`run_loop`. The loop

* runs inside ``torch.random.fork_rng`` with the global torch RNG seeded from ``seed``, so dropout and other
  global-RNG draws are reproducible while the caller's RNG state is left untouched;
* every ``log_every`` steps (and at the last) turns the scalars into floats, calls each callback
  ``cb(step, model, logs)`` (callbacks may add entries) and appends the row to the history;
* every ``checkpoint_every`` steps (and at the last) writes modules, optimizers, every RNG state (the
  trainer's Generators and the global CPU/CUDA states), the step and the history, atomically;
* with ``resume=True`` restarts from that file, so an interrupted run ends bit-identical to an
  uninterrupted one on CPU.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from latentdist._io import CheckpointError, load_checkpoint, save_checkpoint, unwritable_reason
from latentdist._progress import progress_bar
from latentdist._seeding import seeded
from latentdist._validation import (
    check_array,
    check_batch_size,
    check_cast,
    check_int,
    check_scalar,
    check_steps,
    to_tensor,
)

__all__ = [
    "Callback", "EarlyStopping", "run_loop", "as_module", "prepare_data", "check_callbacks",
    "check_loop_args", "draw_latent", "sample_index",
]

Callback = Callable[[int, nn.Module, dict], None]

CHECKPOINT_VERSION = 1
_NONE: Mapping[str, Any] = MappingProxyType({})  # read-only default for the optional mappings
_CPU = torch.device("cpu")


def run_loop(
    step_fn: Callable[[int], Mapping[str, Any]],
    *,
    state: Mapping[str, Any] = _NONE,
    generators: Mapping[str, torch.Generator] = _NONE,
    watched: nn.Module | None = None,
    steps: int,
    seed: int | None = None,
    device: torch.device = _CPU,
    config: Mapping[str, Any] = _NONE,
    checkpoint_path: Path | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    callbacks: Iterable[Callback] = (),
    progress: bool = False,
    log_every: int | None = None,
    desc: str = "",
    extra_logs: Mapping[str, Any] | None = None,
    validate: Callable[[], float] | None = None,
    validate_every: int | None = None,
    patience: int | None = None,
    min_steps: int = 0,
    min_delta: float = 0.0,
    restore_best: bool = True,
) -> pd.DataFrame:
    """Run ``step_fn`` for steps ``start..steps-1`` and return the logged history.

    This is the package's one training loop: the GAN/AE trainers use all of it, and the light fits (the
    batched generator ensembles, the optimal-latent search, the critic, the flow prior, the feature
    classifier, the max-sliced ascent) use its defaults (no checkpoint, no callbacks) with an optimiser
    from :mod:`latentdist.optim`. ``seed=None`` forks the global RNG without seeding it; ``log_every=None``
    logs only the last step.

    With ``validate`` the loop also early-stops (see :class:`EarlyStopping`): every ``validate_every``
    steps it logs ``val_loss`` (a row is written even off the ``log_every`` grid), keeps the modules'
    weights at the lowest validation loss, stops once ``patience`` validations in a row failed to beat it
    by more than ``min_delta`` (never before ``min_steps``; ``steps`` is the cap) and, with
    ``restore_best``, loads the best weights back. The returned frame's ``attrs`` carry ``best_step``,
    ``best_val_loss`` and ``stopped_step`` (None when the cap was reached). The early-stopping state is
    checkpointed with the rest, so a resumed run stops where the uninterrupted one would.

    Parameters
    ----------
    step_fn : callable
        ``step_fn(step)`` performs one update and returns {name: scalar tensor or float}.
    state : mapping
        Objects with ``state_dict``/``load_state_dict`` (modules and optimizers) saved in checkpoints.
    generators : mapping
        The trainer's own torch Generators (batches, latent draws); their states are checkpointed.
    watched : nn.Module
        The module handed to callbacks (the generator or decoder).
    seed : int
        Seeds the global torch RNG inside the forked RNG context.
    config : mapping
        Plain values describing the run; a checkpoint made with a different config (other than ``steps``)
        is refused on resume.
    extra_logs : mapping, optional
        Constant entries added to every row before callbacks run (e.g. ``{'stage': 1}``).
    validate : callable, optional
        ``validate() -> float``, the validation loss (lower is better). Called with every module of
        ``state`` in eval mode and gradients off; training modes are restored afterwards.
    validate_every : int, optional
        Steps between validations (default ``log_every``); the last step is always validated.
    patience : int, optional
        Validations without improvement before stopping; None never stops early (best weights are
        still tracked and restored).
    min_steps : int
        No early stop before this many steps (e.g. "at least 20 epochs").
    min_delta : float >= 0
        An improvement must lower the best validation loss by more than this.
    restore_best : bool
        Load the weights of the best validation step into the modules at the end.
    """
    callbacks = tuple(callbacks)
    log_every = steps if log_every is None else log_every
    state, generators, config = dict(state), dict(generators), dict(config)
    stopper = None
    if validate is not None:
        every = log_every if validate_every is None else validate_every
        stopper = EarlyStopping(validate, state, every=every, patience=patience, min_steps=min_steps,
                                min_delta=min_delta)
        state = {**state, "early_stopping": stopper}
    elif validate_every is not None or patience is not None:
        raise ValueError("validate_every and patience need validate (a callable returning the validation "
                         "loss)")
    with seeded(seed, device):  # only this device's RNG is forked and seeded
        start, history = 0, []
        if resume and checkpoint_path is not None and checkpoint_path.exists():
            start, history = _load(checkpoint_path, state, generators, device, config)
            if start > steps:
                raise ValueError(f"checkpoint {checkpoint_path} is at step {start}, beyond steps={steps}; "
                                 "raise steps or use another checkpoint_dir")
        bar = progress_bar(range(start, steps), progress=progress, initial=start, total=steps, desc=desc)
        for step in bar:
            if stopper is not None and stopper.stopped_step is not None:
                break  # a resumed run that had already stopped
            out = step_fn(step)
            done = step + 1
            val_due = stopper is not None and (done % stopper.every == 0 or done == steps)
            if done % log_every == 0 or done == steps or val_due:
                logs: dict[str, Any] = {"step": done, **(extra_logs or {})}
                logs.update({k: float(v) for k, v in out.items()})
                if val_due:
                    logs["val_loss"] = stopper.check(done)
                for cb in callbacks:
                    cb(done, watched, logs)
                history.append(logs)
                bar.set_postfix({k: v for k, v in logs.items() if isinstance(v, float)}, refresh=False)
            stop = stopper is not None and stopper.stopped_step is not None
            if checkpoint_path is not None and (done % checkpoint_every == 0 or done == steps or stop):
                _save(checkpoint_path, done, history, state, generators, device, config)
        frame = pd.DataFrame(history)
        if stopper is not None:
            if restore_best:
                stopper.restore()
            frame.attrs.update(stopper.summary())
    return frame


class EarlyStopping:
    """Validation tracking for :func:`run_loop`: best loss, best weights, patience counter.

    It has ``state_dict``/``load_state_dict`` so the loop checkpoints it beside the modules: the best
    weights, the best loss and step, the count of validations without improvement and the stop step.

    Parameters
    ----------
    validate : callable
        ``validate() -> float``.
    state : mapping
        The loop's state; the ``nn.Module`` entries are the ones snapshotted, put in eval mode and restored.
    every, patience, min_steps, min_delta :
        As ``validate_every``, ``patience``, ``min_steps``, ``min_delta`` of :func:`run_loop`.
    """

    def __init__(self, validate: Callable[[], float], state: Mapping[str, Any], *, every: int,
                 patience: int | None, min_steps: int = 0, min_delta: float = 0.0):
        if not callable(validate):
            raise TypeError(f"validate must be a callable returning a float, got {type(validate).__name__}")
        self.validate = validate
        self.modules = {k: v for k, v in state.items() if isinstance(v, nn.Module)}
        self.every = check_int(every, "validate_every", low=1)
        self.patience = None if patience is None else check_int(patience, "patience", low=1)
        self.min_steps = check_int(min_steps, "min_steps", low=0)
        self.min_delta = check_scalar(min_delta, "min_delta", low=0.0)
        self.best_value, self.best_step, self.bad, self.stopped_step = float("inf"), 0, 0, None
        self.best_state: dict[str, dict] = {}

    def check(self, step: int) -> float:
        """Validate at ``step``, update the best weights and the patience counter; return the loss."""
        modes = {k: m.training for k, m in self.modules.items()}
        for m in self.modules.values():
            m.eval()
        try:
            with torch.no_grad():
                value = float(self.validate())
        finally:
            for k, m in self.modules.items():
                m.train(modes[k])
        if not np.isfinite(value):
            raise ValueError(f"validate() returned {value} at step {step}; expected a finite loss")
        if value < self.best_value - self.min_delta:
            self.best_value, self.best_step, self.bad = value, step, 0
            self.best_state = {k: copy.deepcopy(m.state_dict()) for k, m in self.modules.items()}
        else:
            self.bad += 1
        if self.patience is not None and self.bad >= self.patience and step >= self.min_steps:
            self.stopped_step = step
        return value

    def restore(self) -> None:
        """Load the best weights (if any validation ran) into the modules."""
        for k, sd in self.best_state.items():
            self.modules[k].load_state_dict(sd)

    def summary(self) -> dict[str, Any]:
        """``best_step``, ``best_val_loss`` and ``stopped_step`` (None if the step cap was reached)."""
        return {"best_step": self.best_step, "best_val_loss": self.best_value,
                "stopped_step": self.stopped_step}

    def state_dict(self) -> dict[str, Any]:
        return {"best_value": self.best_value, "best_step": self.best_step, "bad": self.bad,
                "stopped_step": -1 if self.stopped_step is None else self.stopped_step,
                "best_state": self.best_state}

    def load_state_dict(self, sd: Mapping[str, Any]) -> None:
        self.best_value, self.best_step = float(sd["best_value"]), int(sd["best_step"])
        self.bad, self.best_state = int(sd["bad"]), dict(sd["best_state"])
        self.stopped_step = None if int(sd["stopped_step"]) < 0 else int(sd["stopped_step"])


def _save(path, step, history, state, generators, device, config) -> None:
    ckpt = {
        "version": CHECKPOINT_VERSION,
        "step": step,
        "config": dict(config),
        "history": copy.deepcopy(history),
        "state": {k: v.state_dict() for k, v in state.items()},
        "generators": {k: g.get_state() for k, g in generators.items()},
        "torch_rng": torch.get_rng_state(),
    }
    if device.type == "cuda":
        ckpt["cuda_rng"] = torch.cuda.get_rng_state(device)
    save_checkpoint(ckpt, path)  # SHA-256-framed, verified by _load before anything is unpickled


def _load(path, state, generators, device, config) -> tuple[int, list[dict]]:
    remedy = "delete it, or pass resume=False to start afresh"
    ckpt = load_checkpoint(path, remedy=remedy)
    # A digest-intact file can still be the wrong kind (say a cached classifier copied here).
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        version = ckpt.get("version") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"checkpoint {path} is not a training checkpoint of version "
                              f"{CHECKPOINT_VERSION} (found {version!r}); {remedy}")
    missing = sorted({"step", "config", "history", "state", "generators", "torch_rng"} - set(ckpt))
    saved = ckpt.get("config", {})
    diff = sorted(k for k in set(saved) | set(config) if k != "steps" and saved.get(k) != config.get(k))
    if diff and not missing:
        detail = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {config.get(k)!r}" for k in diff)
        raise ValueError(
            f"checkpoint {path} was written by a differently configured run ({detail}); "
            "use another checkpoint_dir or resume=False"
        )
    missing += sorted(f"state[{k!r}]" for k in set(state) - set(ckpt.get("state", {})))
    missing += sorted(f"generators[{k!r}]" for k in set(generators) - set(ckpt.get("generators", {})))
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks entries this run needs ({', '.join(missing)}); "
                              f"{remedy}")
    for k, obj in state.items():
        obj.load_state_dict(ckpt["state"][k])
    for k, g in generators.items():
        g.set_state(ckpt["generators"][k])
    torch.set_rng_state(ckpt["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in ckpt:
        torch.cuda.set_rng_state(ckpt["cuda_rng"], device)
    return int(ckpt["step"]), list(ckpt["history"])


# --------------------------------------------------------------------------- helpers shared by the trainers


def prepare_data(data: Any, device: torch.device, *, min_samples: int = 2) -> torch.Tensor:
    """Validate (n, D) vectors or (n, C, H, W) images (numpy or torch) and return float32 on ``device``."""
    arr = check_array(data, "data", ndim=(2, 4))
    if arr.shape[0] < min_samples:
        raise ValueError(f"data needs at least {min_samples} samples, got {arr.shape[0]}")
    if int(np.prod(arr.shape[1:])) == 0:
        raise ValueError(f"data must have at least one feature per sample, got shape {tuple(arr.shape)}")
    return check_cast(to_tensor(arr).detach(), torch.float32, "data").to(device)


def as_module(spec: Any, in_dim: int, out_dim: int | None, seed: int, name: str, device) -> nn.Module:
    """Build a Family (seeded) or copy a module, and move it to ``device``.

    A module passed in is deep-copied, so the caller's module is never trained in place and two runs from the
    same module start from the same weights.
    """
    if isinstance(spec, nn.Module):
        return copy.deepcopy(spec).to(device)
    if hasattr(spec, "build") and callable(spec.build):
        if out_dim is None:
            return spec.build(in_dim, seed=seed).to(device)
        return spec.build(in_dim, out_dim, seed=seed).to(device)
    raise TypeError(f"{name} must be a torch.nn.Module or a family with .build(in_dim, out_dim, seed=...), "
                    f"got {type(spec).__name__}")


def check_callbacks(callbacks: Any) -> tuple[Callback, ...]:
    """A tuple of callables ``cb(step, model, logs)``."""
    if callable(callbacks):
        raise TypeError("callbacks must be a sequence of callables; wrap a single callback as (cb,)")
    try:
        callbacks = tuple(callbacks)
    except TypeError as exc:
        raise TypeError(f"callbacks must be a sequence of callables, got {type(callbacks).__name__}") from exc
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise TypeError(f"callbacks[{i}] must be callable cb(step, model, logs), got {type(cb).__name__}")
    return callbacks


def check_loop_args(steps: int, batch_size: int, checkpoint_dir, checkpoint_every: int, log_every: int,
                    resume: bool, steps_name: str = "steps") -> Path | None:
    """Validate the arguments every trainer shares; return the checkpoint directory as a Path (or None)."""
    check_steps(steps, steps_name)
    check_batch_size(batch_size)
    check_int(checkpoint_every, "checkpoint_every", low=1)
    check_int(log_every, "log_every", low=1)
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be a bool, got {type(resume).__name__}")
    if checkpoint_dir is None:
        if resume:
            raise ValueError("resume=True needs checkpoint_dir")
        return None
    if not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise TypeError(f"checkpoint_dir must be a path or None, got {type(checkpoint_dir).__name__}")
    path = Path(checkpoint_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"checkpoint_dir={str(path)!r} is an existing file, not a directory; pass a "
                         "directory path (it is created if missing)")
    # Probe with a real file before training, so an unwritable directory fails now, not at the first save.
    problem = unwritable_reason(path)
    if problem is not None:
        raise ValueError(f"checkpoint_dir={str(path)!r} cannot hold checkpoints: {problem}; pass a writable "
                         "directory or checkpoint_dir=None")
    return path


def sample_index(n: int, batch_size: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """``batch_size`` row indices drawn uniformly with replacement from ``gen`` (a CPU Generator)."""
    return torch.randint(n, (batch_size,), generator=gen).to(device)


def draw_latent(latent: Any, n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """``latent.sample(n, seed)`` with an integer seed drawn from ``gen``, as float32 on ``device``.

    An integer seed (rather than the Generator itself) works with any object exposing ``sample(n, seed)``.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=gen).item())
    z = latent.sample(n, seed)
    return to_tensor(z, dtype=torch.float32).detach().to(device)


def module_repr(spec: Any) -> str:
    """A short, stable description of a module or family for the checkpoint config."""
    if isinstance(spec, nn.Module):
        return repr(spec)
    label = getattr(spec, "label", None)
    return label() if callable(label) else repr(spec)


def n_params(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())
