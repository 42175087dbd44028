"""Fuzz suite: every public function answers hostile input with a clear error or a finite result.

The public surface is enumerated from the subpackages' ``__all__``; every callable there has a
:class:`Spec` (a cheap valid call and the arguments to attack) or is listed in ``EXEMPT`` with the
reason, so a new public function fails :func:`test_every_public_callable_is_covered` until it is
covered. Each argument is attacked by its kind: NaN/inf, empty, one row, wrong ndim, mismatched
dimensions, wrong dtypes, huge and tiny values, huge sizes, bad names, bad seeds. The outcome must
be one of

* ``ValueError``/``TypeError`` whose message names the attacked argument (or, for a huge or tiny
  scale, says that the scale or range is the problem), or
* a result whose numbers are all finite (and, for a distance between distinct samples, not 0.0).

Anything else (another exception, NaN, inf, a silent 0.0, a hang past ``CASE_TIMEOUT``) fails.
``python tests/test_fuzz.py`` prints the count of cases and outcomes (the README's reliability table).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
import signal
import sys
from collections import Counter
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from latentdist import data as ld_data
from latentdist import distances as ld_dist
from latentdist import generators as ld_gen
from latentdist import latents as ld_lat
from latentdist.complexity import (
    ComplexityCallback,
    complexity_report,
    intrinsic_dimension,
    jacobian_spectrum,
    linear_regions,
    lipschitz_lower,
    lipschitz_upper,
    n_components,
    param_count,
    path_length,
)

SUBPACKAGES = (
    "latentdist.data",
    "latentdist.distances",
    "latentdist.latents",
    "latentdist.generators",
    "latentdist.estimator",
    "latentdist.profile",
    "latentdist.optimal",
    "latentdist.complexity",
    "latentdist.train",
    "latentdist.metrics",
)
#: Seconds one case may take; a case past it is a hang (e.g. an unbounded n_permutations).
CASE_TIMEOUT = 60

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 2))
Y = RNG.normal(size=(10, 2)) + 0.5
D40 = RNG.normal(size=(40, 2))
POS = RNG.uniform(0.05, 0.95, size=(24, 3))  # data in (0, 1) for Bernoulli likelihoods


def _sigmoid_decoder() -> nn.Module:
    """A 1 -> 3 decoder with outputs in (0, 1), as the BCE losses of the RAE and WAE need."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 3), nn.Sigmoid())


def _forget_fuzz_distances(result: Any = None) -> Any:
    """Remove what a register_distance case added (a valid name, or 'banana'), so no case leaks."""
    for name in ("fuzz_tmp", "banana"):
        if name in ld_dist.available_distances():
            ld_dist.unregister_distance(name)
    return result


def _registered(name: str) -> dict:
    """Arguments of a valid unregister_distance call: ``name`` freshly registered."""
    _forget_fuzz_distances()
    ld_dist.register_distance(name, ld_dist.wasserstein)
    return {"name": name}


def _net(in_dim: int = 2, out_dim: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(in_dim, 4), nn.ReLU(), nn.Linear(4, out_dim))


# --- attacks by argument kind -------------------------------------------------------------------
# Each kind maps to {mutation name: value factory (given the valid value)}. Scale mutations may be
# answered with a finite (correct) result or an error about the scale.
SCALE = {"huge", "tiny", "huge_value"}


def _as_float(v: Any, fallback: np.ndarray) -> np.ndarray:
    """The valid value as a float array of the fallback's ndim; arguments that are optional or also take
    objects (a latent) are attacked starting from the fallback."""
    try:
        a = np.asarray(v.detach() if isinstance(v, torch.Tensor) else v, dtype=np.float64)
    except (TypeError, ValueError):
        return fallback
    return a if a.ndim == fallback.ndim and a.size else fallback


def _samples(v: Any) -> dict[str, Callable[[], Any]]:
    a = _as_float(v, X)

    def with_value(val):
        b = a.copy()
        b[0, 0] = val
        return b

    return {
        "nan": lambda: with_value(np.nan),
        "inf": lambda: with_value(np.inf),
        "empty": lambda: a[:0],
        "one_row": lambda: a[:1],
        "ndim1": lambda: a[:, 0],
        "ndim3": lambda: a[None],
        "strings": lambda: np.full(a.shape, "a"),
        "complex": lambda: a.astype(complex),
        "bool": lambda: a > 0,
        "none": lambda: None,
        "object": lambda: object(),
        "huge": lambda: a * 1e300,
        "tiny": lambda: a * 1e-300,
        "float16": lambda: torch.tensor(a, dtype=torch.float16),
        "mismatched_dims": lambda: np.concatenate([a, a[:, :1]], axis=1),
    }


