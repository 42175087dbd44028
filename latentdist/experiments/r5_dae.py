"""R5: Decoupled Autoencoder vs joint training on MNIST (docs/theory.md §4, §6 R5).

Design (issue 12; paper_repro.md R5 states the verdict rule before the numbers):

* Data: MNIST train is split once (``split_seed``) into training images and a fixed validation part that
  is checked disjoint from test; every choice (early-stopping point, auxiliary strength, GMM size) is made
  on validation. Test images are used only for the final scores: ``n_eval`` reference images, and a disjoint
  ``n_eval`` for the real-vs-real floor and the calibration rows (blurred and noisy real digits).
* Models: one encoder, one final decoder (``ConvDecoder`` emitting logits, BCE-with-logits loss), one prior
  family, one step budget and one seed per pair. Joint AE: f and g trained together. DAE: stage 1 trains f
  with an auxiliary decoder weakened by dropout (Dropout2d), width or depth, never larger than g; stage 2
  freezes f and trains a fresh g (``init='aux'``: g starts from the auxiliary weights, a stated variant).
  Every stage early-stops on its validation loss (``patience``, ``min_steps``, cap ``max_steps``).
* Sweeps: each weakening at each strength over ``sweep_seeds`` seeds; the DAE whose weakening has the best
  mean validation sample FID is the headline DAE, compared with the joint AE over ``n_seeds`` seeds.
* Scores per model and seed: sample FID (prior then decoder), recon FID (decoder(encoder(test))), prior gap
  = sample - recon FID, KID, precision/recall, density/coverage, class-histogram entropy and TV from
  uniform, the prior's held-out NLL of standardised test codes, latent D_G from N(0, I) to the standardised
  training codes at a fixed small MLP capacity with its noise floor, and the pixel-space sliced W2 and MMD
  (:mod:`latentdist.metrics.robust`) of samples and reconstructions.
* Resumable: each (seed, model) is one unit cached under a hash of everything it depends on, so a full run
  can be done seed by seed (``seeds=[k]``) and an interrupted run redoes only its unfinished unit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentdist.experiments import cache
from latentdist.experiments._common import Verdict
from latentdist.experiments.r5_stats import paired_differences, paired_summary, paired_verdict
from latentdist.experiments.result import ExperimentResult
from latentdist.tasks import Task, TaskStore, run_tasks

__all__ = ["CLAIM", "TITLE", "VERSION", "NEEDS_MNIST", "WEAKENINGS", "compute", "plot", "run", "model_specs",
           "check_config", "aux_family", "run_seed", "verdict", "validation_choice", "stored_rows"]

CLAIM = "R5"
TITLE = "DAE vs joint autoencoder on MNIST"
VERSION = 5
NEEDS_MNIST = True
WEAKENINGS = ("dropout", "width", "depth")
# per-metric keys the headline statistics and figures use
PAIRED_METRICS = ("sample_fid", "recon_fid", "prior_gap", "sample_kid", "latent_dg", "prior_nll",
                  "sample_sw2_pixels", "recon_sw2_pixels", "sample_sw2_features", "class_tv_uniform")


# --------------------------------------------------------------------------- configuration


def final_family(config: dict):
    """The final decoder (emitting logits for ``loss='bce_logits'``) shared by joint AE and DAE."""
    from latentdist.generators import ConvDecoder

    dec = config["decoder"]
    return ConvDecoder(dec["channels"], depth=dec["depth"], output=_output(config))


def _output(config: dict) -> str:
    return "linear" if config["loss"] in ("bce_logits", "mse") else "sigmoid"


def aux_family(config: dict, weakening: str, strength: float):
    """The auxiliary decoder for one weakening: dropout p, width (channels) or depth, the rest as final."""
    if weakening not in WEAKENINGS:
        raise ValueError(f"weakening must be one of {WEAKENINGS}, got {weakening!r}")
    final = final_family(config)
    if weakening == "dropout":
        return dataclasses.replace(final, dropout=float(strength))
    if weakening == "width":
        return dataclasses.replace(final, channels=int(strength))
    return dataclasses.replace(final, depth=int(strength))


def model_specs(config: dict, seed: int, seeds: list[int], sweep_seeds: list[int]) -> list[dict]:
    """The units to train for ``seed``: joint, every sweep point (on sweep seeds) and the init variant."""
    specs: list[dict] = [{"method": "joint"}]
    if seed in sweep_seeds:
        for kind in WEAKENINGS:
            for s in config["sweeps"][kind]:
                specs.append({"method": "dae", "weakening": kind, "strength": float(s), "init": "fresh"})
        if config["init_variant"] and config["sweeps"]["dropout"]:
            p = float(config["sweeps"]["dropout"][len(config["sweeps"]["dropout"]) // 2])
            specs.append({"method": "dae", "weakening": "dropout", "strength": p, "init": "aux"})
    return specs


def check_config(config: dict) -> None:
    """Refuse a bad configuration before any training (every message names the offending key).

    Checks: every auxiliary decoder of every sweep is a valid ``ConvDecoder`` (dropout in [0, 1), width and
    depth >= 0) and is not larger than the final decoder; the validation part is non-empty and leaves
    training data; at least 2 headline seeds for the paired statistics of a multi-seed run.
    """
    from latentdist.train.autoencoder import check_aux_not_larger

    d = int(config["latent_dim"])
    final = final_family(config)
    dec = final.build(d, 784, seed=0)
    for kind in WEAKENINGS:
        values = config["sweeps"].get(kind)
        if not isinstance(values, list):
            raise ValueError(f"sweeps.{kind} must be a list of strengths, got {values!r}")
        for s in values:
            if kind == "dropout" and not 0.0 <= float(s) < 1.0:
                raise ValueError(f"sweeps.dropout values must lie in [0, 1), got {s}")
            try:
                fam = aux_family(config, kind, s)
                check_aux_not_larger(fam.build(d, 784, seed=0), dec, fam, final)
            except ValueError as exc:
                raise ValueError(f"sweeps.{kind}={s}: {exc}") from exc
    n_val = config["n_val"]
    if not isinstance(n_val, int) or n_val < 1:
        raise ValueError(f"n_val must be a positive number of validation images, got {n_val!r}")
    if config["n_train"] is not None and (config["n_train"] < 2 or config["n_train"] + n_val > 60000):
        raise ValueError(f"n_train must be in [2, 60000 - n_val], got {config['n_train']}")
    if 2 * config["n_eval"] > 10000:
        raise ValueError(f"n_eval must be at most 5000 (two disjoint test halves), got {config['n_eval']}")
    if config["sweep_seeds"] > config["n_seeds"]:
        raise ValueError(f"sweep_seeds ({config['sweep_seeds']}) must not exceed n_seeds "
                         f"({config['n_seeds']})")


# --------------------------------------------------------------------------- data


def load_data(config: dict) -> dict:
    """Training, validation and test images; ValueError naming LATENTDIST_DATA when MNIST is missing."""
    from latentdist.data import load_mnist
    from latentdist.data.splits import check_disjoint, validation_split

    try:
        x_all, _ = load_mnist("train")
        test, _ = load_mnist("test")
    except FileNotFoundError as exc:
        raise ValueError(f"R5 needs MNIST: set LATENTDIST_DATA to a directory holding mnist/ ({exc})"
                         ) from exc
    tr, va = validation_split(len(x_all), config["n_val"], seed=config["split_seed"])
    if config["n_train"] is not None:
        pick = np.random.default_rng(config["split_seed"] + 1).choice(tr, config["n_train"], replace=False)
        tr = np.sort(pick)
    x_val = x_all[va]
    check_disjoint(x_val, test, name="validation split (n_val)")
    perm = np.random.default_rng(config["split_seed"]).permutation(len(test))
    n = config["n_eval"]
    return {"train": x_all[tr], "val": x_val, "real": test[perm[:n]], "other": test[perm[n:2 * n]]}


# --------------------------------------------------------------------------- one unit: train and score


def _train(spec: dict, config: dict, data: dict, seed: int, progress: bool):
    from latentdist.train import ConvEncoder, train_autoencoder, train_dae

    enc = ConvEncoder(channels=config["encoder_channels"], latent_dim=config["latent_dim"])
    common = dict(batch_size=config["batch_size"], lr=config["lr"], loss=config["loss"],
                  latent_dim=config["latent_dim"], val_data=data["val"],
                  validate_every=config["validate_every"], patience=config["patience"],
                  min_steps=config["min_steps"], min_delta=config.get("min_delta", 0.0), seed=seed,
                  progress=progress,
                  log_every=config["validate_every"])
    if spec["method"] == "joint":
        return train_autoencoder(data["train"], enc, final_family(config), steps=config["max_steps"],
                                 **common)
    aux = aux_family(config, spec["weakening"], spec["strength"])
    return train_dae(data["train"], enc, aux, final_family(config), stage1_steps=config["max_steps"],
                     stage2_steps=config["max_steps"], stage2_init=spec["init"], **common)


def _standardise(codes: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (codes - mean) / std


def _feature_metrics(fr: np.ndarray, ff: np.ndarray, config: dict, seed: int) -> dict[str, float]:
    from latentdist.metrics import density_coverage, fid, kid, precision_recall

    k = kid(fr, ff, n_subsets=50, subset_size=min(1000, len(fr), len(ff)), seed=seed)
    pr, dc = precision_recall(fr, ff, k=5), density_coverage(fr, ff, k=5)
    return {"fid": fid(fr, ff), "kid": k.mean, "precision": pr.precision, "recall": pr.recall,
            "density": dc.density, "coverage": dc.coverage}


def _view_metrics(prefix: str, real: np.ndarray, fr: np.ndarray, images: np.ndarray, feats, config: dict,
                  seed: int) -> dict[str, float]:
    """Classifier-feature metrics (with sliced W2 on the features) and pixel distances of ``images`` against
    the reference, keys prefixed."""
    from latentdist.distances import sliced_wasserstein
    from latentdist.metrics.robust import pixel_distances

    ff = feats.features(images)
    out = _feature_metrics(fr, ff, config, seed)
    out["sw2_features"] = float(sliced_wasserstein(fr, ff, seed=seed))
    out.update(pixel_distances(real, images, mmd_n=config["mmd_n"], seed=seed))
    return {f"{prefix}_{k}": float(v) for k, v in out.items()}


def _latent_dg(z_std: np.ndarray, config: dict, seed: int) -> tuple[float, float]:
    """D_G(N(0, I), standardised codes) at the fixed small capacity, and its noise floor."""
    from latentdist.estimator import latent_data_distance
    from latentdist.generators import MLP
    from latentdist.latents import Gaussian

    c = config["latent_dg"]
    z = z_std[np.random.default_rng(seed).permutation(len(z_std))[: c["n"]]]
    r = latent_data_distance(Gaussian(z.shape[1]), z, MLP(width=c["width"], depth=c["depth"]), c["distance"],
                             n_restarts=c["restarts"], steps=c["steps"], n_floor=c["n_floor"], seed=seed,
                             progress=False)
    return float(r.value), float(r.noise_floor)


def _fit_prior(z_train: np.ndarray, z_val: np.ndarray, config: dict):
    """The GMM whose component count has the best validation log-likelihood (chosen on validation)."""
    from latentdist.train import fit_prior

    best = None
    for k in config["prior_components"]:
        prior = fit_prior(z_train, config["prior"], n_components=int(k))
        ll = float(np.mean(prior.log_prob(z_val)))
        if best is None or ll > best[0]:
            best = (ll, int(k), prior)
    return best


def score_unit(res, config: dict, data: dict, feats, ref: dict, seed: int) -> tuple[dict, np.ndarray]:
    """Every R5 metric of one trained model; returns (row, 64 sample images)."""
    from latentdist.metrics import fid
    from latentdist.metrics.robust import class_histogram
    from latentdist.train.autoencoder import encode

    codes = {k: res.encode(data[k]).numpy().astype(np.float64) for k in ("train", "val", "real")}
    mean, std = codes["train"].mean(0), codes["train"].std(0) + 1e-8
    z = {k: _standardise(v, mean, std) for k, v in codes.items()}
    val_ll, k_best, prior = _fit_prior(z["train"], z["val"], config)
    n = config["n_eval"]
    z_fake = prior.sample(n, seed=seed).numpy().astype(np.float64) * std + mean
    fake = encode(res.image_decoder(), z_fake.astype(np.float32)).reshape(n, 1, 28, 28).numpy()
    recon = res.reconstruct(data["real"]).numpy()
    row: dict[str, Any] = {}
    row.update(_view_metrics("sample", data["real"], ref["real"], fake, feats, config, seed))
    row.update(_view_metrics("recon", data["real"], ref["real"], recon, feats, config, seed))
    row["prior_gap"] = row["sample_fid"] - row["recon_fid"]
    row["val_sample_fid"] = float(fid(ref["val"], feats.features(fake)))
    row.update(class_histogram(feats.predict(fake)))
    row["prior_nll"] = float(-np.mean(prior.log_prob(z["real"])))
    row["prior_val_ll"], row["prior_components"] = val_ll, k_best
    row["latent_dg"], row["latent_dg_floor"] = _latent_dg(z["train"], config, seed)
    row["recon_mse"] = float(np.mean((recon - data["real"]) ** 2))
    row["decoder_params"] = int(sum(p.numel() for p in res.decoder.parameters()))
    aux = getattr(res, "aux_decoder", None)
    row["aux_params"] = int(sum(p.numel() for p in aux.parameters())) if aux is not None else np.nan
    return row, fake[:64, 0]


def _stage_summary(history: pd.DataFrame) -> dict:
    """Steps trained and best validated step of each stage (joint: stage 0)."""
    stages = history.attrs.get("stages") or {0: dict(history.attrs)}
    out = {}
    for k, a in stages.items():
        rows = history[history["stage"] == k] if "stage" in history else history
        out[f"stage{k}_steps"] = int(rows["step"].max())
        out[f"stage{k}_best_step"] = int(a.get("best_step", 0))
    return out


_NOT_IN_KEY = ("n_seeds", "sweep_seeds", "sweeps", "init_variant", "unit_cache", "unit_dir")


def _unit_key(config: dict, seed: int, spec: dict) -> str:
    """Hash of what one unit depends on: not the seed lists, the sweep grid or where units are kept."""
    own = {k: v for k, v in config.items() if k not in _NOT_IN_KEY}
    return cache.config_hash("R5-unit", {"config": own, "seed": seed, "spec": spec}, VERSION)


def _unit_file(config: dict, key: str) -> Path | None:
    """``<unit_dir>/R5-unit-<key>.pkl`` when the config keeps units in the repository (full mode)."""
    return Path(config["unit_dir"]) / f"R5-unit-{key}.pkl" if config.get("unit_dir") else None


def _load_unit(config: dict, key: str) -> dict | None:
    # The digest-checked pair: a damaged unit file warns and is recomputed, like any cache entry.
    path = _unit_file(config, key)
    if path is not None and path.is_file():
        unit = cache.load_file(path)
        if unit is not None:
            return unit
    return cache.load("R5-unit", key) if config["unit_cache"] else None


def _store_unit(config: dict, key: str, unit: dict) -> None:
    path = _unit_file(config, key)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        cache.store_file(path, unit)
    if config["unit_cache"] and cache.unwritable() is None:
        cache.store("R5-unit", key, unit)


class _UnitStore(TaskStore):
    """R5's unit store as a task store: ``unit_dir`` files (committed with the results in full mode) and
    the per-unit result cache (``unit_cache``); a task's key is :func:`_unit_key`."""

    def __init__(self, config: dict):
        super().__init__(None)
        self.config = config

    def load(self, task: Task) -> tuple[bool, Any]:
        hit = _load_unit(self.config, task.key)
        return hit is not None, hit

    def store(self, task: Task, result: Any) -> None:
        _store_unit(self.config, task.key, result)


