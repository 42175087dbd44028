"""Quick and full configurations of the experiments R1–R6 (docs/theory.md §6).

A configuration is a plain JSON-like dict, so it can be hashed for the result cache and written next
to the numbers it produced. ``quick`` is sized for the test suite and ``latentdist repro --quick``
(minutes on two CPU cores); ``full`` produces the numbers quoted in ``paper_repro.md``.
"""

from __future__ import annotations

import copy
from typing import Any

from latentdist._validation import check_option

__all__ = ["CLAIMS", "MODES", "get_config", "default_out_dir"]

CLAIMS = ("R1", "R2", "R3", "R4", "R5", "R6", "R7")
MODES = ("quick", "full")

_R1 = {
    "quick": {
        "seed": 0,
        "a1": {"n": 500, "eigenvalues": [4.0, 1.0, 0.25], "dims": [1, 2], "steps": 200, "restarts": 2},
        "a2": {"n": 400, "a": 2.0, "lipschitz": [1.0, 2.0, 4.0], "steps": 150, "restarts": 2,
               "width": 16, "depth": 2},
        "props": {"n": 400, "steps": 150, "restarts": 2, "width": 16},
        "batch_size": 128,
        "lr": 0.01,
        "holdout": 0.5,
        # the oracle: d(g*#P_z, P_x) over fresh draws at the estimator's evaluation size; the second check
        # is the paired Sinkhorn divergence of the fitted vs the optimal generator on the same draws
        "oracle": {"draws": 5, "check_distance": "sinkhorn", "check_n": 200},
        # match: |estimate - oracle| <= k (oracle sd + restart sd) / sqrt(draws) + rel * closed form
        "tolerance": {"k": 3.0, "rel": 0.02},
        "unit_dir": None,
    },
    "full": {
        "seed": 0,
        "a1": {"n": 2000, "eigenvalues": [4.0, 1.0, 0.25], "dims": [1, 2], "steps": 400, "restarts": 3},
        # n = 3000: the W1 floor at 1500 held-out points (~0.06) is <= 25% of the smallest closed form (0.26)
        "a2": {"n": 3000, "a": 2.0, "lipschitz": [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0], "steps": 400,
               "restarts": 3, "width": 32, "depth": 2},
        "props": {"n": 1000, "steps": 400, "restarts": 3, "width": 32},
        "batch_size": 128,
        "lr": 0.01,
        "holdout": 0.5,
        "oracle": {"draws": 20, "check_distance": "sinkhorn", "check_n": 300},  # Sinkhorn costs O(n^2)
        "tolerance": {"k": 3.0, "rel": 0.02},
        "unit_dir": "figures/units",  # one JSON per anchor: an interrupted full run resumes from them
    },
}

_R2 = {
    "quick": {
        "seed": 0,
        "datasets": {"ring8": {"name": "gaussian_mixture_ring", "params": {"k": 8}},
                     "spiral": {"name": "spiral", "params": {}}},
        "n": 600, "noise": 0.0,
        # capacity = MLP width, so C_eps can be counted in parameters (generator, and generator + latent)
        "family": "mlp", "capacities": [4, 16], "width": 16, "depth": 2,
        "distances": ["w2", "sliced"], "steps": 100, "restarts": 3, "batch_size": 128, "lr": 0.01,
        "eps_k": 2.0, "holdout": 0.5,
        "optimal": {"width": 8, "steps": 100},  # the d = 1 particle search (on its own data split)
        "budget_sensitivity": {"dataset": "ring8", "multipliers": [1, 2]},
        "unit_dir": None,
    },
    "full": {
        "seed": 0,
        "datasets": {"ring8": {"name": "gaussian_mixture_ring", "params": {"k": 8}},
                     "spiral": {"name": "spiral", "params": {}}},
        "n": 2000, "noise": 0.0,
        "family": "mlp", "capacities": [2, 4, 8, 16, 32, 64], "width": 32, "depth": 2,
        "distances": ["w2", "sliced"], "steps": 400, "restarts": 3, "batch_size": 128, "lr": 0.01,
        "eps_k": 2.0, "holdout": 0.5,
        "optimal": {"width": 8, "steps": 400},
        # the ring needed 800 steps in the first R2; steps x1, x2, x4 show whether C_eps still moves
        "budget_sensitivity": {"dataset": "ring8", "multipliers": [1, 2, 4]},
        "unit_dir": "figures/units",
    },
}