def _vector(v: Any) -> dict[str, Callable[[], Any]]:
    a = _as_float(v, np.ones(2))
    return {
        "nan": lambda: np.where(np.arange(a.size) == 0, np.nan, a),
        "empty": lambda: a[:0],
        "ndim2": lambda: a[None, None],
        "strings": lambda: np.full(a.shape, "a"),
        "none_entries": lambda: [None] * a.size,
        "wrong_length": lambda: np.concatenate([a, a]),
    }


def _matrix(v: Any) -> dict[str, Callable[[], Any]]:
    a = _as_float(v, np.eye(2))
    return {
        "nan": lambda: np.where(np.eye(len(a)) > 0, np.nan, a),
        "negative_definite": lambda: -np.eye(len(a)),
        "asymmetric": lambda: a + np.triu(np.ones_like(a), 1),
        "wrong_shape": lambda: np.eye(len(a) + 1),
        "ndim1": lambda: np.diag(a),
        "strings": lambda: np.full(a.shape, "a"),
    }


KINDS: dict[str, Callable[[Any], dict[str, Callable[[], Any]]]] = {
    "samples": _samples,
    "vector": _vector,
    "matrix": _matrix,
    "count": lambda v: {
        "huge": lambda: 10**12,
        "negative": lambda: -1,
        "float": lambda: 2.5,
        "string": lambda: "3",
        "bool": lambda: True,
    },
    "scalar": lambda v: {
        "nan": lambda: float("nan"),
        "inf": lambda: float("inf"),
        "negative": lambda: -1.0,
        "string": lambda: "x",
        "huge_value": lambda: 1e300,
    },
    "prob": lambda v: {
        "nan": lambda: float("nan"),
        "negative": lambda: -0.5,
        "above_one": lambda: 1.5,
        "string": lambda: "x",
    },
    "option": lambda v: {"bad_name": lambda: "banana", "not_a_string": lambda: 3},
    "seed": lambda v: {
        "string": lambda: "x",
        "negative": lambda: -1,
        "too_big": lambda: 2**64,
        "float": lambda: 1.5,
    },
    "bool": lambda v: {"string": lambda: "yes", "none": lambda: None},
    "module": lambda v: {"not_a_module": lambda: 3, "wrong_input_size": lambda: _net(7, 3)},
    "family": lambda v: {"not_a_family": lambda: 3, "string": lambda: "mlp"},
    "latent": lambda v: {"not_a_latent": lambda: 3, "string": lambda: "banana"},
    "callable": lambda v: {"not_callable": lambda: 3},
    "images": lambda v: {
        "nan": lambda: np.full((2, 1, 28, 28), np.nan),
        "wrong_shape": lambda: np.zeros((2, 28)),
        "empty": lambda: np.zeros((0, 1, 28, 28)),
        "strings": lambda: np.full((2, 1, 28, 28), "a"),
        "out_of_range": lambda: np.full((2, 1, 28, 28), 1e300),
    },
    "frame": lambda v: {"not_a_frame": lambda: 3, "empty": lambda: pd.DataFrame()},
}


@dataclasses.dataclass
class Spec:
    """How to call one public callable cheaply and correctly, and which arguments to attack.

    ``args`` (a dict, or a function returning one for values that are costly to build) is a valid
    call; ``fuzz`` maps argument name -> kind (a key of ``KINDS``); ``names`` lists extra words an
    error may use for an argument; ``post`` is applied to the result (e.g. sample a latent);
    ``distinct`` marks distances whose samples differ, so 0.0 is wrong.
    """

    fn: Callable
    args: dict | Callable[[], dict]
    fuzz: dict[str, str]
    names: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    post: Callable | None = None
    distinct: bool = False

    def kwargs(self) -> dict:
        return dict(self.args() if callable(self.args) else self.args)


def _pair(fn, extra=None, fuzz=None, **kw) -> Spec:
    """A two-sample function f(x, y, ...) on distinct samples."""
    return Spec(
        fn,
        {"x": X, "y": Y, **(extra or {})},
        {"x": "samples", "y": "samples", **(fuzz or {})},
        distinct=True,
        **kw,
    )


@cache
def _profile() -> pd.DataFrame:
    from latentdist.profile import complexity_profile

    return complexity_profile(
        ld_lat.Gaussian(2),
        D40,
        [ld_gen.Linear()],
        steps=2,
        n_restarts=1,
        batch_size=8,
        n_floor=2,
        progress=False,
    )


@cache
def _vae():
    from latentdist.train import MLPEncoder, train_vae

    return train_vae(
        POS,
        MLPEncoder(8, 1, latent_dim=2),
        ld_gen.MLP(8, 1),
        likelihood="gaussian",
        steps=1,
        batch_size=8,
        progress=False,
    )


