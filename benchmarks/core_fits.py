"""Benchmark: process CPU time of the fits that share the training core (issue 16).

Ensembles (w2, energy), a profile, the optimal-latent search (particles, encoder), the flow prior, the neural
critic and the max-sliced ascent, each once. On a shared machine process CPU time is the less
load-dependent figure; compare trees by running this file under each tree's ``PYTHONPATH``, interleaved.

Run:  OMP_NUM_THREADS=1 LATENTDIST_PROGRESS=0 .venv/bin/python benchmarks/core_fits.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

from latentdist.data import make_dataset
from latentdist.distances import get_distance
from latentdist.ensemble import fit_ensemble
from latentdist.generators import MLP
from latentdist.latents import Gaussian
from latentdist.optimal import optimal_latent
from latentdist.profile import complexity_profile
from latentdist.train.priors import FlowPrior


def timed(label: str, fn: Callable[[], object]) -> None:
    """Print the process CPU and wall seconds of ``fn()``."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    print(f"{label}: cpu {time.process_time() - c0:.2f} s, wall {time.perf_counter() - w0:.2f} s", flush=True)


def main() -> None:
    ds = make_dataset("gaussian_mixture_ring", 2000, seed=0)
    x, fams = ds.x, MLP(depth=2).at([16] * 16)
    fit_ensemble(MLP(depth=2).at([4, 8]), [0, 1], Gaussian(2), x, "w2", steps=3, progress=False)  # warm-up
    for dist in ("w2", "energy"):
        timed(f"ensemble restarts 16 x w16 {dist} 300 steps",
              lambda d=dist: fit_ensemble(fams, range(16), Gaussian(2), x, d, steps=300, progress=False))
    timed("profile 6 widths x 3 restarts w2 500 steps",
          lambda: complexity_profile({"g": Gaussian(2)}, ds, MLP(depth=2).at([2, 4, 8, 16, 32, 64]), "w2",
                                     n_restarts=3, progress=False))
    for kind in ("particles", "encoder"):
        timed(f"optimal_latent {kind} 3 restarts 300 steps",
              lambda k=kind: optimal_latent(x, 1, MLP(width=16), "w2", parameterization=k, steps=300,
                                            n_restarts=3, distance_steps=50, distance_restarts=1,
                                            progress=False))
    timed("flow prior 300 steps", lambda: FlowPrior(n_layers=4, hidden=32, steps=300, progress=False).fit(x))
    timed("critic gp 300 steps", lambda: get_distance("critic", steps=300, progress=False)(x, x[::-1] + 0.3))
    timed("max_sliced x20", lambda: [get_distance("max_sliced")(x, x + 0.1) for _ in range(20)])


if __name__ == "__main__":
    main()