_R3 = {
    "quick": {
        "seed": 0,
        "datasets": {"ring8": {"name": "gaussian_mixture_ring", "params": {"k": 8}},
                     "spiral": {"name": "spiral", "params": {}}},
        "n": 600, "latent_dim": 2, "family": "lipschitz", "capacity": 1.0, "width": 16, "depth": 2,
        "distance": "w2", "parameterization": "particles", "normalization": "moment", "holdout": 0.5,
        "steps": 100, "restarts": 2, "batch_size": 128, "lr": 0.01,
        "search_seeds": 3,  # independent searches, reported as mean ± sd
        "scale": 0.3,  # n_components radius (moment units; the ring's modes are ~1.1 apart, sd ~0.035)
        "unit_dir": None,
    },
    "full": {
        "seed": 0,
        "datasets": {"ring8": {"name": "gaussian_mixture_ring", "params": {"k": 8}},
                     "spiral": {"name": "spiral", "params": {}}},
        "n": 2000, "latent_dim": 2, "family": "lipschitz", "capacity": 1.0, "width": 32, "depth": 2,
        "distance": "w2", "parameterization": "particles", "normalization": "moment", "holdout": 0.5,
        "steps": 400, "restarts": 2, "batch_size": 128, "lr": 0.01,
        "search_seeds": 5, "scale": 0.3, "unit_dir": "figures/units",
    },
}

_R4 = {
    "quick": {
        "seed": 0,
        "dataset": {"name": "gaussian_mixture_ring", "params": {"k": 8}},
        "n": 1000, "latent_dim": 2, "depth": 2, "widths": [16, 64],
        "critic_width": 64, "loss": "hinge", "lr": 1e-3, "steps": 250, "prior": "gmm", "n_eval": 1000,
        "latent_steps": 100, "seeds": 3, "tune_seed": 999, "unit_dir": None,
    },
    "full": {
        "seed": 0,
        "dataset": {"name": "gaussian_mixture_ring", "params": {"k": 8}},
        "n": 2000, "latent_dim": 2, "depth": 2, "widths": [16, 48, 128],
        "critic_width": 128, "loss": "hinge", "lr": 1e-3, "steps": 1500, "prior": "gmm", "n_eval": 2000,
        # both latents at every width, 5 paired seeds; the recipe was checked on tune_seed (never reported)
        "latent_steps": 400, "seeds": 5, "tune_seed": 999, "unit_dir": "figures/units",
    },
}

