"""Per-step cost of every R7 network (GAN, VAE, RAE, WAE, joint AE, DAE stage 1 + 2) at an R7 config's
architecture, to size R7's step cap: ``total ~ steps x (sum over networks x seeds + tuning candidates)``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peers_steps.py --mode full --steps 30
"""

from __future__ import annotations

import argparse
import resource
import time


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("quick", "full"), default="full")
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()

    import torch

    from latentdist.data import load_mnist
    from latentdist.experiments.config import get_config
    from latentdist.experiments.r7_models import NETWORKS, train_network

    cfg = get_config("R7", args.mode, max_steps=args.steps, validate_every=args.steps, patience=None)
    x, _ = load_mnist("train", n=2 * cfg["batch_size"] * 4, seed=0)
    data = {"train": x, "val": x[: cfg["batch_size"]]}
    print(f"R7 {args.mode}: batch {cfg['batch_size']}, decoder {cfg['decoder']}, encoder "
          f"{cfg['encoder_channels']} ch, latent {cfg['latent_dim']}, threads {torch.get_num_threads()}")
    total = 0.0
    for kind in NETWORKS:
        c0, t0 = _cpu(), time.perf_counter()
        train_network(kind, {}, data, cfg, seed=0, progress=False)
        per = (_cpu() - c0) / args.steps
        total += per
        wall = (time.perf_counter() - t0) / args.steps
        print(f"{kind:6s} CPU {1000 * per:7.1f} ms/step   wall {1000 * wall:7.1f} ms/step"
              + ("  (stage 1 + stage 2)" if kind == "dae" else ""))
    print(f"all networks, one seed: CPU {total:.3f} s per step of the cap")


if __name__ == "__main__":
    main()