def _specs() -> dict[str, Spec]:
    from latentdist import estimator, metrics, optimal, profile, train

    fit = {"steps": 2, "n_restarts": 2, "batch_size": 8, "n_floor": 2, "progress": False}
    fit_fuzz = {
        "steps": "count",
        "batch_size": "count",
        "lr": "scalar",
        "holdout": "prob",
        "seed": "seed",
        "distance": "option",
        "family": "family",
        "data": "samples",
    }
    trainer = {"steps": 1, "batch_size": 8, "progress": False}
    trainer_fuzz = {
        "data": "samples",
        "steps": "count",
        "batch_size": "count",
        "lr": "scalar",
        "seed": "seed",
    }
    circles = ld_data.make_dataset("circles", 30, seed=0)
    s = {
        # data
        "make_dataset": Spec(
            ld_data.make_dataset,
            {"name": "circles", "n": 20},
            {"name": "option", "n": "count", "noise": "scalar", "ambient_dim": "count", "seed": "seed"},
        ),
        "available_datasets": Spec(ld_data.available_datasets, {}, {}),
        "dataset_keywords": Spec(ld_data.dataset_keywords, {"name": "circles"}, {"name": "option"}),
        "random_isometry": Spec(
            ld_data.random_isometry,
            {"native_dim": 2, "ambient_dim": 3},
            {"native_dim": "count", "ambient_dim": "count", "seed": "seed"},
            names={"native_dim": ("ambient_dim",)},  # native_dim=10**12 > ambient_dim: the pair disagrees
        ),
        "load_digits": Spec(ld_data.load_digits, {"n": 20}, {"n": "count", "seed": "seed"}),
        # distances
        "wasserstein": _pair(ld_dist.wasserstein, fuzz={"p": "scalar", "num_iter_max": "count"}),
        "sinkhorn_divergence": _pair(
            ld_dist.sinkhorn_divergence,
            {"blur": 0.3},
            {"blur": "scalar", "backend": "option", "max_iter": "count", "p": "scalar"},
        ),
        "sliced_wasserstein": _pair(
            ld_dist.sliced_wasserstein,
            {"n_projections": 8},
            {"n_projections": "count", "seed": "seed", "p": "scalar"},
        ),
        "max_sliced_wasserstein": _pair(
            ld_dist.max_sliced_wasserstein,
            {"n_iter": 2, "n_starts": 4},
            {"n_iter": "count", "n_starts": "count", "lr": "scalar", "seed": "seed"},
        ),
        "mmd2": _pair(
            ld_dist.mmd2,
            fuzz={
                "kernel": "option",
                "bandwidth": "scalar",
                "chunk_size": "count",
                "seed": "seed",
                "unbiased": "bool",
            },
        ),
        "energy_distance": _pair(ld_dist.energy_distance, fuzz={"chunk_size": "count", "unbiased": "bool"}),
        "median_bandwidth": _pair(ld_dist.median_bandwidth, fuzz={"max_samples": "count", "seed": "seed"}),
        "critic_distance": _pair(
            ld_dist.critic_distance,
            {"steps": 2, "width": 4, "batch_size": 8, "progress": False},
            {
                "steps": "count",
                "width": "count",
                "lr": "scalar",
                "penalty": "option",
                "holdout": "prob",
                "seed": "seed",
            },
        ),
        "bures_wasserstein": _pair(ld_dist.bures_wasserstein),
        "gaussian_w2": Spec(
            ld_dist.gaussian_w2,
            {"mean1": np.zeros(2), "cov1": np.eye(2), "mean2": np.ones(2), "cov2": 2 * np.eye(2)},
            {"mean1": "vector", "cov1": "matrix", "mean2": "vector", "cov2": "matrix"},
        ),
        "get_distance": Spec(
            ld_dist.get_distance,
            {"name_or_callable": "w2"},
            {"name_or_callable": "option"},
            names={"name_or_callable": ("distance",)},
        ),
        "available_distances": Spec(ld_dist.available_distances, {}, {}),
        "trainable_distances": Spec(ld_dist.trainable_distances, {}, {}),
        "get_entry": Spec(
            ld_dist.get_entry, {"name": "w2"}, {"name": "option"}, names={"name": ("distance",)}
        ),
        "training_loss": Spec(ld_dist.training_loss, {"distance": "w2"}, {"distance": "option"}),
        "register_distance": Spec(
            ld_dist.register_distance,
            {"name": "fuzz_tmp", "fn": ld_dist.wasserstein},
            {"name": "option", "fn": "callable"},
            names={"name": ("distance",)},
            post=_forget_fuzz_distances,
        ),
        "unregister_distance": Spec(
            ld_dist.unregister_distance,
            lambda: _registered("fuzz_tmp"),
            {"name": "option"},
            names={"name": ("distance",)},
            post=_forget_fuzz_distances,
        ),
        "bootstrap": _pair(
            ld_dist.bootstrap,
            {"distance": "w1", "n_boot": 3, "progress": False},
            {"distance": "option", "n_boot": "count", "alpha": "prob", "seed": "seed"},
        ),
        "noise_floor": Spec(
            ld_dist.noise_floor,
            {"x": X, "distance": "w1", "n_repeats": 2, "progress": False},
            {"x": "samples", "distance": "option", "n": "count", "n_repeats": "count", "seed": "seed"},
            distinct=True,
        ),
        "two_sample_test": _pair(
            ld_dist.two_sample_test,
            {"n_permutations": 5, "progress": False},
            {"statistic": "option", "n_permutations": "count", "seed": "seed"},
            names={"statistic": ("distance",)},
        ),
        # latents
        "Gaussian": Spec(
            ld_lat.Gaussian,
            {"dim": 2, "mean": np.zeros(2), "cov": np.eye(2)},
            {"dim": "count", "mean": "vector", "cov": "matrix"},
            post=lambda r: r.sample(4),
        ),
        "Uniform": Spec(
            ld_lat.Uniform,
            {"dim": 2},
            {"dim": "count", "low": "scalar", "high": "scalar"},
            post=lambda r: r.sample(4),
        ),
        "Discrete": Spec(
            ld_lat.Discrete,
            {"points": X, "weights": np.ones(12)},
            {"points": "samples", "weights": "vector"},
            post=lambda r: r.sample(4),
            names={"points": ("weights",)},
        ),  # one row against 12 weights: the weights disagree
        "Empirical": Spec(
            ld_lat.Empirical, {"samples": X}, {"samples": "samples"}, post=lambda r: r.sample(4)
        ),
        "Mixture": Spec(
            ld_lat.Mixture,
            {"components": [ld_lat.Gaussian(2), ld_lat.Uniform(2)]},
            {"components": "latent", "weights": "vector"},
            post=lambda r: r.sample(4),
        ),
        "Pushforward": Spec(
            ld_lat.Pushforward,
            {"encoder": _net(2, 1), "data": X},
            {"encoder": "module", "data": "samples", "batch_size": "count"},
            post=lambda r: r.sample(4),
            names={"data": ("encoder",)},
        ),  # (n, ...) data: a 3-D
        # array is n = 1 sample of shape (12, 2), which the encoder then maps to the wrong shape
        "Affine": Spec(
            ld_lat.Affine,
            {"base": ld_lat.Gaussian(2), "shift": torch.zeros(2), "scale": 2.0},
            {"base": "latent", "shift": "vector", "scale": "scalar"},
            post=lambda r: r.sample(4),
        ),
        "normalize": Spec(
            ld_lat.normalize,
            {"latent": ld_lat.Gaussian(2)},
            {"latent": "latent", "method": "option"},
            post=lambda r: r.sample(4),
        ),
        "normalize_samples": Spec(
            ld_lat.normalize_samples,
            {"z": torch.tensor(X)},
            {"z": "samples", "method": "option", "weights": "vector"},
        ),
        "make_latent": Spec(
            ld_lat.make_latent,
            {"name": "gaussian", "dim": 2},
            {"name": "option", "dim": "count"},
            names={"name": ("latent",)},
            post=lambda r: r.sample(4),
        ),
        # generators
        "Linear": Spec(ld_gen.Linear, {}, {"bias": "bool"}, post=lambda r: r.build(2, 3)),
        "MLP": Spec(
            ld_gen.MLP,
            {"width": 4, "depth": 2},
            {"width": "count", "depth": "count", "activation": "option"},
            post=lambda r: r.build(2, 3),
        ),
        "LipschitzMLP": Spec(
            ld_gen.LipschitzMLP,
            {"lipschitz": 2.0, "width": 4},
            {"lipschitz": "scalar", "width": "count", "depth": "count"},
            post=lambda r: r.build(2, 3),
        ),
        "ConvDecoder": Spec(
            ld_gen.ConvDecoder,
            {"channels": 2},
            {"channels": "count", "output": "option", "depth": "count", "dropout": "prob"},
        ),
        "MaxMin": Spec(ld_gen.MaxMin, {}, {}),
        "NormConstrainedLinear": Spec(
            ld_gen.NormConstrainedLinear,
            {"in_features": 2, "out_features": 3},
            {"in_features": "count", "out_features": "count"},
        ),
        # estimator, profile, optimal
        "latent_data_distance": Spec(
            estimator.latent_data_distance,
            {"latent": ld_lat.Gaussian(2), "data": D40, "family": ld_gen.Linear(), **fit},
            {**fit_fuzz, "latent": "latent", "train_distance": "option"},
            names={"train_distance": ("distance",)},
        ),
        "FitSettings": Spec(
            estimator.FitSettings,
            {"steps": 2},
            {
                "steps": "count",
                "batch_size": "count",
                "lr": "scalar",
                "holdout": "prob",
                "distance": "option",
            },
        ),
        "estimate_split": Spec(
            estimator.estimate_split,
            {"data": D40, "holdout": 0.2},
            {"data": "samples", "holdout": "prob", "seed": "seed"},
        ),
        "split_data": Spec(
            estimator.split_data,
            {"x": D40, "holdout": 0.2, "seed": 0},
            {"x": "samples", "holdout": "prob", "seed": "seed"},
            names={"x": ("data",)},
        ),
        "make_split": Spec(
            estimator.make_split,
            lambda: {"data": D40, "settings": estimator.FitSettings(n_floor=2)},
            {"data": "samples", "seed": "seed"},
        ),
        "complexity_profile": Spec(
            profile.complexity_profile,
            {"latents": ld_lat.Gaussian(2), "data": D40, "families": [ld_gen.Linear()], **fit},
            {**{k: v for k, v in fit_fuzz.items() if k != "family"}, "latents": "latent"},
        ),
        "eps_complexity": Spec(
            profile.eps_complexity,
            lambda: {"profile": _profile(), "eps": 0.5},
            {"profile": "frame", "eps": "scalar", "by": "option"},
        ),
        "plot_profile": Spec(profile.plot_profile, lambda: {"profile": _profile()}, {"profile": "frame"}),
        "optimal_latent": Spec(
            optimal.optimal_latent,
            {
                "data": D40,
                "dim": 2,
                "family": ld_gen.Linear(),
                "n_particles": 8,
                **{k: v for k, v in fit.items() if k != "n_floor"},
            },
            {
                **fit_fuzz,
                "dim": "count",
                "parameterization": "option",
                "normalization": "option",
                "n_particles": "count",
            },
        ),
        # complexity
        "lipschitz_upper": Spec(lipschitz_upper, {"g": _net()}, {"g": "module", "unknown": "option"}),
        "lipschitz_lower": Spec(
            lipschitz_lower,
            {"g": _net(), "z": ld_lat.Gaussian(2), "n": 8, "n_iter": 2},
            {"g": "module", "z": "samples", "n": "count", "n_iter": "count", "seed": "seed"},
        ),
        "jacobian_spectrum": Spec(
            jacobian_spectrum,
            {"g": _net(), "z": ld_lat.Gaussian(2), "n": 8},
            {"g": "module", "z": "samples", "n": "count", "seed": "seed"},
        ),
        "path_length": Spec(
            path_length,
            {"g": _net(), "latent": ld_lat.Gaussian(2), "n": 8},
            {"g": "module", "latent": "samples", "n": "count", "eps": "scalar", "seed": "seed"},
        ),
        "linear_regions": Spec(
            linear_regions,
            {"g": _net(), "latent": ld_lat.Gaussian(2), "n_lines": 2, "resolution": 16, "progress": False},
            {"g": "module", "latent": "latent", "n_lines": "count", "resolution": "count", "seed": "seed"},
        ),
        "param_count": Spec(param_count, {"g": _net()}, {"g": "module", "trainable_only": "bool"}),
        "complexity_report": Spec(
            complexity_report,
            {"g": _net(), "latent": ld_lat.Gaussian(2), "n": 8},
            {"g": "module", "latent": "latent", "n": "count", "seed": "seed"},
        ),
        "intrinsic_dimension": Spec(
            intrinsic_dimension, {"x": D40, "k": 5}, {"x": "samples", "method": "option", "k": "count"}
        ),
        "n_components": Spec(n_components, {"x": D40, "scale": 0.5}, {"x": "samples", "scale": "scalar"}),
        "ComplexityCallback": Spec(
            ComplexityCallback,
            {"latent": ld_lat.Gaussian(2), "every": 1, "n": 8},
            {"latent": "latent", "every": "count", "n": "count", "seed": "seed"},
        ),
        # train
        "train_gan": Spec(
            train.train_gan,
            {
                "data": D40,
                "latent": ld_lat.Gaussian(2),
                "generator": ld_gen.MLP(4, 1),
                "critic": train.MLPCritic(4, 1),
                **trainer,
            },
            {
                **{k: v for k, v in trainer_fuzz.items() if k != "lr"},
                "lr_g": "scalar",
                "lr_d": "scalar",
                "loss": "option",
                "latent": "latent",
                "critic": "module",
                "generator": "module",
            },
        ),
        "train_autoencoder": Spec(
            train.train_autoencoder,
            {"data": D40, "encoder": train.MLPEncoder(4, 1, 1), "decoder": ld_gen.MLP(4, 1), **trainer},
            {**trainer_fuzz, "encoder": "module", "loss": "option", "latent_dim": "count"},
        ),
        "train_dae": Spec(
            train.train_dae,
            {
                "data": D40,
                "encoder": train.MLPEncoder(4, 1, 1),
                "aux_decoder": ld_gen.MLP(2, 1),
                "decoder": ld_gen.MLP(4, 1),
                "stage1_steps": 1,
                "stage2_steps": 1,
                "batch_size": 8,
                "progress": False,
            },
            {
                "data": "samples",
                "stage1_steps": "count",
                "stage2_steps": "count",
                "lr": "scalar",
                "encoder": "module",
                "stage2_init": "option",
                "aux_dropout": "prob",
                "seed": "seed",
            },
        ),
        "encode": Spec(
            train.encode,
            {"encoder": _net(2, 1), "data": X},
            {"encoder": "module", "data": "samples", "batch_size": "count"},
        ),
        "MLPEncoder": Spec(
            train.MLPEncoder,
            {"width": 4},
            {"width": "count", "depth": "count", "latent_dim": "count", "activation": "option"},
        ),
        "ConvEncoder": Spec(train.ConvEncoder, {"channels": 2}, {"channels": "count", "latent_dim": "count"}),
        "MLPCritic": Spec(
            train.MLPCritic, {"width": 4}, {"width": "count", "depth": "count", "activation": "option"}
        ),
        "ConvCritic": Spec(train.ConvCritic, {"channels": 2}, {"channels": "count"}),
        "Dropout": Spec(train.Dropout, {"base": ld_gen.MLP(4), "p": 0.1}, {"base": "family", "p": "prob"}),
        "weaken": Spec(
            train.weaken,
            {"family": ld_gen.MLP(4), "width_mult": 0.5},
            {"family": "family", "width_mult": "scalar", "depth": "count", "dropout": "prob"},
        ),
        "add_dropout": Spec(
            train.add_dropout, {"module": _net(), "p": 0.1}, {"module": "module", "p": "prob"}
        ),
        "GMMPrior": Spec(
            train.GMMPrior,
            {"n_components": 2},
            {"n_components": "count", "covariance_type": "option", "seed": "seed"},
            post=lambda r: r.fit(D40).sample(3),
        ),
        "KDEPrior": Spec(
            train.KDEPrior,
            {"bandwidth": "scott"},
            {"bandwidth": "scalar"},
            post=lambda r: r.fit(D40).sample(3),
        ),
        "FlowPrior": Spec(
            train.FlowPrior,
            {"n_layers": 1, "hidden": 4, "steps": 1, "batch_size": 8, "progress": False},
            {"n_layers": "count", "hidden": "count", "steps": "count", "lr": "scalar", "seed": "seed"},
            post=lambda r: r.fit(D40).sample(3),
        ),
        "fit_prior": Spec(
            train.fit_prior,
            {"z": D40, "kind": "gmm", "n_components": 2},
            {"z": "samples", "kind": "option"},
            post=lambda r: r.sample(3),
        ),
        "GenerativePipeline": Spec(
            train.GenerativePipeline,
            {"prior": ld_lat.Gaussian(2), "decoder": _net()},
            {"prior": "latent", "decoder": "module", "batch_size": "count"},
            post=lambda r: r.sample(3),
        ),
        "prior_parameter_count": Spec(
            train.prior_parameter_count, {"prior": ld_lat.Gaussian(2)}, {"prior": "latent"}
        ),
        "train_vae": Spec(
            train.train_vae,
            {
                "data": POS,
                "encoder": train.MLPEncoder(4, 1, 2),
                "decoder": ld_gen.MLP(4, 1),
                "likelihood": "gaussian",
                **trainer,
            },
            {**trainer_fuzz, "encoder": "module", "likelihood": "option", "beta": "scalar"},
        ),
        "train_two_stage_vae": Spec(
            train.train_two_stage_vae,
            lambda: {
                "first": _vae(),
                "data": POS,
                "encoder": train.MLPEncoder(4, 1, 2),
                "decoder": ld_gen.MLP(4, 1),
                **trainer,
            },
            {"first": "latent", "data": "samples", "beta": "scalar", "seed": "seed"},
        ),
        "train_rae": Spec(
            train.train_rae,
            {"data": POS, "encoder": train.MLPEncoder(4, 1, 1), "decoder": _sigmoid_decoder(), **trainer},
            {**trainer_fuzz, "regulariser": "option", "beta": "scalar", "lam": "scalar"},
            names={"data": ("decoder",)},  # the decoder module is built for 3 features
        ),
        "train_wae": Spec(
            train.train_wae,
            {"data": POS, "encoder": train.MLPEncoder(4, 1, 1), "decoder": _sigmoid_decoder(), **trainer},
            {**trainer_fuzz, "lam": "scalar"},
            names={"data": ("decoder",)},
        ),
        "SecondStagePrior": Spec(
            train.SecondStagePrior,
            {"decoder": _net(2, 2), "in_dim": 2, "dim": 2},
            {"decoder": "module", "in_dim": "count", "dim": "count"},
        ),
        # metrics
        "FeatureRecipe": Spec(
            metrics.FeatureRecipe,
            {},
            {
                "hidden": "count",
                "epochs": "count",
                "batch_size": "count",
                "lr": "scalar",
                "lr_schedule": "option",
            },
        ),
        "check_mnist_images": Spec(
            metrics.check_mnist_images, {"images": np.zeros((2, 1, 28, 28))}, {"images": "images"}
        ),
        "gaussian_stats": Spec(metrics.gaussian_stats, {"feats": X}, {"feats": "samples"}),
        "frechet_distance": Spec(
            metrics.frechet_distance,
            {"mu1": np.zeros(2), "sigma1": np.eye(2), "mu2": np.ones(2), "sigma2": 2 * np.eye(2)},
            {"mu1": "vector", "sigma1": "matrix", "mu2": "vector", "sigma2": "matrix"},
        ),
        "fid": Spec(
            metrics.fid,
            {"real_feats": X, "fake_feats": Y},
            {"real_feats": "samples", "fake_feats": "samples"},
            distinct=True,
        ),
        "kid": Spec(
            metrics.kid,
            {"real_feats": X, "fake_feats": Y, "n_subsets": 2, "subset_size": 5},
            {
                "real_feats": "samples",
                "fake_feats": "samples",
                "n_subsets": "count",
                "subset_size": "count",
                "seed": "seed",
            },
        ),
        "knn_radii": Spec(metrics.knn_radii, {"x": X, "k": 3}, {"x": "samples", "k": "count"}),
        "precision_recall": Spec(
            metrics.precision_recall,
            {"real": X, "fake": Y, "k": 3},
            {"real": "samples", "fake": "samples", "k": "count"},
        ),
        "density_coverage": Spec(
            metrics.density_coverage,
            {"real": X, "fake": Y, "k": 3},
            {"real": "samples", "fake": "samples", "k": "count"},
        ),
        "manifold_error": Spec(
            metrics.manifold_error,
            {"samples": circles.x[:10], "dataset": circles},
            {"samples": "samples", "dataset": "latent"},
        ),
        "mode_coverage": Spec(
            metrics.mode_coverage,
            {"samples": X, "modes": Y[:3], "std": 0.5},
            {"samples": "samples", "modes": "samples", "std": "scalar", "n_sigma": "scalar"},
        ),
        "distribution_distances": Spec(
            metrics.distribution_distances,
            {"samples": X, "data": Y, "distances": ("w1",), "n_repeats": 2, "progress": False},
            {"samples": "samples", "data": "samples", "n_repeats": "count", "seed": "seed"},
        ),
    }
    return s