def _unit_task(spec: dict, config: dict, data: dict, feats, ref: dict, seed: int, progress: bool) -> Task:
    """One (seed, model) as a task whose key is :func:`_unit_key` (the hashed config leaves out the seed
    lists, the sweep grid and where units are kept); the full config, data and features go unhashed."""
    own = {k: v for k, v in config.items() if k not in _NOT_IN_KEY}
    return Task(_train_and_score, {"config": own, "seed": seed, "spec": spec}, name="R5-unit",
                version=VERSION, context={"full_config": config, "data": data, "feats": feats, "ref": ref,
                                          "progress": progress})


def _run_units(pairs: list[tuple[dict, int]], config: dict, data: dict, feats, ref: dict,
               progress: bool) -> list[dict]:
    """The units of ``(spec, seed)`` pairs on the current executor, through :class:`_UnitStore`."""
    tasks = [_unit_task(spec, config, data, feats, ref, seed, progress) for spec, seed in pairs]
    return run_tasks(tasks, store=_UnitStore(config), progress=progress, desc=f"{CLAIM} units")


def run_unit(spec: dict, config: dict, data: dict, feats, ref: dict, seed: int, progress: bool) -> dict:
    """Train and score one (seed, model), through the unit store (see :class:`_UnitStore`)."""
    return _run_units([(spec, seed)], config, data, feats, ref, progress)[0]


