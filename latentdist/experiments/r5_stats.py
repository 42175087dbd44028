"""Paired statistics and the verdict rule of R5 (DAE against joint training), as pure functions.

Every comparison is paired by seed: within one seed the joint AE and the DAE share encoder and
final-decoder initialisation, data order and evaluation images, so d_s = metric(DAE, s) - metric(joint, s)
removes the between-seed variation. For the mean of the d_s we report a percentile bootstrap 95% CI
(resampling seeds with replacement, a fixed generator seed so the numbers are reproducible) and two
paired tests: the one-sample t-test of the d_s and the exact Wilcoxon signed-rank test (with 5 seeds its
smallest two-sided p is 0.0625, so the t-test and the CI carry the decision).

The verdict is stated before any number is seen (docs/theory.md §4, paper_repro.md R5):

* ``'reproduced'``: the DAE's sample FID is lower, with the CI of d(sample FID) entirely below 0 over at
  least ``min_seeds`` = 3 paired seeds (a bootstrap over two values only spans them), *and*
  its prior gap (sample FID - recon FID) is smaller (mean d(prior gap) < 0): better samples, for the
  paper's reason;
* ``'partial'``: exactly one of the two holds;
* ``'not reproduced'``: neither holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from latentdist.experiments._common import STATUSES

__all__ = ["bootstrap_ci", "paired_summary", "paired_differences", "paired_verdict"]


def bootstrap_ci(values: Any, *, level: float = 0.95, n_boot: int = 10000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (1-D); (nan, nan) with fewer than 2 values.

    Examples
    --------
    >>> lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0])
    >>> 1.0 <= lo < 2.5 < hi <= 4.0
    True
    """
    v = np.asarray(values, dtype=float).ravel()
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite")
    if v.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def paired_summary(diffs: Any, *, seed: int = 0) -> dict[str, float]:
    """Mean, sd (ddof=1), bootstrap 95% CI, t-test and Wilcoxon p of paired differences ``diffs``."""
    d = np.asarray(diffs, dtype=float).ravel()
    lo, hi = bootstrap_ci(d, seed=seed)
    n = int(d.size)
    out = {"n": n, "mean": float(d.mean()) if n else float("nan"),
           "sd": float(d.std(ddof=1)) if n > 1 else float("nan"), "ci_low": lo, "ci_high": hi,
           "p_ttest": float("nan"), "p_wilcoxon": float("nan")}
    if n > 1 and np.ptp(d) > 0:
        out["p_ttest"] = float(stats.ttest_1samp(d, 0.0).pvalue)
    if n > 1 and np.any(d != 0):
        out["p_wilcoxon"] = float(stats.wilcoxon(d).pvalue)
    return out


def paired_differences(table: pd.DataFrame, metric: str, *, a: str = "dae", b: str = "joint") -> pd.Series:
    """Per-seed ``metric(a) - metric(b)`` from a table with columns ``method``, ``seed`` and ``metric``.

    Only seeds present for both methods are paired; each (method, seed) must appear at most once.
    """
    for col in ("method", "seed", metric):
        if col not in table:
            raise ValueError(f"table must have a {col!r} column")
    sub = table[table["method"].isin([a, b])]
    if sub.duplicated(["method", "seed"]).any():
        raise ValueError("table must have one row per (method, seed)")
    wide = sub.pivot(index="seed", columns="method", values=metric)
    if a not in wide or b not in wide:
        raise ValueError(f"table must contain rows of both methods {a!r} and {b!r}")
    return (wide[a] - wide[b]).dropna().sort_index()


def paired_verdict(table: pd.DataFrame, *, fid: str = "sample_fid", gap: str = "prior_gap",
                   min_seeds: int = 3) -> dict[str, Any]:
    """The R5 verdict from the headline table (rows: ``method`` in {'joint', 'dae'}, ``seed``, metrics).

    Returns
    -------
    dict
        ``status`` (one of ``latentdist.experiments._common.STATUSES``), ``reasons`` (the evidence, one
        line), ``samples_better`` (CI of d(sample FID) below 0), ``gap_smaller`` (mean d(prior gap) < 0)
        and the paired summaries ``sample_fid`` and ``prior_gap``.
    """
    d_fid, d_gap = paired_differences(table, fid), paired_differences(table, gap)
    s_fid, s_gap = paired_summary(d_fid), paired_summary(d_gap)
    better = bool(s_fid["n"] >= min_seeds and np.isfinite(s_fid["ci_high"]) and s_fid["ci_high"] < 0)
    smaller = bool(np.isfinite(s_gap["mean"]) and s_gap["mean"] < 0)
    word = STATUSES[0] if better and smaller else STATUSES[1] if better or smaller else STATUSES[2]
    evidence = (f"DAE - joint over {s_fid['n']} seeds: sample FID {s_fid['mean']:+.2f} "
                f"[{s_fid['ci_low']:+.2f}, {s_fid['ci_high']:+.2f}] (t-test p={s_fid['p_ttest']:.3g}), "
                f"prior gap {s_gap['mean']:+.2f} [{s_gap['ci_low']:+.2f}, {s_gap['ci_high']:+.2f}]")
    if s_fid["n"] < min_seeds:
        evidence += f"; fewer than {min_seeds} paired seeds, so no claim of better samples"
    return {"status": word, "reasons": [evidence], "samples_better": better, "gap_smaller": smaller,
            "sample_fid": s_fid, "prior_gap": s_gap}
