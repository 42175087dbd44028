"""Small helpers shared by the experiment modules: config -> library objects, one estimate -> one row."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentdist._io import atomic_write_text
from latentdist.generators import MLP, Family, LipschitzMLP
from latentdist.tasks import Task, TaskStore, run_tasks

__all__ = ["make_family", "estimate_row", "estimate", "family_at", "Verdict", "STATUSES", "graded",
           "require_columns", "bootstrap_ci", "generator_params", "latent_params", "unit_config",
           "claim_task", "run_claim_tasks", "UnitStore", "particles_of", "particle_latent", "log_ticks_at"]


def make_family(kind: str, capacity: float, width: int, depth: int) -> Family:
    """The generator family of an experiment config: ``'lipschitz'`` (capacity = L) or ``'mlp'`` (= width)."""
    if kind == "lipschitz":
        return LipschitzMLP(lipschitz=float(capacity), width=width, depth=depth)
    if kind == "mlp":
        return MLP(width=int(capacity), depth=depth)
    raise ValueError(f"unknown family {kind!r} in the experiment config; expected 'lipschitz' or 'mlp'")


def family_at(kind: str, capacities: list[float], width: int, depth: int) -> list[Family]:
    """The nested sequence G_c for the configured capacities."""
    return [make_family(kind, c, width, depth) for c in capacities]


def estimate(latent: Any, data: Any, family: Family, distance: str, cfg: dict, *, seed: int,
             progress: bool) -> Any:
    """``latent_data_distance`` with the optimisation settings of an experiment config."""
    from latentdist.estimator import latent_data_distance

    return latent_data_distance(
        latent, data, family, distance, n_restarts=cfg["restarts"], steps=cfg["steps"],
        batch_size=cfg["batch_size"], lr=cfg["lr"], holdout=cfg.get("holdout", 0.2), seed=seed,
        progress=progress,
    )


def estimate_row(res: Any, **labels: Any) -> dict:
    """One tidy row: the labels plus value, restart spread and noise floor of an estimate."""
    return {**labels, "value": float(res.value), "std": float(res.std),
            "noise_floor": float(res.noise_floor), "noise_floor_std": float(res.noise_floor_std)}


def load_toy(spec: dict, n: int, seed: int, noise: float = 0.0) -> Any:
    """A configured toy dataset (``{'name': ..., 'params': {...}}``) with its samples put at the
    'moment' normalisation (zero mean, E||x||^2 = D), so capacities mean the same on every dataset.

    Returns ``(dataset, x)`` with ``x`` a float32 tensor of shape (n, D).
    """
    import torch

    from latentdist.data import make_dataset
    from latentdist.latents import normalize_samples

    ds = make_dataset(spec["name"], n, noise=noise, seed=seed, **spec.get("params", {}))
    x = normalize_samples(torch.as_tensor(ds.x, dtype=torch.float32), "moment")
    return ds, x


def data_affine(ds: Any, x: Any) -> tuple:
    """The isotropic map u -> (u - shift) * scale that :func:`load_toy` applied (for modes and mode std)."""
    raw = np.asarray(ds.x, dtype=np.float64)
    shift = raw.mean(0)
    scale = float(np.asarray(x, dtype=np.float64).std() / (raw - shift).std())
    return shift, scale


def standard_latents(dim: int, shaped_like: Any = None) -> dict:
    """N(0, I), uniform and (optionally) a data-shaped latent, all at the 'moment' normalisation.

    ``shaped_like`` is an independent sample of the data (n, dim): its empirical law, normalised, is the
    most data-dependent latent there is; a generator then needs only a rescaling.
    """
    from latentdist.latents import Empirical, Gaussian, Uniform, normalize

    lat = {"gaussian": normalize(Gaussian(dim), "moment"), "uniform": normalize(Uniform(dim), "moment")}
    if shaped_like is not None:
        lat["data-shaped"] = normalize(Empirical(shaped_like), "moment")
    return lat


# ----------------------------------------------------------------------------------------------- verdicts

#: The three verdicts a claim can get, strongest first.
STATUSES = ("reproduced", "partial", "not reproduced")


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict: one of :data:`STATUSES` and the table facts that decided it.

    Every claim module exposes ``verdict(table) -> Verdict``, a pure function of its summary table, so
    the rule can be unit-tested on made-up tables and re-applied to cached numbers without recomputing.
    """

    status: str
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def to_dict(self) -> dict:
        """``{'status': ..., 'reasons': [...]}`` for the claim's JSON."""
        return {"status": self.status, "reasons": list(self.reasons)}


def graded(n_pass: int, n_total: int, reasons: list[str]) -> Verdict:
    """All parts pass -> reproduced, none -> not reproduced, otherwise partial."""
    if n_total == 0:
        return Verdict("not reproduced", ("no rows to judge",))
    status = STATUSES[0] if n_pass == n_total else STATUSES[2] if n_pass == 0 else STATUSES[1]
    return Verdict(status, tuple(reasons))