def _train_and_score(config: dict, seed: int, spec: dict, full_config: dict, data: dict, feats, ref: dict,
                     progress: bool) -> dict:
    """Task body: train and score one unit (``config`` is the hashed part of ``full_config``)."""
    config = full_config
    res = _train(spec, config, data, seed, progress)
    row, grid = score_unit(res, config, data, feats, ref, seed)
    history = res.history.copy()
    history["method"] = spec["method"]
    if "stage" not in history:
        history["stage"] = 0
    row = {**_spec_columns(spec), "seed": seed, **row, **_stage_summary(res.history)}
    # the sample grid as 8-bit greyscale keeps a committed unit file small
    unit = {"row": row, "grid": np.round(np.clip(grid, 0, 1) * 255).astype(np.uint8),
            "history": pd.DataFrame(history.to_dict("records"))}
    return unit  # stored by run_tasks through _UnitStore


def _spec_columns(spec: dict) -> dict:
    return {"method": spec["method"], "weakening": spec.get("weakening", "none"),
            "strength": spec.get("strength", np.nan), "init": spec.get("init", "none")}


# --------------------------------------------------------------------------- the experiment


def calibration_rows(data: dict, feats, ref: dict, config: dict) -> pd.DataFrame:
    """Metrics of real-vs-real (the floor), blurred and noisy real digits against the reference images."""
    from latentdist.metrics.robust import calibration_images

    cal = config["calibration"]
    images = calibration_images(data["other"], sigmas=cal["blur_sigmas"], noise_std=cal["noise_std"],
                                seed=config["split_seed"])
    rows = []
    for name, imgs in images.items():
        m = _view_metrics("sample", data["real"], ref["real"], imgs, feats, config, config["split_seed"])
        rows.append({"calibration": name, **{k.removeprefix("sample_"): v for k, v in m.items()}})
    return pd.DataFrame(rows)


