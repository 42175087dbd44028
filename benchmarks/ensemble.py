"""Benchmark: one batched ensemble against a sequential loop of single fits, and a timed profile.

1. 16 small MLP fits (depth 2) on a 2-D toy (8-mode ring, n = 2000), same steps, same batch size, same
   seeds: ``fit_ensemble(all 16)`` against ``for each: fit_ensemble([one])``. The sequential loop runs
   exactly the same code with B = 1, so the ratio is the gain of batching. Two configurations:
   - restarts: 16 restarts of one width (``--width``, default 16), the estimator's ``n_restarts`` use;
   - capacities: widths 4, 8, 16, 32, 64 (x3) and 16, a profile's use. They are zero-padded to width
     64, so every member pays for the widest one and the ratio is lower.
2. ``complexity_profile`` of 6 MLP widths x 3 restarts with w2 on the same toy at n = 2000, end to end
   (split, noise floor, fits, selection and held-out evaluation).

Wall-clock and process CPU time are both printed: on a shared machine the CPU-time ratio is the less
load-dependent figure. ``--ot-threads`` sets ``latentdist.distances.minibatch.OT_THREADS`` (threads for the
exact per-member assignment problems of w1/w2; default: the usable cores).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ensemble.py [--distance w2] [--config both]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

import latentdist.distances.minibatch as ensemble_module
from latentdist.data import make_dataset
from latentdist.ensemble import fit_ensemble
from latentdist.generators import MLP
from latentdist.latents import Gaussian
from latentdist.profile import complexity_profile

CAPACITY_WIDTHS = [4, 8, 16, 32, 64, 4, 8, 16, 32, 64, 4, 8, 16, 32, 64, 16]


def compare(widths: list[int], label: str, x, args) -> None:
    """Time the batched fit of ``widths`` against the loop of single fits and print the ratios."""
    fams = MLP(depth=2).at(widths)
    seeds = list(range(len(fams)))
    kw = dict(steps=args.steps, batch_size=args.batch_size, progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    fit_ensemble(fams, seeds, Gaussian(2), x, args.distance, **kw)
    batched, batched_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    for fam, s in zip(fams, seeds, strict=True):
        fit_ensemble([fam], [s], Gaussian(2), x, args.distance, **kw)
    sequential, sequential_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"16 MLP fits ({label}), {args.distance}, {args.steps} steps, batch {args.batch_size}, "
          f"OT threads {ensemble_module._lsa_workers()}: wall batched {batched:.2f} s, sequential "
          f"{sequential:.2f} s, speed-up {sequential / batched:.2f}x; CPU batched {batched_cpu:.1f} s, "
          f"sequential {sequential_cpu:.1f} s, ratio {sequential_cpu / batched_cpu:.2f}x; "
          f"load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distance", default="w2")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--config", choices=["restarts", "capacities", "both"], default="both")
    parser.add_argument("--width", type=int, default=16, help="width of the restarts configuration")
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--ot-threads", type=int, default=None)
    args = parser.parse_args()
    ensemble_module.OT_THREADS = args.ot_threads

    ds = make_dataset("gaussian_mixture_ring", 2000, seed=0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {platform.processor() or 'cpu'}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    fit_ensemble(MLP(depth=2).at([4, 8]), [0, 1], Gaussian(2), ds.x, args.distance, steps=3,
                 progress=False)  # warm-up
    if args.config in ("restarts", "both"):
        compare([args.width] * 16, f"restarts: width {args.width}", ds.x, args)
    if args.config in ("capacities", "both"):
        compare(CAPACITY_WIDTHS, "capacities: widths 4-64, padded to 64", ds.x, args)

    if not args.skip_profile:
        t0 = time.perf_counter()
        prof = complexity_profile({"gaussian": Gaussian(2)}, ds, MLP(depth=2).at([2, 4, 8, 16, 32, 64]), "w2",
                                  n_restarts=3, progress=False)
        total = time.perf_counter() - t0
        print(prof[["capacity", "value", "std", "noise_floor", "noise_floor_std"]].to_string(index=False))
        print(f"profile 6 capacities x 3 restarts, w2, n = 2000, default steps: {total:.1f} s "
              f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
