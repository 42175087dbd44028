"""Timing of ``complexity_report`` on an MNIST-sized conv decoder (latent 16 -> 1x28x28), 512 latents.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/complexity.py --threads 1 [--repeats 3] [--output linear]

Prints the median wall time of the full report and of each proxy (from the report's own timings),
plus the proxy values, so that the figures in benchmarks/README.md can be reproduced.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from latentdist.complexity import complexity_report


def _decoder(output: str, seed: int = 0) -> torch.nn.Module:
    try:
        from latentdist.generators import ConvDecoder

        return ConvDecoder(channels=32, output=output).build(16, 784, seed=seed)
    except ImportError:  # pragma: no cover - the family is part of the package
        raise SystemExit("latentdist.generators.ConvDecoder is required for this benchmark") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument(
        "--output", default="linear", choices=["linear", "sigmoid"],
        help="decoder head; 'sigmoid' is smooth, so its linear_regions is NaN (skipped)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from latentdist.latents import Gaussian

    g = _decoder(args.output)
    latent = Gaussian(16)
    complexity_report(g, latent, n=32, seed=0)  # warm-up: imports, first-call kernels
    totals, rows = [], []
    for r in range(args.repeats):
        start = time.perf_counter()
        rows.append(complexity_report(g, latent, n=args.n, seed=r, timings=True))
        totals.append(time.perf_counter() - start)
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, n={args.n}, "
          f"repeats={args.repeats}, output={args.output}")
    print(f"complexity_report total: median {statistics.median(totals):.2f} s  (all: "
          + ", ".join(f"{t:.2f}" for t in totals) + ")")
    for key in sorted(k for k in rows[0] if k.startswith("time_")):
        print(f"  {key[5:]:<16} median {statistics.median(r[key] for r in rows):.2f} s")
    print("values (repeat 0):")
    for key, value in rows[0].items():
        if not key.startswith("time_"):
            print(f"  {key:<24} {value}")


if __name__ == "__main__":
    main()
