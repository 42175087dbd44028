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
load-dependent figure. Each configuration also prints the achieved FLOP rate of the batched fit's matmuls
(forward layers x 3 for forward + backward, plus the float64 cost matrices of the OT plans) per second of
process CPU time, as a fraction of a 2048^3 float32 ``torch.matmul``'s rate measured in the same process.
``--ot-threads`` sets ``latentdist.distances.minibatch.OT_THREADS`` (threads for the
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


def matmul_rate(size: int = 2048, repeats: int = 3) -> float:
    """FLOP/s of a ``size``^3 float32 ``torch.matmul`` per second of process CPU time (best of 3)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        c0 = time.process_time()
        torch.matmul(a, b)
        best = min(best, time.process_time() - c0)
    return 2.0 * size**3 / best


def ensemble_flops(fams, dim: int, steps: int, batch: int, distance: str) -> float:
    """Matmul FLOPs of a batched fit: 2 n in out per linear layer and member, x 3 for forward + backward
    (the input gradient and the weight gradient each cost one forward matmul), plus one 2 n^2 D float64
    cost matrix per member and step for the exact OT plans of w1/w2."""
    layer = sum(2 * batch * p.shape[0] * p.shape[1] for fam in fams
                for p in fam.build(dim, dim, seed=0).parameters() if p.ndim == 2)
    plan = 2 * batch * batch * dim * len(fams) if distance in ("w1", "w2") else 0
    return float(steps) * (3 * layer + plan)


def compare(widths: list[int], label: str, x, args, peak: float) -> None:
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
    # Padded members compute at the widest width: count what the batched matmuls actually do.
    padded = MLP(depth=2).at([max(widths)] * len(widths))
    rate = ensemble_flops(padded, x.shape[1], args.steps, args.batch_size, args.distance) / batched_cpu
    print(f"  batched matmul rate {rate / 1e9:.3f} GFLOP/s of CPU time = {100 * rate / peak:.2f}% of a "
          f"2048^3 float32 matmul ({peak / 1e9:.1f} GFLOP/s, same process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distance", default="w2")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--config", choices=["restarts", "capacities", "both", "none"], default="both",
                        help="comparisons to run ('none': only the profile)")
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
    peak = matmul_rate()
    if args.config in ("restarts", "both"):
        compare([args.width] * 16, f"restarts: width {args.width}", ds.x, args, peak)
    if args.config in ("capacities", "both"):
        compare(CAPACITY_WIDTHS, "capacities: widths 4-64, padded to 64", ds.x, args, peak)

    if not args.skip_profile:
        t0, c0 = time.perf_counter(), time.process_time()
        prof = complexity_profile({"gaussian": Gaussian(2)}, ds, MLP(depth=2).at([2, 4, 8, 16, 32, 64]), "w2",
                                  n_restarts=3, progress=False)
        total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(prof[["capacity", "value", "std", "noise_floor", "noise_floor_std"]].to_string(index=False))
        print(f"profile 6 capacities x 3 restarts, w2, n = 2000, default steps: {total:.1f} s wall, "
              f"{total_cpu:.1f} s CPU (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