def _prepare(config: dict, progress: bool) -> tuple[dict, Any, dict, list[int], list[int]]:
    """Config check, data, feature network and reference features: everything before the first unit."""
    from latentdist.metrics import MNISTFeatures

    check_config(config)
    data = load_data(config)
    feats = MNISTFeatures.load_or_train(progress=progress)
    ref = {"real": feats.features(data["real"]), "val": feats.features(data["val"])}
    seeds = [config["seed"] + k for k in range(config["n_seeds"])]
    return data, feats, ref, seeds, seeds[: config["sweep_seeds"]]


def _units(config: dict, data: dict, feats, ref: dict, seeds: list[int], sweep_seeds: list[int],
           progress: bool, only: list[int] | None = None) -> tuple[list[dict], tuple[str, float]]:
    """Sweep units on the sweep seeds, the choice of DAE, then joint and chosen DAE on the other seeds."""
    units: list[dict] = []
    sweep = [(s, seed) for seed in sweep_seeds
             if only is None or seed in only or any(o not in sweep_seeds for o in only)
             for s in model_specs(config, seed, seeds, sweep_seeds)]
    units += _run_units(sweep, config, data, feats, ref, progress)
    if only is not None and all(s in sweep_seeds for s in only):
        return units, (None, None)
    best = choose_dae(pd.DataFrame([u["row"] for u in units]))
    later = [(s, seed) for seed in seeds[len(sweep_seeds):] if only is None or seed in only
             for s in ({"method": "joint"}, _chosen_spec(best))]
    units += _run_units(later, config, data, feats, ref, progress)
    return units, best