_R5 = {  # DAE vs joint (r5_dae); units are cached per (seed, model), so full mode resumes seed by seed
    "quick": {
        "seed": 0, "split_seed": 2023, "n_train": 1500, "n_val": 500, "n_eval": 500,
        "latent_dim": 8, "encoder_channels": 8, "decoder": {"channels": 8, "depth": 1},
        # one strength per weakening exercises every code path; full mode sweeps three
        "sweeps": {"dropout": [0.3], "width": [4], "depth": [0]}, "init_variant": True,
        "n_seeds": 2, "sweep_seeds": 2,
        "loss": "bce_logits", "batch_size": 64, "lr": 2e-3,
        "max_steps": 400, "min_steps": 0, "validate_every": 50, "patience": 2, "min_delta": 0.0,
        "prior": "gmm", "prior_components": [4, 8],
        "latent_dg": {"width": 16, "depth": 2, "n": 400, "steps": 60, "restarts": 1, "distance": "w2",
                      "n_floor": 3},
        "calibration": {"blur_sigmas": [0.5, 1.0, 1.5], "noise_std": 0.1}, "mmd_n": 300, "unit_cache": True,
        "unit_dir": None,
    },
    "full": {
        "seed": 0, "split_seed": 2023, "n_train": None, "n_val": 5000, "n_eval": 5000,
        # 16 channels (not 32): 69 stages of >= 20 epochs must fit ~3 h on 2 cores (benchmarks/README.md)
        "latent_dim": 16, "encoder_channels": 16, "decoder": {"channels": 16, "depth": 2},
        # depth 2 (= the final decoder's) is the unweakened end of the depth sweep
        "sweeps": {"dropout": [0.1, 0.3, 0.5], "width": [4, 8, 12], "depth": [0, 1, 2]},
        "init_variant": True, "n_seeds": 5, "sweep_seeds": 3,
        # 55k training images / 128 = 430 steps an epoch: at least 20 epochs, at most 40, validated each epoch
        "loss": "bce_logits", "batch_size": 128, "lr": 1e-3,
        # plateau: 3 epochs in a row without beating the best validation BCE by 2e-4 nats a pixel
        # (0.16 nats an image); without a tolerance every stage creeps on to the 40-epoch cap
        "max_steps": 17200, "min_steps": 8600, "validate_every": 430, "patience": 3, "min_delta": 2e-4,
        "prior": "gmm", "prior_components": [10, 20],
        "latent_dg": {"width": 32, "depth": 2, "n": 4000, "steps": 400, "restarts": 2, "distance": "w2",
                      "n_floor": 10},
        "calibration": {"blur_sigmas": [0.5, 1.0, 1.5], "noise_std": 0.1}, "mmd_n": 2000, "unit_cache": True,
        # finished units are also written here and committed, so a later session resumes a partial full run
        "unit_dir": "figures/units/R5",
    },
}

_R6 = {
    "quick": {
        "seed": 0,
        "datasets": {"ring8": {"name": "gaussian_mixture_ring", "params": {"k": 8}},
                     "spiral": {"name": "spiral", "params": {}}},
        "distances": ["w2", "sinkhorn", "mmd"], "n": 500, "latent_dim": 2, "family": "lipschitz",
        "capacity": 1.0, "width": 16, "depth": 2, "steps": 60, "restarts": 2, "holdout": 0.5,
        "batch_size": 128,
        "lr": 0.01, "optimal_steps": 60, "unit_dir": None,
    },
    "full": {
        "seed": 0,
        "datasets": {"ring8": {"name": "gaussian_mixture_ring", "params": {"k": 8}},
                     "spiral": {"name": "spiral", "params": {}}},
        "distances": ["w2", "sinkhorn", "mmd"], "n": 2000, "latent_dim": 2, "family": "lipschitz",
        "capacity": 1.0, "width": 32, "depth": 2, "steps": 300, "restarts": 2, "holdout": 0.5,
        "batch_size": 128,
        "lr": 0.01, "optimal_steps": 300, "unit_dir": "figures/units",  # one unit per (dataset, distance)
    },
}

