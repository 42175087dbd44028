"""Time the quick MNIST DAE pipeline: stage 1 + stage 2 + prior + FID on 10k samples.

    OMP_NUM_THREADS=1 \
        .venv/bin/python benchmarks/dae_pipeline.py --threads 1 [--grid samples.png]

Quick configuration (defaults): all 60k training images, latent_dim 8, ConvEncoder(16), auxiliary decoder
weaken(ConvDecoder(16), width_mult=0.25) = ConvDecoder(4), decoder ConvDecoder(16), BCE loss, batch 64,
Adam lr 2e-3, 3000 + 3000 steps, a 10-component full-covariance GMM prior, FID between 10,000 generated
images and the 10,000 MNIST test images in the feature space of the toolkit's own classifier.

The classifier trains itself on first use and is cached; that one-off cost is reported separately
(``classifier_s_excluded``) and is not part of the pipeline time, nor is the reference FID between real
training and test images (``fid_floor_real_vs_real``). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latent-dim", type=int, default=8)
    ap.add_argument("--channels", type=int, default=16, help="encoder and decoder channel multiplier")
    ap.add_argument("--aux-mult", type=float, default=0.25, help="auxiliary decoder width multiplier")
    ap.add_argument("--stage1-steps", type=int, default=3000)
    ap.add_argument("--stage2-steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--n-train", type=int, default=None, help="training subset (default: all 60k)")
    ap.add_argument("--n-samples", type=int, default=10000)
    ap.add_argument("--prior", default="gmm", choices=["gmm", "kde", "flow"])
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grid", default=None, help="write an 8x8 grid of samples to this PNG")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from latentdist.data import load_mnist
    from latentdist.generators import ConvDecoder
    from latentdist.metrics import MNISTFeatures, fid
    from latentdist.train import ConvEncoder, GenerativePipeline, fit_prior, train_dae, weaken

    t0 = time.perf_counter()
    features = MNISTFeatures.load_or_train(progress=args.progress)
    classifier_s = time.perf_counter() - t0

    times: dict[str, float] = {}
    start, cpu_start = time.perf_counter(), time.process_time()

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        times[name] = round(now - since, 2)
        return now

    t = start
    x, _ = load_mnist("train", n=args.n_train, seed=args.seed)
    real, _ = load_mnist("test")
    t = lap("load_s", t)
    res = train_dae(
        x,
        ConvEncoder(channels=args.channels, latent_dim=args.latent_dim),
        weaken(ConvDecoder(args.channels), width_mult=args.aux_mult),
        ConvDecoder(args.channels),
        stage1_steps=args.stage1_steps,
        stage2_steps=args.stage2_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        loss="bce",
        seed=args.seed,
        progress=args.progress,
        log_every=100,
    )
    t = lap("dae_s", t)  # both stages, plus encoding the training set once between them
    prior_kw = {"progress": args.progress} if args.prior == "flow" else {}
    prior = fit_prior(res.encode(x), args.prior, **prior_kw)
    t = lap("prior_s", t)
    pipe = GenerativePipeline(prior, res.decoder, output_shape=(1, 28, 28))
    fake = pipe.sample(args.n_samples, seed=args.seed + 1)
    t = lap("sample_s", t)
    score = fid(features.features(real), features.features(fake))
    lap("fid_s", t)
    total, cpu_total = time.perf_counter() - start, time.process_time() - cpu_start

    # Reference outside the timed pipeline: FID between 10k real training and the 10k test images, the
    # floor a perfect sampler would reach at this sample size (docs/theory.md §5).
    floor = fid(features.features(x[: len(real)]), features.features(real))

    h = res.history
    out = {
        "config": vars(args),
        "total_s": round(total, 1),
        # CPU seconds of this process over all its threads: on a shared machine the wall time above
        # includes waiting for other processes, this does not.
        "process_cpu_s": round(cpu_total, 1),
        **times,
        "classifier_s_excluded": round(classifier_s, 1),
        "fid": round(score, 3),
        "fid_floor_real_vs_real": round(floor, 3),
        "stage1_final_mse": round(float(h[h["stage"] == 1]["mse"].iloc[-1]), 5),
        "stage2_final_mse": round(float(h[h["stage"] == 2]["mse"].iloc[-1]), 5),
        "params": pipe.param_counts(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    if args.grid:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        grid = fake[:64].reshape(8, 8, 28, 28).permute(0, 2, 1, 3).reshape(8 * 28, 8 * 28).numpy()
        plt.imsave(args.grid, grid, cmap="gray", vmin=0, vmax=1)
        out["grid"] = args.grid
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