def run_seed(index: int, mode: str = "full", *, progress: bool = True, **overrides: Any) -> pd.DataFrame:
    """Train and cache the units of seed ``seed + index`` only (a full run done seed by seed).

    A sweep seed trains its sweep; a later seed needs the sweep seeds' units for the choice of DAE (taken
    from the cache, computed if missing). Rerunning after an interruption redoes only unfinished units;
    afterwards ``latentdist repro R5 --full`` assembles everything from the cache.
    """
    from latentdist.experiments.config import get_config

    config = get_config(CLAIM, mode, **overrides)
    if not isinstance(index, int) or not 0 <= index < config["n_seeds"]:
        raise ValueError(f"index must be an int in [0, n_seeds={config['n_seeds']}), got {index!r}")
    data, feats, ref, seeds, sweep_seeds = _prepare(config, progress)
    units, _ = _units(config, data, feats, ref, seeds, sweep_seeds, progress, only=[seeds[index]])
    return pd.DataFrame([u["row"] for u in units if u["row"]["seed"] == seeds[index]])


def compute(config: dict, *, progress: bool = True) -> ExperimentResult:
    """Check the config, then train and score every unit; see the module docstring."""
    data, feats, ref, seeds, sweep_seeds = _prepare(config, progress)
    units, best = _units(config, data, feats, ref, seeds, sweep_seeds, progress)
    table = pd.DataFrame([u["row"] for u in units])
    calib = calibration_rows(data, feats, ref, config)
    summary = summarise(table, calib, best)
    grids, curves = {}, []
    first = seeds[0]
    for u in units:
        r = u["row"]
        headline = r["method"] == "joint" or (r["weakening"], r["strength"], r["init"]) == (*best, "fresh")
        if r["seed"] == first and headline:
            grids[r["method"]] = u["grid"]
            curves.append(u["history"].assign(model=r["method"]))
    extras = {"grids": grids, "curves": pd.concat(curves, ignore_index=True), "calibration": calib}
    return ExperimentResult(CLAIM, table, summary, extras=extras)


