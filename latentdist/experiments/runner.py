"""Run experiments R1–R6: cache lookup, computation, figures and numbers.

Each claim lives in its own module (``r1_distance`` … ``r6_baselines``) exposing ``CLAIM``, ``TITLE``,
``VERSION`` (bumped whenever the computation changes, so stale cache entries are not reused),
``compute(config, *, progress) -> ExperimentResult`` and ``plot(result, out_dir) -> list[Path]``.
"""

from __future__ import annotations

import importlib
import os
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from latentdist._io import unwritable_reason
from latentdist._validation import check_option
from latentdist.experiments import cache
from latentdist.experiments.config import CLAIMS, MODES, default_out_dir, get_config
from latentdist.experiments.io import save_json, save_table
from latentdist.experiments.result import ExperimentResult

__all__ = ["MODULES", "experiment_module", "run_experiment", "run_all", "require_mnist", "resolve_mode",
           "resolve_out_dir"]

MODULES = {
    "R1": "r1_distance",
    "R2": "r2_complexity",
    "R3": "r3_optimal",
    "R4": "r4_gan",
    "R5": "r5_dae",
    "R6": "r6_baselines",
    "R7": "r7_peers",
}


def experiment_module(claim: str) -> ModuleType:
    """The module implementing ``claim`` (imported lazily: R5 pulls in the MNIST stack)."""
    check_option(claim, "claim", CLAIMS)
    return importlib.import_module(f"latentdist.experiments.{MODULES[claim]}")


def resolve_mode(mode: str | None = None) -> str:
    """``mode``, else ``$LATENTDIST_MODE``, else ``'quick'``; validated."""
    mode = mode or os.environ.get("LATENTDIST_MODE") or "quick"
    return check_option(mode, "mode", MODES)


def resolve_out_dir(mode: str, out: str | os.PathLike | None = None) -> Path:
    """``out``, else ``$LATENTDIST_FIGURES``, else ``figures/quick`` (quick) or ``figures`` (full)."""
    return Path(out or os.environ.get("LATENTDIST_FIGURES") or default_out_dir(mode))


def run_experiment(
    claim: str,
    mode: str | None = None,
    *,
    out: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool = True,
    write: bool = True,
    executor: Any = None,
    **overrides: Any,
) -> ExperimentResult:
    """Run one claim's experiment, reusing a cached result for an identical configuration.

    Parameters
    ----------
    claim : {'R1', ..., 'R6'}
    mode : {'quick', 'full'}, optional
        Defaults to ``$LATENTDIST_MODE`` or ``'quick'``.
    out : path, optional
        Where figures and numbers go; defaults as in :func:`resolve_out_dir`.
    use_cache : bool
        ``False`` recomputes and overwrites the cache entry.
    progress : bool
        Progress bars of the library calls.
    write : bool
        Write figures (``<claim>_*.png/.pdf``) and numbers (``<claim>.csv``, ``<claim>.json``).
    executor : latentdist.tasks.Executor, optional
        Where the claim's tasks run (serial by default; see :func:`latentdist.tasks.make_executor`).
    **overrides
        Configuration overrides, see :func:`latentdist.experiments.config.get_config`.

    Returns
    -------
    ExperimentResult
        ``.table`` is the tidy DataFrame.

    Warns
    -----
    RuntimeWarning
        Once, *before* computing, when the cache (``$LATENTDIST_CACHE``, else
        ``$XDG_CACHE_HOME/latentdist`` or ``~/.cache/latentdist``) cannot be written: the run then
        proceeds without caching and still writes its figures and numbers, so no work is lost. Also
        when a cached entry fails its integrity check; it is recomputed and overwritten.

    Raises
    ------
    ValueError
        Before computing, when ``write`` and the output folder cannot be written.

    Examples
    --------
    >>> res = run_experiment("R1", "quick", write=False)  # doctest: +SKIP
    >>> res.table.columns[:3].tolist()  # doctest: +SKIP
    """
    mode = resolve_mode(mode)
    module = experiment_module(claim)
    config = get_config(claim, mode, **overrides)
    if write:
        _check_out_dir(resolve_out_dir(mode, out))
    return _run_one(claim, mode, module, config, out=out, use_cache=use_cache, progress=progress,
                    write=write, can_store=_cache_writable(), executor=executor)


def _check_out_dir(out_dir: Path) -> None:
    """Refuse an output folder that cannot be written before anything is computed."""
    problem = unwritable_reason(out_dir)
    if problem is not None:
        raise ValueError(f"out (or $LATENTDIST_FIGURES): the output folder {problem}; pass a writable folder")


def _cache_writable() -> bool:
    """Check the cache before any computing; warn once (naming it and LATENTDIST_CACHE) if unusable."""
    problem = cache.unwritable()
    if problem is not None:
        warnings.warn(f"{problem}; proceeding without caching (figures and numbers are still written)",
                      RuntimeWarning, stacklevel=3)
    return problem is None


