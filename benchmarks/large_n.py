"""Large n at D = 784 with bounded memory: time and peak memory of the blocked paths, against the old
dense ones in the same process where those still run, and a GPU/CPU ratio when a GPU is present.

Cases (one per invocation, so one case's peak memory never hides another's):

- ``sinkhorn N``: ``sinkhorn_divergence(x, y, 2, blur)`` (auto -> the blocked backend above 5000^2
  cost entries: float32 costs stored under ``memory_cap``, GeomLoss's loop, fused blocked softmin);
- ``sinkhorn-accuracy N``: at an n where everything runs, the old dense float64 GeomLoss path against
  the blocked backend in float32 and in float64 (the float32 accuracy cost), with times;
- ``mmd N`` / ``sliced N``: ``mmd2`` and ``sliced_wasserstein`` with block sizes from ``memory_cap``;
  with ``--dense`` also the old one-block path (``chunk_size=n``: the n x n kernel matrix; POT's
  ``sliced_wasserstein_distance``: all projections at once) for the ratio.

Data: MNIST images (``$LATENTDIST_DATA``) flattened to D = 784, x and y disjoint draws of the 70,000
images when 2n <= 70,000; for n = 50,000, y is a disjoint-as-possible draw shifted by one pixel (MNIST
has too few images for two disjoint samples). ``--synthetic`` uses Gaussians instead.
Peak memory: the VmHWM high-water mark of the process above its RSS before the call (it sees torch
and numpy alike), reset per call, plus the process peak (``resource.getrusage``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/large_n.py sinkhorn-accuracy 2000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/large_n.py sinkhorn 20000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/large_n.py mmd 5000 --dense
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/large_n.py mmd 50000 --cap 268435456
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/large_n.py sliced 50000 --dense
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
from distances import gpu_ratio  # benchmarks/distances.py: GPU/CPU time ratio when CUDA is available
from distances import measure as _measure  # benchmarks/distances.py: time, VmHWM peak RSS, tracemalloc

from latentdist.distances import mmd2, sinkhorn_divergence, sliced_wasserstein
from latentdist.distances import sinkhorn as sk


def load(n: int, synthetic: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if synthetic:
        return rng.normal(size=(n, 784)), rng.normal(size=(n, 784)) + 0.1
    from latentdist.data import load_mnist

    pool = np.concatenate([load_mnist("train")[0], load_mnist("test")[0]]).reshape(-1, 784)
    perm = rng.permutation(len(pool))
    x = pool[perm[:n]]
    if 2 * n <= len(pool):
        y = pool[perm[n:2 * n]]
    else:  # too few images: the last n of the permutation, shifted one pixel to the right
        y = np.roll(pool[perm[-n:]].reshape(-1, 28, 28), 1, axis=2).reshape(-1, 784)
    return x.astype(np.float64), y.astype(np.float64)


def measure(fn):
    """``benchmarks/distances.measure`` plus the process CPU seconds of the call: on the shared,
    loaded machine the wall time mostly counts waiting, CPU time what a quiet core would take."""
    cpu = time.process_time()
    t, rss, tm, val = _measure(fn)
    return t, rss, tm, val, round(time.process_time() - cpu, 1)


def report(name: str, n: int, seconds: float, rss_mb: float, value: float, cpu: float, **extra) -> None:
    row = {"case": name, "n": n, "D": 784, "seconds": round(seconds, 2), "peak_extra_rss_mb": round(rss_mb),
           "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
           "cpu_seconds": cpu, "value": value, "load1": round(os.getloadavg()[0], 1), **extra}
    print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=["sinkhorn", "sinkhorn-accuracy", "mmd", "sliced"])
    parser.add_argument("n", type=int)
    parser.add_argument("--blur", type=float, default=0.05)
    parser.add_argument("--cap", type=int, default=None,
                        help="memory_cap in bytes (default: half the free RAM)")
    parser.add_argument("--dense", action="store_true", help="also run the old dense path")
    parser.add_argument("--synthetic", action="store_true")
    args = parser.parse_args()
    x, y = load(args.n, args.synthetic)
    n, cap = args.n, args.cap
    print(f"# torch threads={torch.get_num_threads()} load={os.getloadavg()} "
          f"cuda={torch.cuda.is_available()}", file=sys.stderr)

    if args.case == "sinkhorn":
        def call(u, v):
            return sinkhorn_divergence(u, v, 2, args.blur, memory_cap=cap)

        t, rss, _, val, cpu = measure(lambda: call(x, y))
        report("sinkhorn blocked float32", n, t, rss, val, cpu, **gpu_ratio(call, x, y, t))
    elif args.case == "sinkhorn-accuracy":
        def run(backend):
            return sinkhorn_divergence(x, y, 2, args.blur, backend=backend, memory_cap=cap)

        t64, rss64, _, dense, c64 = measure(lambda: run("geomloss"))
        report("sinkhorn old dense geomloss float64", n, t64, rss64, dense, c64)
        t32, rss32, _, v32, c32 = measure(lambda: run("blocked"))
        report("sinkhorn blocked float32", n, t32, rss32, v32, c32, rel_diff_vs_dense=(v32 - dense) / dense,
               dense_over_blocked_time=round(t64 / t32, 2))
        sk.BLOCKED_DTYPE = torch.float64
        tb, rssb, _, vb, cb = measure(lambda: run("blocked"))
        report("sinkhorn blocked float64", n, tb, rssb, vb, cb, rel_diff_vs_dense=(vb - dense) / dense)
    elif args.case == "mmd":
        def call(u, v):
            return mmd2(u, v, bandwidth="median", memory_cap=cap)

        t, rss, _, val, cpu = measure(lambda: call(x, y))
        extra = gpu_ratio(call, x, y, t)
        if args.dense:
            def dense():
                return mmd2(x, y, bandwidth="median", chunk_size=n, memory_cap=2**62)

            td, rssd, _, vd, cd = measure(dense)
            report("mmd2 old dense (one n x n block)", n, td, rssd, vd, cd)
            extra.update(rel_diff_vs_dense=(val - vd) / vd, dense_over_blocked_time=round(td / t, 2))
        report("mmd2 blocked", n, t, rss, val, cpu, **extra)
    else:
        def call(u, v):
            return sliced_wasserstein(u, v, 2, 128, seed=0, memory_cap=cap)

        t, rss, tm, val, cpu = measure(lambda: call(x, y))
        extra = gpu_ratio(call, x, y, t)
        if args.dense:
            import ot

            def pot():
                return float(ot.sliced_wasserstein_distance(x, y, n_projections=128, p=2, seed=0))

            td, rssd, tmd, vd, cd = measure(pot)
            report("sliced old dense (POT, all projections)", n, td, rssd, vd, cd, tracemalloc_mb=round(tmd))
            extra.update(rel_diff_vs_dense=(val - vd) / vd, dense_over_blocked_time=round(td / t, 2))
        report("sliced blocked", n, t, rss, val, cpu, tracemalloc_mb=round(tm), **extra)


if __name__ == "__main__":
    main()