def _stored(config: dict, pairs: list[tuple[int, dict]]) -> tuple[list[dict], int]:
    """Rows of the stored units among ``(seed, spec)`` pairs, and how many are not stored."""
    units = [_load_unit(config, _unit_key(config, seed, spec)) for seed, spec in pairs]
    return [u["row"] for u in units if u is not None], sum(u is None for u in units)


def _sweep_pairs(config: dict) -> list[tuple[int, dict]]:
    seeds = [config["seed"] + k for k in range(config["n_seeds"])]
    sweep_seeds = seeds[: config["sweep_seeds"]]
    return [(seed, spec) for seed in sweep_seeds for spec in model_specs(config, seed, seeds, sweep_seeds)]


def _chosen_spec(best: tuple[str, float]) -> dict:
    return {"method": "dae", "weakening": best[0], "strength": best[1], "init": "fresh"}


def stored_rows(mode: str = "full", **overrides: Any) -> tuple[pd.DataFrame, int]:
    """The result rows of the R5 units already stored for this configuration (nothing is trained) and how
    many planned units are still missing: where a resumable full run stands.

    Planned: the sweep seeds' sweeps, then joint and chosen DAE on each other headline seed (those two are
    counted missing until the sweep is complete, since the choice needs it).
    """
    from latentdist.experiments.config import get_config

    config = get_config(CLAIM, mode, **overrides)
    rows, missing = _stored(config, _sweep_pairs(config))
    later = [config["seed"] + k for k in range(config["sweep_seeds"], config["n_seeds"])]
    if missing:
        return pd.DataFrame(rows), missing + 2 * len(later)
    chosen = _chosen_spec(choose_dae(pd.DataFrame(rows)))
    more, missing = _stored(config, [(seed, s) for seed in later for s in ({"method": "joint"}, chosen)])
    return pd.DataFrame(rows + more), missing


def validation_choice(mode: str = "full", **overrides: Any) -> tuple[str, float]:
    """R5's validation choice of weakening, read from the stored sweep units without training anything.

    Used by R7 so that its DAE is the one R5 chose. Raises ValueError (with how many sweep units are there
    and the command that makes the rest) while R5's sweep for this configuration is incomplete.
    """
    from latentdist.experiments.config import get_config

    config = get_config(CLAIM, mode, **overrides)
    rows, missing = _stored(config, [(seed, spec) for seed, spec in _sweep_pairs(config)
                                     if spec["method"] == "dae" and spec["init"] == "fresh"])
    if missing:
        where = config["unit_dir"] or "the cache"
        raise ValueError(f"R5's {mode} sweep is incomplete ({len(rows)} of {len(rows) + missing} units found "
                         f"in {where}); run `latentdist repro --{mode} --only R5` first, or give the "
                         "weakening explicitly")
    return choose_dae(pd.DataFrame(rows))