#: Public callables not fuzzed here, with the reason.
EXEMPT = {
    # result containers and bases: built by the library, not from user input
    "ToyDataset": "result container",
    "BootstrapResult": "result container",
    "NoiseFloor": "result container",
    "TwoSampleResult": "result container",
    "DistanceEntry": "registry record (validated by register_distance)",
    "LatentDistanceResult": "result container",
    "OptimalLatentResult": "result container",
    "DataSplit": "result container of make_split",
    "LayerFactor": "result container",
    "JacobianSpectrum": "result container",
    "LinearRegions": "result container",
    "GANResult": "result container",
    "AutoencoderResult": "result container",
    "DAEResult": "result container",
    "VAEResult": "result container",
    "TwoStageVAEResult": "result container",
    "GaussianStats": "result container",
    "KIDResult": "result container",
    "PrecisionRecall": "result container",
    "DensityCoverage": "result container",
    "Latent": "abstract base class",
    "Family": "abstract base class",
    "Callback": "a type alias",
    "MNISTUnavailableError": "exception class",
    # file and network IO: covered by tests/test_data_mnist.py against a local server
    "load_mnist": "reads the MNIST files (tests/test_data_mnist.py)",
    "read_idx": "file parser (tests/test_data_mnist.py)",
    "download_mnist": "network (tests/test_data_mnist.py, local server)",
    "ensure_mnist": "network (tests/test_data_mnist.py, local server)",
    "MNISTFeatures": "wraps a trained CNN; built by MNISTFeatures.train/load (tests/test_metrics_mnist.py)",
    "mnist_metrics": "needs the trained MNIST feature CNN (tests/test_metrics_mnist.py)",
    "kernel_matrix": "unvalidated tensor kernel by design (see its docstring); mmd2 is the public entry",
    "estimate_families": "needs a DataSplit from make_split; fuzzed through latent_data_distance",
}