_R7 = {  # the DAE among its peers (r7_peers); every network shares decoder, latent, step cap, early stopping
    "quick": {
        "seed": 0, "n_seeds": 2, "split_seed": 2023, "n_train": 1500, "n_val": 300, "n_eval": 500,
        "latent_dim": 8, "encoder_channels": 8, "decoder": {"channels": 8, "depth": 1}, "critic_channels": 8,
        "batch_size": 64, "lr": 2e-3, "max_steps": 80, "min_steps": 0, "validate_every": 20, "patience": 2,
        "prior": "gmm", "prior_components": [4, 8], "flow_steps": 80,
        "second_stage": {"steps": 80, "width": 32},
        # quick mode fixes a weakening (R5's quick sweep is smoke-sized); full mode takes R5's choice
        "dae": {"weakening": "width", "strength": 4},
        # one hyper-parameter per baseline, chosen on validation sample FID (first seed)
        "tuning": {"gan": {"lr": [2e-3]}, "vae": {"beta": [1.0]}, "rae": {"lam": [1e-2]},
                   "wae": {"lam": [10.0, 100.0]}},
        "latent_dg": {"width": 16, "depth": 2, "n": 400, "steps": 60, "restarts": 1, "distance": "w2",
                      "n_floor": 3},
        "calibration": {"blur_sigmas": [0.5, 1.0, 1.5], "noise_std": 0.1}, "mmd_n": 300, "unit_cache": False,
        "unit_dir": None,
    },
    "full": {  # R5's data split and networks (so R5's choice of weakening applies), 30 epochs for every one
        "seed": 0, "n_seeds": 3, "split_seed": 2023, "n_train": None, "n_val": 5000, "n_eval": 5000,
        "latent_dim": 16, "encoder_channels": 16, "decoder": {"channels": 16, "depth": 2},
        # the same budget for every network (the GAN has no validation objective to stop on): 30 epochs of
        # 55k images, where R5's plateau rule stopped its joint AE on average (best at epoch 27-38), validated
        # every epoch, the best validated weights kept (patience None: no early cut)
        "critic_channels": 16, "batch_size": 128, "lr": 1e-3, "max_steps": 12900, "min_steps": 0,
        "validate_every": 430, "patience": None,
        "prior": "gmm", "prior_components": [10, 20], "flow_steps": 2000,
        "second_stage": {"steps": 4000, "width": 256},
        "dae": "R5",  # R5's validation choice, read from figures/units/R5 (r7_peers.resolve_dae)
        # VAE, RAE and WAE got a third value after a first two-value run on the first seed (paper_repro R7)
        "tuning": {"gan": {"lr": [1e-4, 2e-4]}, "vae": {"beta": [0.25, 0.5, 1.0]},
                   "rae": {"lam": [1e-4, 1e-3, 1e-2]}, "wae": {"lam": [10.0, 100.0, 1000.0]}},
        "latent_dg": {"width": 32, "depth": 2, "n": 4000, "steps": 400, "restarts": 2, "distance": "w2",
                      "n_floor": 10},
        "calibration": {"blur_sigmas": [0.5, 1.0, 1.5], "noise_std": 0.1}, "mmd_n": 2000,
        # each (network, seed) is a file here once scored (committed): a killed run resumes from there
        "unit_cache": True, "unit_dir": "figures/units/R7",
    },
}

_CONFIGS = {"R1": _R1, "R2": _R2, "R3": _R3, "R4": _R4, "R5": _R5, "R6": _R6, "R7": _R7}


def _merge(base: dict, overrides: dict, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        where = f"{path}{key}"
        if key not in out:
            raise ValueError(f"unknown configuration key {where!r}; known: {sorted(out)}")
        if isinstance(out[key], dict) and isinstance(value, dict) and key != "datasets":
            out[key] = _merge(out[key], value, f"{where}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def get_config(claim: str, mode: str = "quick", **overrides: Any) -> dict:
    """The configuration of ``claim`` in ``mode``, with optional overrides.

    Parameters
    ----------
    claim : {'R1', ..., 'R6'}
    mode : {'quick', 'full'}
    **overrides
        Replace top-level keys; a dict value is merged into a nested dict (``a2={'steps': 10}``)
        except ``datasets``, which is replaced whole. Unknown keys raise ``ValueError``.

    Returns
    -------
    dict
        A fresh deep copy, safe to modify.

    Examples
    --------
    >>> get_config("R2", "quick", steps=10)["steps"]
    10
    """
    check_option(claim, "claim", CLAIMS)
    check_option(mode, "mode", MODES)
    return _merge(_CONFIGS[claim][mode], overrides)


def default_out_dir(mode: str) -> str:
    """``figures/quick`` for quick mode, ``figures`` for full mode (relative to the working directory)."""
    check_option(mode, "mode", MODES)
    return "figures/quick" if mode == "quick" else "figures"
