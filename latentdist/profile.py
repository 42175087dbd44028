"""Capacity profiles c -> D_{G_c}(P_z, P_x), ε-complexity and their plot (docs/theory.md §3, R2).

``complexity_profile`` estimates D for every (latent, capacity) pair. For one latent, all capacities and
restarts that share a family shape are fitted as ONE batched ensemble (:mod:`latentdist.ensemble`):
MLP widths are padded to the largest width and masked, LipschitzMLP bounds become per-member input
scales. Every capacity uses the same data split, the same noise floor and the same restart seeds
(common random numbers), so differences along the profile are not split noise.

``eps_complexity`` reads off C_eps(P_z) = min{c : D_{G_c}(P_z, P_x) <= eps}.

Example
-------
>>> import numpy as np
>>> from latentdist.generators import MLP
>>> from latentdist.latents import Gaussian
>>> x = np.random.default_rng(0).normal(size=(400, 2))
>>> prof = complexity_profile({"gauss": Gaussian(2)}, x, MLP(depth=1).at([2, 8]), steps=20, progress=False)
>>> list(prof.columns)[:4]
['latent', 'family', 'capacity', 'value']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from latentdist._progress import progress_bar
from latentdist._seeding import SeedLike
from latentdist._validation import ArrayLike, check_scalar
from latentdist.estimator import estimate_families, make_split
from latentdist.generators import Family
from latentdist.latents import Latent
from latentdist.settings import FitSettings, check_family

__all__ = ["PROFILE_COLUMNS", "complexity_profile", "eps_complexity", "plot_profile"]

PROFILE_COLUMNS = [
    "latent", "family", "capacity", "value", "std", "noise_floor", "noise_floor_std", "fit_time",
]


def _named_latents(latents: Any) -> dict[str, Latent]:
    if isinstance(latents, Latent):
        latents = [latents]
    if isinstance(latents, Mapping):
        items = list(latents.items())
    elif isinstance(latents, Sequence) and not isinstance(latents, str):
        items = []
        for lat in latents:
            name = getattr(lat, "name", type(lat).__name__)
            base, k = name, 2
            while any(name == existing for existing, _ in items):
                name, k = f"{base}_{k}", k + 1
            items.append((name, lat))
    else:
        raise TypeError(f"latents must be a dict name -> Latent, a list of Latents or a Latent, got "
                        f"{type(latents).__name__}")
    if not items:
        raise ValueError("latents must contain at least one latent")
    for name, lat in items:
        if not isinstance(lat, Latent):
            raise TypeError(f"latents[{name!r}] must be a Latent, got {type(lat).__name__}")
    return {str(k): v for k, v in items}


def complexity_profile(
    latents: Mapping[str, Latent] | Sequence[Latent] | Latent,
    data: ArrayLike | Any,
    families: Sequence[Family] | Family,
    distance: str | Callable = "w2",
    *,
    n_restarts: int = 3,
    steps: int = 500,
    batch_size: int = 64,
    lr: float = 1e-2,
    holdout: float = 0.2,
    n_eval: int | None = None,
    n_floor: int = 10,
    train_distance: str | Callable | None = None,
    train_kwargs: dict | None = None,
    seed: SeedLike = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    distance_kwargs: dict | None = None,
    return_results: bool = False,
    executor: Any = None,
) -> pd.DataFrame | tuple[pd.DataFrame, dict]:
    r"""Capacity profile: :math:`D_{G_c,d}(P_z, P_x)` for every latent and every capacity c.

    Each row is one :func:`~latentdist.estimator.latent_data_distance` estimate (same protocol: train /
    held-out split, restarts selected by training objective, held-out evaluation, noise floor), but all
    capacities x restarts of one family shape are fitted at once as a batched ensemble.
    By P2 the population profile is non-increasing in c; the estimated one is, up to ``std``.

    Parameters
    ----------
    latents : dict name -> Latent, list of Latent, or Latent
        Latents to compare (compare them at one stated normalisation, see ``latents.normalize``).
    data : array (n, D) or object with ``.x``
    families : sequence of Family (e.g. ``MLP(depth=2).at([4, 8, 16])``) or one Family
    distance : str or callable
        Evaluation distance (registry name).
    n_restarts, steps, batch_size, lr, holdout, n_eval, n_floor, train_distance, train_kwargs, seed,
    device, progress, distance_kwargs
        As in :func:`~latentdist.estimator.latent_data_distance`; ``seed`` gives every latent the same
        split, floor and restart seeds.
    return_results : bool
        Also return the full results, a dict ``(latent name, row index) -> LatentDistanceResult``.
    executor : latentdist.tasks.Executor, optional
        Fit the latents as parallel tasks (one per latent) on this executor, e.g.
        ``ProcessExecutor(workers=2)``; the numbers are the same as without it.

    Returns
    -------
    pandas.DataFrame
        Columns ``latent, family, capacity, value, std, noise_floor, noise_floor_std, fit_time`` plus
        ``selected_restart``; one row per (latent, family), in input order.

    Examples
    --------
    >>> import numpy as np
    >>> from latentdist.generators import MLP
    >>> from latentdist.latents import Gaussian, Uniform
    >>> x = np.random.default_rng(0).normal(size=(400, 2))
    >>> p = complexity_profile([Gaussian(2), Uniform(2)], x, MLP(depth=1).at([2, 4]), steps=10,
    ...                        n_restarts=2, progress=False)
    >>> p.shape[0]
    4
    """
    named = _named_latents(latents)
    if isinstance(families, Family):
        families = [families]
    families = [check_family(f, f"families[{i}]") for i, f in enumerate(families)]
    if not families:
        raise ValueError("families must contain at least one Family")
    settings = FitSettings(distance=distance, distance_kwargs=distance_kwargs, train_distance=train_distance,
                           train_kwargs=train_kwargs, n_restarts=n_restarts, steps=steps,
                           batch_size=batch_size, lr=lr, holdout=holdout, n_eval=n_eval, n_floor=n_floor,
                           device=device, progress=progress)
    split = make_split(data, settings, seed)
    rows, results = [], {}
    if executor is None:
        fits = [estimate_families(lat, split, families, settings)
                for lat in progress_bar(named.values(), progress=progress and len(named) > 1, desc="latents")]
    else:  # one task per latent: every latent's fit depends only on the shared split and seeds
        from latentdist.tasks import Task, run_tasks

        tasks = [Task(estimate_families, {}, name=f"profile-{name}",
                      context={"latent": lat, "split": split, "families": families, "settings": settings})
                 for name, lat in named.items()]
        fits = run_tasks(tasks, executor=executor, progress=progress and len(named) > 1, desc="latents")
    for name, res in zip(named, fits, strict=True):
        for fam, r in zip(families, res, strict=True):
            results[(name, len(rows))] = r
            rows.append({"latent": name, "family": fam.label(), "capacity": float(fam.capacity),
                         "value": r.value, "std": r.std, "noise_floor": r.noise_floor,
                         "noise_floor_std": r.noise_floor_std, "fit_time": r.fit_time,
                         "selected_restart": r.selected})
    frame = pd.DataFrame(rows, columns=[*PROFILE_COLUMNS, "selected_restart"])
    return (frame, results) if return_results else frame


def _check_profile(profile: Any) -> pd.DataFrame:
    if not isinstance(profile, pd.DataFrame):
        raise TypeError(
            f"profile must be the DataFrame returned by complexity_profile, got {type(profile).__name__}"
        )
    missing = [c for c in ("latent", "capacity", "value") if c not in profile.columns]
    if missing:
        raise ValueError(f"profile is missing columns {missing}; pass the output of complexity_profile")
    return profile


def eps_complexity(profile: pd.DataFrame, eps: float, *, by: str = "latent") -> pd.Series:
    r"""ε-complexity :math:`C_\varepsilon(P_z) = \min\{c : \hat D_{G_c}(P_z, P_x) \le \varepsilon\}`.

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`complexity_profile`.
    eps : float, > 0
    by : str
        Column naming the latent (or any grouping column).

    Returns
    -------
    pandas.Series
        Minimal capacity per latent (float); ``inf`` where no capacity reaches ``eps``.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"latent": ["a", "a", "b"], "capacity": [1, 2, 1], "value": [0.5, 0.1, 0.9]})
    >>> eps_complexity(p, 0.2).to_dict()
    {'a': 2.0, 'b': inf}
    """
    profile = _check_profile(profile)
    eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
    if by not in profile.columns:
        raise ValueError(f"by must name a column of profile, got {by!r}")

    def first_reached(group: pd.DataFrame) -> float:
        reached = group.loc[group["value"] <= eps, "capacity"]
        return float(reached.min()) if len(reached) else float("inf")

    out = {key: first_reached(group) for key, group in profile.groupby(by, sort=False)}
    return pd.Series(out, name=f"eps_complexity(eps={eps:g})", dtype=float).rename_axis(by)


def plot_profile(profile: pd.DataFrame, *, ax: Any = None, eps: float | None = None, logx: bool = True,
                 title: str | None = None):
    """Plot D against capacity: one curve per latent, error bars = restart spread, noise floor as a band.

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`complexity_profile`.
    ax : matplotlib Axes, optional
    eps : float, optional
        Draws the ε level as a horizontal dashed line.
    logx : bool
        Logarithmic capacity axis.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"latent": ["a", "a"], "capacity": [1, 2], "value": [0.5, 0.1], "std": [0.1, 0.0],
    ...                   "noise_floor": [0.05, 0.05], "noise_floor_std": [0.01, 0.01]})
    >>> fig = plot_profile(p, eps=0.2)
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    profile = _check_profile(profile)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4))
    else:
        fig = ax.figure
    palette = sns.color_palette("colorblind", n_colors=max(1, profile["latent"].nunique()))
    for color, (name, group) in zip(palette, profile.groupby("latent", sort=False), strict=False):
        group = group.sort_values("capacity")
        err = group["std"].fillna(0.0) if "std" in group else None
        ax.errorbar(group["capacity"], group["value"], yerr=err, marker="o", capsize=3, color=color,
                    label=str(name))
    if {"noise_floor", "noise_floor_std"} <= set(profile.columns):
        floor = profile.groupby("capacity")[["noise_floor", "noise_floor_std"]].mean().sort_index()
        lo = floor["noise_floor"] - 2 * floor["noise_floor_std"]
        hi = floor["noise_floor"] + 2 * floor["noise_floor_std"]
        ax.fill_between(floor.index, lo, hi, color="grey", alpha=0.25, label="noise floor ± 2 std")
        ax.plot(floor.index, floor["noise_floor"], color="grey", lw=1)
    if eps is not None:
        ax.axhline(check_scalar(eps, "eps", low=0.0, low_inclusive=False), color="k", ls="--", lw=1,
                   label=f"ε = {eps:g}")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("capacity c")
    ax.set_ylabel(r"$\hat D_{G_c}(P_z, P_x)$")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    return fig