def _public_callables() -> dict[str, Any]:
    out = {}
    for modname in SUBPACKAGES:
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if callable(obj) and not isinstance(obj, (str, bytes)):
                out[name] = obj
    return out


SPECS = _specs()


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for fname, spec in SPECS.items():
        cases.append((fname, "", "valid"))
        valid = spec.kwargs() if not callable(spec.args) else {}
        for arg, kind in spec.fuzz.items():
            for mutation in KINDS[kind](valid.get(arg, X)):
                cases.append((fname, arg, mutation))
    return cases


CASES = _cases()


# --- outcome checks -------------------------------------------------------------------------------


def _finite(obj: Any, path: str = "result", depth: int = 0) -> None:
    """Every number reachable in ``obj`` is finite."""
    if depth > 4 or obj is None or isinstance(obj, (str, bytes, bool, pd.DataFrame, pd.Series)):
        return
    if isinstance(obj, (int, float, np.integer, np.floating)):
        assert math.isfinite(float(obj)), f"{path} is {obj}"
    elif isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fc":
            assert np.isfinite(obj).all(), f"{path} has non-finite entries"
    elif isinstance(obj, torch.Tensor):
        if obj.is_floating_point():
            assert bool(torch.isfinite(obj.detach()).all()), f"{path} has non-finite entries"
    elif isinstance(obj, nn.Module):
        for name, p in obj.named_parameters():
            _finite(p, f"{path}.{name}", depth + 1)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _finite(v, f"{path}[{k!r}]", depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _finite(v, f"{path}[{i}]", depth + 1)
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            _finite(getattr(obj, f.name), f"{path}.{f.name}", depth + 1)


def _names_argument(message: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(w)}(?![A-Za-z0-9_])", message) for w in words)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout(f"no answer within {CASE_TIMEOUT} s")


def run_case(fname: str, arg: str, mutation: str) -> str:
    """Run one case; return 'error' or 'result', or raise AssertionError describing the bad outcome."""
    spec = SPECS[fname]
    kwargs = spec.kwargs()
    if arg:
        kwargs[arg] = KINDS[spec.fuzz[arg]](kwargs.get(arg, X))[mutation]()
    words = (arg, *spec.names.get(arg, ()))
    old = signal.signal(signal.SIGALRM, _alarm) if hasattr(signal, "SIGALRM") else None
    if old is not None:
        signal.alarm(CASE_TIMEOUT)
    try:
        result = spec.fn(**kwargs)
        if spec.post is not None:
            result = spec.post(result)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        scale_ok = mutation in SCALE and re.search(r"scale|range|overflow|float|memory|bytes", message)
        assert not arg or _names_argument(message, words) or scale_ok, (
            f"{type(exc).__name__} does not name {arg!r}: {message}"
        )
        return "error"
    finally:
        _forget_fuzz_distances()  # a register_distance case must not leak into other tests
        if old is not None:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    _finite(result)
    if spec.distinct and isinstance(result, float):
        assert result != 0.0, "a distance between distinct samples came back 0.0"
    return "result"


def test_every_public_callable_is_covered():
    public = _public_callables()
    missing = sorted(set(public) - set(SPECS) - set(EXEMPT))
    assert not missing, f"public callables with neither a fuzz Spec nor an EXEMPT reason: {missing}"
    stale = sorted((set(SPECS) | set(EXEMPT)) - set(public))
    assert not stale, f"fuzz entries for names that are no longer public: {stale}"


#: Cases that still fail, with the owner's module: xfail(strict) so a fix is noticed and the entry removed.
KNOWN: dict[tuple[str, str, str], str] = {}


def _param(case):
    mark = [pytest.mark.xfail(reason=KNOWN[case], strict=True)] if case in KNOWN else []
    return pytest.param(*case, marks=mark, id=f"{case[0]}-{case[1] or 'call'}-{case[2]}")


@pytest.mark.parametrize(("fname", "arg", "mutation"), [_param(c) for c in CASES])
def test_fuzz(fname, arg, mutation):
    outcome = run_case(fname, arg, mutation)
    if mutation == "valid":
        assert outcome == "result", f"the valid call of {fname} failed"


def _summary() -> None:  # pragma: no cover - the README numbers: python tests/test_fuzz.py
    import time
    import warnings

    warnings.simplefilter("ignore")
    counts: Counter = Counter()
    failures = []
    start = time.perf_counter()
    for case in CASES:
        try:
            counts[run_case(*case)] += 1
        except Exception as exc:  # noqa: BLE001 - counting every kind of failure is the point
            counts["failed"] += 1
            failures.append(f"{'-'.join(case)}: {type(exc).__name__}: {str(exc)[:160]}")
    public = _public_callables()
    print(f"{len(public)} public callables: {len(SPECS)} fuzzed, {len(EXEMPT)} exempt")
    print(f"{len(CASES)} cases in {time.perf_counter() - start:.0f} s: {dict(counts)}")
    print("\n".join(failures))


if __name__ == "__main__":
    sys.exit(_summary())
