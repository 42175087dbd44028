"""Time and peak memory of each sample distance, against the library call it wraps.

For each estimator, n (both samples) in {1000, 5000, 20000} and D in {2, 784}: wall time, peak extra
RSS (Linux VmHWM, reset before each case through /proc/self/clear_refs; it sees torch and numpy
alike) and tracemalloc's peak for numpy allocations, and the ratio to the direct POT / GeomLoss call
run in the same process on the same data. Exact OT is skipped above n = 5000 (network simplex: O(n^3)
time, an n x n cost matrix). MMD and energy have no library counterpart (hand-written chunked sums).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/distances.py --quick
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/distances.py --n 20000 --dims 2 --only sliced mmd sinkhorn
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import ot
import torch

from latentdist.distances import energy_distance, mmd2, sinkhorn_divergence, sliced_wasserstein, wasserstein
from latentdist.distances import sinkhorn as sk


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def measure(fn: Callable[[], object], repeats: int = 1) -> tuple[float, float, float, object]:
    """(best-of-``repeats`` seconds, peak extra RSS in MB, tracemalloc peak in MB, result); extra
    repeats only for calls under a second, where the shared machine's noise dominates."""
    _reset_peak()
    base = _status("VmRSS:")
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    _, tm_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = max(_status("VmHWM:") - base, 0)
    if dt < 1.0:
        for _ in range(repeats - 1):
            t0 = time.perf_counter()
            fn()
            dt = min(dt, time.perf_counter() - t0)
    return dt, peak / 2**20, tm_peak / 2**20, out


def gpu_ratio(fn, x: np.ndarray, y: np.ndarray, cpu_seconds: float) -> dict:
    """GPU/CPU time ratio of ``fn`` on CUDA tensors (empty when no GPU: CPU results are the reference)."""
    if not torch.cuda.is_available():
        return {}
    xg, yg = torch.as_tensor(x, device="cuda"), torch.as_tensor(y, device="cuda")
    fn(xg[:100], yg[:100])  # warm-up (CUDA context, kernels)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    val = fn(xg, yg)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"gpu_seconds": round(dt, 2), "gpu_over_cpu_time": round(dt / cpu_seconds, 3),
            "gpu_value": float(val)}


def direct_calls(x: np.ndarray, y: np.ndarray, blur: float) -> dict[str, Callable[[], object] | None]:
    n, m = len(x), len(y)
    calls: dict[str, Callable[[], object] | None] = {
        "w2": lambda: ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), ot.dist(x, y),
                              numItermax=10_000_000) ** 0.5,
        "sliced": lambda: ot.sliced_wasserstein_distance(x, y, n_projections=128, p=2, seed=0),
        "mmd": None,
        "energy": None,
    }
    if n * m <= sk.LAZY_THRESHOLD:
        import torch
        from geomloss import SamplesLoss

        def geomloss_direct():
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            diam = sk._diameter(x, y)
            loss = SamplesLoss("sinkhorn", p=2, blur=blur, scaling=0.9, debias=True, backend="tensorized",
                               diameter=diam, cost=lambda u, v: sk._cost(u, v, 2.0))
            return float(loss(xt, yt))

        calls["sinkhorn"] = geomloss_direct
    else:
        def pot_lazy_direct():
            a, b = np.full(n, 1 / n), np.full(m, 1 / m)
            sched = sk._eps_schedule(sk._diameter(x, y), 2.0, blur, 0.9)
            args = (2.0, sched, 2000, 1e-7, 512)
            lazy = sk._entropic_ot_pot_lazy
            return lazy(x, y, a, b, *args) - 0.5 * lazy(x, x, a, a, *args) - 0.5 * lazy(y, y, b, b, *args)

        calls["sinkhorn"] = pot_lazy_direct
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n = 1000 only")
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 784])
    parser.add_argument("--only", nargs="+", default=["w2", "sinkhorn", "sliced", "mmd", "energy"])
    parser.add_argument("--blur", type=float, default=0.5, help="Sinkhorn blur (0.5 keeps the epsilon "
                        "schedule short enough for n = 20k on a CPU)")
    args = parser.parse_args()
    ns = [1000] if args.quick else args.n
    ours = {
        "w2": lambda x, y: wasserstein(x, y, 2),
        "sinkhorn": lambda x, y: sinkhorn_divergence(x, y, 2, args.blur),
        "sliced": lambda x, y: sliced_wasserstein(x, y, 2, 128, seed=0),
        "mmd": lambda x, y: mmd2(x, y, bandwidth=1.0),
        "energy": energy_distance,
    }
    print(f"torch threads={os.environ.get('OMP_NUM_THREADS', 'default')}  load={os.getloadavg()[0]:.1f}")
    print(f"{'estimator':9s} {'n':>6s} {'D':>4s} {'time s':>8s} {'RSS MB':>8s} {'tm MB':>7s} "
          f"{'direct s':>9s} {'ratio':>6s} {'|diff|':>8s}")
    for n in ns:
        for d in args.dims:
            rng = np.random.default_rng(0)
            x = rng.normal(size=(n, d))
            y = rng.normal(size=(n, d)) + 0.5
            direct = direct_calls(x, y, args.blur)
            for name in args.only:
                if name == "w2" and n > 5000:
                    print(f"{name:9s} {n:6d} {d:4d}  skipped (exact OT above n = 5000)")
                    continue
                t, rss, tm, val = measure(lambda name=name, x=x, y=y: ours[name](x, y), 5)
                line = f"{name:9s} {n:6d} {d:4d} {t:8.2f} {rss:8.0f} {tm:7.0f}"
                if direct.get(name) is not None:
                    t2, _, _, ref = measure(direct[name], 5)
                    line += f" {t2:9.2f} {t / t2:6.2f} {abs(float(val) - float(ref)):8.1e}"
                else:
                    line += f" {'n/a':>9s}"
                gpu = gpu_ratio(ours[name], x, y, t)  # CPU numbers stay the reference
                if gpu:
                    line += f"  gpu {gpu['gpu_seconds']:.2f} s, gpu/cpu {gpu['gpu_over_cpu_time']:.3f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