def _run_one(claim: str, mode: str, module: ModuleType, config: dict, *, out: str | os.PathLike | None,
             use_cache: bool, progress: bool, write: bool, can_store: bool,
             executor: Any = None) -> ExperimentResult:
    """Cache lookup, computation (stored only when ``can_store``; its tasks on ``executor``) and output of
    one claim."""
    from latentdist.tasks import TASK_LOG, use_executor

    key = cache.config_hash(claim, config, module.VERSION)
    result = cache.load(claim, key) if use_cache else None
    if result is not None:
        result.cached = True
    else:
        start, first_task = time.perf_counter(), len(TASK_LOG)
        with use_executor(executor):
            result = module.compute(config, progress=progress)
        result.seconds = time.perf_counter() - start
        result.tasks = TASK_LOG[first_task:]  # name and seconds of each task computed (not cached) now
        result.claim, result.config, result.key, result.cached = claim, config, key, False
        if can_store:
            try:
                cache.store(claim, key, result)
            except OSError as exc:  # became unwritable mid-run (disk full, ...): keep the result
                warnings.warn(f"could not cache the {claim} result at {cache.cache_path(claim, key)} "
                              f"({exc}); set LATENTDIST_CACHE to a writable directory", RuntimeWarning,
                              stacklevel=3)
    if write:
        out_dir = resolve_out_dir(mode, out)
        save_table(result.table, out_dir, claim)
        files = [str(p) for p in module.plot(result, out_dir)]
        save_json(
            {"claim": claim, "title": module.TITLE, "mode": mode, "config": config, "config_hash": key,
             "seconds": result.seconds, "summary": result.summary, "figures": files},
            out_dir, claim,
        )
    return result


def require_mnist(claims: list[str] | tuple[str, ...], *, progress: bool = True) -> None:
    """Make sure MNIST is on disk (fetching it) when one of ``claims`` declares ``NEEDS_MNIST = True``.

    Called before anything is computed, so a machine without MNIST and without a reachable mirror stops
    within seconds rather than after the claims that do not need it.

    Raises
    ------
    latentdist.data.MNISTUnavailableError
        Naming the claims that need MNIST, where it was looked for, what to set, and how to run without it.
    """
    need = [c for c in claims if getattr(experiment_module(c), "NEEDS_MNIST", False)]
    if not need:
        return
    from latentdist.data.mnist import MNISTUnavailableError, ensure_mnist

    try:
        ensure_mnist(progress=progress)
    except MNISTUnavailableError as exc:
        verb = "needs" if len(need) == 1 else "need"
        raise MNISTUnavailableError(f"{', '.join(need)} {verb} MNIST; nothing was computed.\n{exc}") from None


def run_all(
    claims: list[str] | tuple[str, ...] | None = None,
    mode: str | None = None,
    *,
    out: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool = True,
    log: Any = None,
    executor: Any = None,
) -> dict[str, ExperimentResult]:
    """Run several claims in order and write ``repro_summary.json`` (seconds per claim, total).

    ``log`` is an optional callable taking one line of text (the CLI passes ``print``). An unwritable
    cache is handled as in :func:`run_experiment`, with a single warning for the whole run. Claims that
    need MNIST get it first (:func:`require_mnist`), before anything is computed. ``executor`` (a
    :class:`latentdist.tasks.Executor`) runs the claims' tasks; the summary lists each computed task's
    seconds.
    """
    mode = resolve_mode(mode)
    claims = list(claims or CLAIMS)
    for c in claims:
        check_option(c, "claim", CLAIMS)
    require_mnist(claims, progress=progress)
    out_dir = resolve_out_dir(mode, out)
    _check_out_dir(out_dir)
    can_store = _cache_writable()
    results: dict[str, ExperimentResult] = {}
    start = time.perf_counter()
    for claim in claims:
        t0 = time.perf_counter()
        module = experiment_module(claim)
        res = _run_one(claim, mode, module, get_config(claim, mode), out=out_dir, use_cache=use_cache,
                       progress=progress, write=True, can_store=can_store, executor=executor)
        results[claim] = res
        if log is not None:
            how = "cached" if res.cached else "computed"
            log(f"{claim} {experiment_module(claim).TITLE}: {how} in {time.perf_counter() - t0:.1f}s "
                f"(computation {res.seconds:.1f}s) -> {out_dir}")
    total = time.perf_counter() - start
    save_json(
        {"mode": mode, "claims": claims, "wall_seconds": total,
         "compute_seconds": {c: r.seconds for c, r in results.items()},
         "cached": {c: r.cached for c, r in results.items()},
         "tasks": {c: getattr(r, "tasks", []) for c, r in results.items()}},
        out_dir, "repro_summary",
    )
    return results