def require_columns(table: pd.DataFrame, columns: set[str], name: str = "table") -> None:
    """A verdict's input must carry the columns its rule reads."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(table).__name__}")
    missing = sorted(set(columns) - set(table.columns))
    if missing:
        raise ValueError(f"{name} lacks the columns {missing} its verdict rule reads")


# ------------------------------------------------------------------------------------ statistics, counts

def bootstrap_ci(values: Any, *, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple:
    """Mean and percentile-bootstrap CI of the mean of paired differences ``values`` (shape (k,)).

    With a single value the CI collapses to that value (no spread can be claimed); NaN rows raise.
    """
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"values must be a non-empty finite array, got {v}")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(v.mean()), float(lo), float(hi)


def generator_params(family: Family, in_dim: int, out_dim: int) -> int:
    """Number of trainable numbers of a generator of ``family`` from R^in_dim to R^out_dim."""
    return int(sum(p.numel() for p in family.build(in_dim, out_dim).parameters() if p.requires_grad))


def latent_params(latent: Any) -> int:
    """Numbers a latent stores (``prior_parameter_count``: 0 for N(0, I) and U, points for particles)."""
    from latentdist.train import prior_parameter_count

    return int(prior_parameter_count(latent))


# ------------------------------------------------------------------------------------ resumable units

def unit_config(config: dict) -> dict:
    """The claim config a task sees and hashes: everything but ``unit_dir`` (where units are kept does
    not change what they compute)."""
    return {k: v for k, v in config.items() if k != "unit_dir"}


def claim_task(config: dict, claim: str, version: int, name: str, fn: Callable[..., Any], progress: bool,
               /, **args: Any) -> Task:
    """One unit of a claim (an anchor, a seed, a profile) as a :class:`~latentdist.tasks.Task`.

    The task calls ``fn(**args, progress=progress)``. ``args`` (JSON-like: pass the claim config through
    :func:`unit_config`) is the task's identity and is hashed, with ``claim``, ``name`` and ``version``,
    into its cache key: a changed config never reuses stale units. When ``config`` keeps units
    (``unit_dir``), the result is returned as the JSON round trip a unit file holds (arrays as nested
    lists rounded to 6 decimals) whether it was computed now or read back, so a resumed run gives the
    same numbers as an uninterrupted one; without ``unit_dir`` it is returned as computed.
    """
    fn = partial(_json_result, fn) if config.get("unit_dir") else fn
    return Task(fn, args, name=f"{claim}-{name}", version=version, context={"progress": progress})


class UnitStore(TaskStore):
    """A claim's unit files: ``<unit_dir>/<claim>/<unit name>-<config hash>.json``, one per finished task.

    JSON (not pickle), so the committed full-mode units stay readable and diffable; the hash is the first
    10 hex digits of SHA-256 over ``[claim, version, unit_config(config)]`` and, with the unit name (which
    names the task's own arguments: anchor, dataset, seed, ...), identifies the task: a changed config or
    code version never reuses stale units. Written atomically: a killed run never leaves half a unit.
    """

    def __init__(self, config: dict, claim: str, version: int):
        super().__init__(Path(config["unit_dir"]) / claim if config.get("unit_dir") else None)
        text = json.dumps([claim, version, unit_config(config)], sort_keys=True, default=str)
        self.claim, self.digest = claim, hashlib.sha256(text.encode()).hexdigest()[:10]

    def path(self, task: Task) -> Path:
        return self.root / f"{task.name.removeprefix(self.claim + '-')}-{self.digest}.json"

    def load(self, task: Task) -> tuple[bool, Any]:
        path = None if self.root is None else self.path(task)
        if path is None or not path.is_file():
            return False, None
        return True, json.loads(path.read_text())

    def store(self, task: Task, result: Any) -> None:
        if self.root is not None:
            atomic_write_text(self.path(task), json.dumps(result, indent=1))


def run_claim_tasks(config: dict, claim: str, version: int, tasks: list[Task], progress: bool) -> list:
    """Results of a claim's tasks on the current executor (:func:`latentdist.tasks.use_executor`), each
    kept as a :class:`UnitStore` file when the config sets ``unit_dir`` (full mode: a long run interrupted
    half-way resumes from the units already written, and they can be committed); without it (quick mode,
    tests) every task runs."""
    return run_tasks(tasks, store=UnitStore(config, claim, version), progress=progress, desc=f"{claim} units")


def _json_result(fn: Callable[..., Any], **kwargs: Any) -> Any:
    return json.loads(json.dumps(fn(**kwargs), default=_jsonable))  # the same object a resume reads


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return np.round(obj.astype(float), 6).tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} in a unit file")


def particles_of(latent: Any) -> np.ndarray:
    """The support and weights of a (normalised) particle latent as one array (m, d + 1), for unit files."""
    from latentdist.latents import Affine, Discrete

    if isinstance(latent, Affine) and isinstance(latent.base, Discrete):
        pts = ((latent.base.points - latent.shift) * latent.scale).numpy()
        w = latent.base.weights.numpy()
    elif isinstance(latent, Discrete):
        pts, w = latent.points.numpy(), latent.weights.numpy()
    else:
        raise TypeError(f"expected a particle latent (Discrete, possibly normalised), got {latent!r}")
    return np.column_stack([pts, w])


def particle_latent(stored: Any) -> Any:
    """Inverse of :func:`particles_of`: the ``Discrete`` law of stored (m, d + 1) points and weights."""
    from latentdist.latents import Discrete

    arr = np.asarray(stored, dtype=float)
    return Discrete(arr[:, :-1], arr[:, -1] / arr[:, -1].sum())


def log_ticks_at(ax: Any, values: Any, axis: str = "x") -> None:
    """Log axis ticked only at the measured ``values``, printed plainly (matplotlib's default log ticks
    overlapped, e.g. '3×10³4×10³')."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(FixedLocator(sorted({float(v) for v in values})))
    fmt = ScalarFormatter()
    fmt.set_scientific(False)
    target.set_major_formatter(fmt)
    target.set_minor_locator(NullLocator())