def choose_dae(table: pd.DataFrame) -> tuple[str, float]:
    """The (weakening, strength) with the lowest mean validation sample FID over the sweep seeds."""
    dae = table[(table["method"] == "dae") & (table["init"] == "fresh")]
    if dae.empty:
        raise ValueError("table has no DAE sweep rows to choose from")
    means = dae.groupby(["weakening", "strength"])["val_sample_fid"].mean()
    kind, strength = means.idxmin()
    return str(kind), float(strength)


def headline_table(table: pd.DataFrame, best: tuple[str, float]) -> pd.DataFrame:
    """Joint rows and the chosen DAE's rows (fresh stage-2 decoder), one per (method, seed)."""
    joint = table[table["method"] == "joint"]
    dae = table[(table["method"] == "dae") & (table["weakening"] == best[0]) & (table["strength"] == best[1])
                & (table["init"] == "fresh")]
    return pd.concat([joint, dae], ignore_index=True)


def verdict(table: pd.DataFrame) -> Verdict:
    """R5's verdict from its result table: the DAE chosen on validation against the joint AE, paired by
    seed (rule in :mod:`latentdist.experiments.r5_stats`)."""
    head = headline_table(table, choose_dae(table))
    if head["method"].nunique() < 2:
        return Verdict("not reproduced", ("no paired joint/DAE rows",))
    detail = paired_verdict(head)
    return Verdict(detail["status"], tuple(detail["reasons"]))


def _ms(s: pd.Series) -> dict:
    return {"mean": float(s.mean()), "sd": float(s.std(ddof=1)) if len(s) > 1 else float("nan"), "n": len(s)}


def summarise(table: pd.DataFrame, calib: pd.DataFrame, best: tuple[str, float]) -> dict:
    """Headline means/sds, paired differences with CIs, sweep means, calibration, headroom and verdict."""
    head = headline_table(table, best)
    floor = float(calib.loc[calib["calibration"] == "real", "fid"].iloc[0])
    out: dict[str, Any] = {"seeds": sorted(int(s) for s in head["seed"].unique()),
                           "chosen_dae": {"weakening": best[0], "strength": best[1],
                                          "chosen_on": "mean validation sample FID over the sweep seeds"},
                           "fid_floor": floor}
    for method in ("joint", "dae"):
        rows = head[head["method"] == method]
        out[method] = {m: _ms(rows[m]) for m in PAIRED_METRICS if m in rows}
    if head["method"].nunique() == 2:
        out["paired_dae_minus_joint"] = {m: paired_summary(paired_differences(head, m))
                                         for m in PAIRED_METRICS}
        detail = paired_verdict(head)
        out["verdict"] = {"status": detail["status"], "reasons": detail["reasons"]}
        out["verdict_detail"] = detail
    joint_recon = out["joint"]["recon_fid"]["mean"]
    sw2_floor = float(calib.loc[calib["calibration"] == "real", "sw2_pixels"].iloc[0])
    joint_sw2 = float(head.loc[head["method"] == "joint", "recon_sw2_pixels"].mean())
    # the check is on FID; the pixel-space ratio is reported beside it because FID punishes blur
    out["headroom"] = {"joint_recon_fid_over_floor": joint_recon / floor if floor > 0 else float("nan"),
                       "within_3x_floor": bool(joint_recon <= 3 * floor),
                       "joint_recon_sw2_pixels_over_floor":
                           joint_sw2 / sw2_floor if sw2_floor > 0 else float("nan")}
    sweep = table[(table["method"] == "dae")].groupby(["weakening", "strength", "init"])
    out["sweep"] = {f"{k[0]}={k[1]:g} ({k[2]})": {m: float(v) for m, v in g[
        ["val_sample_fid", "sample_fid", "recon_fid", "prior_gap", "latent_dg"]].mean().items()}
        for k, g in sweep}
    cols = ["fid", "kid", "sw2_features", "sw2_pixels", "mmd_pixels"]
    out["calibration"] = calib.set_index("calibration")[cols].to_dict("index")
    return out


def plot(result: ExperimentResult, out_dir: str | Path) -> list[Path]:
    """R5 figures: trade-off curves, sample grids, training curves, paired differences."""
    from latentdist.experiments.r5_plots import plot_all

    return plot_all(result, out_dir)


def run(mode: str | None = None, **kwargs) -> pd.DataFrame:
    """Run R5 (cached) and return its tidy table."""
    from latentdist.experiments.runner import run_experiment

    return run_experiment(CLAIM, mode, **kwargs).table
