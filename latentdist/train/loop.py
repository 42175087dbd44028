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
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from latentdist._io import atomic_torch_save
from latentdist._progress import progress_bar
from latentdist._validation import check_array, check_int, to_tensor

__all__ = [
    "Callback", "run_loop", "as_module", "prepare_data", "check_callbacks", "check_loop_args", "draw_latent",
    "sample_index",
]

Callback = Callable[[int, nn.Module, dict], None]

CHECKPOINT_VERSION = 1


def run_loop(
    step_fn: Callable[[int], Mapping[str, Any]],
    *,
    state: Mapping[str, Any],
    generators: Mapping[str, torch.Generator],
    watched: nn.Module,
    steps: int,
    seed: int,
    device: torch.device,
    config: Mapping[str, Any],
    checkpoint_path: Path | None,
    checkpoint_every: int,
    resume: bool,
    callbacks: Iterable[Callback],
    progress: bool,
    log_every: int,
    desc: str,
    extra_logs: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Run ``step_fn`` for steps ``start..steps-1`` and return the logged history.

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
    """
    callbacks = tuple(callbacks)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        # Only this device's RNG is seeded: torch.manual_seed would also reseed every CUDA device.
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)
        start, history = 0, []
        if resume and checkpoint_path is not None and checkpoint_path.exists():
            start, history = _load(checkpoint_path, state, generators, device, config)
            if start > steps:
                raise ValueError(f"checkpoint {checkpoint_path} is at step {start}, beyond steps={steps}; "
                                 "raise steps or use another checkpoint_dir")
        bar = progress_bar(range(start, steps), progress=progress, initial=start, total=steps, desc=desc)
        for step in bar:
            out = step_fn(step)
            done = step + 1
            if done % log_every == 0 or done == steps:
                logs: dict[str, Any] = {"step": done, **(extra_logs or {})}
                logs.update({k: float(v) for k, v in out.items()})
                for cb in callbacks:
                    cb(done, watched, logs)
                history.append(logs)
                bar.set_postfix({k: v for k, v in logs.items() if isinstance(v, float)}, refresh=False)
            if checkpoint_path is not None and (done % checkpoint_every == 0 or done == steps):
                _save(checkpoint_path, done, history, state, generators, device, config)
    return pd.DataFrame(history)


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
    atomic_torch_save(ckpt, path)


def _load(path, state, generators, device, config) -> tuple[int, list[dict]]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path} has version {ckpt.get('version')}, "
                         f"expected {CHECKPOINT_VERSION}")
    saved = ckpt["config"]
    diff = sorted(k for k in set(saved) | set(config) if k != "steps" and saved.get(k) != config.get(k))
    if diff:
        detail = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {config.get(k)!r}" for k in diff)
        raise ValueError(
            f"checkpoint {path} was written by a differently configured run ({detail}); "
            "use another checkpoint_dir or resume=False"
        )
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
    return to_tensor(arr, dtype=torch.float32).detach().to(device)


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
    check_int(steps, steps_name, low=1)
    check_int(batch_size, "batch_size", low=1)
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
    path.mkdir(parents=True, exist_ok=True)
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
