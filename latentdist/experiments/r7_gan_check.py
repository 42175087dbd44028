"""Why R7's GAN trains the shared decoder with an identity output: a short check that writes
``R7_gan_output_check.csv``.

    python -m latentdist.experiments.r7_gan_check [out_dir]      # default figures/, ~3 min on 2 cores

Trains R7's full-mode GAN (``ConvDecoder(16, depth 2)`` as generator, ``ConvCritic(16)``, latent 16, batch
128) on the first 20,000 MNIST training images, with the decoder's sigmoid output and with an identity
output (same layers and parameters), for several losses and learning rates. Every 250 generator steps it
records the mean pixel and the mean per-pixel sd across 256 samples (clamped to [0, 1], as R7 scores them).
MNIST's mean pixel is 0.13; a generator whose samples are all black has both near 0 and does not recover.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

__all__ = ["VARIANTS", "check", "main"]

#: (loss, learning rate, output, generator steps); WGAN-GP does 5 critic steps a generator step, so a third
#: of the steps costs about the same
VARIANTS = (("hinge", 2e-4, "sigmoid", 1500), ("hinge", 2e-5, "sigmoid", 1500), ("ns", 2e-4, "sigmoid", 1500),
            ("wgan-gp", 1e-4, "sigmoid", 500), ("hinge", 2e-4, "linear", 1500), ("ns", 2e-4, "linear", 1500))


def _variant(loss: str, lr: float, output: str, steps: int, n_images: int, channels: int, every: int,
             seed: int) -> list[dict]:
    """One GAN run: (step, mean pixel, across-sample sd) every ``every`` generator steps."""
    import torch

    from latentdist.data import load_mnist
    from latentdist.generators import ConvDecoder
    from latentdist.latents import Gaussian
    from latentdist.train import ConvCritic, train_gan

    x, _ = load_mnist("train")
    z = Gaussian(16).sample(256, seed + 1)
    rows = []

    def record(step, generator, logs):
        with torch.no_grad():
            out = generator(z).reshape(len(z), -1).clamp(0, 1)
        rows.append({"loss": loss, "lr": lr, "output": output, "step": step, "mean_pixel": float(out.mean()),
                     "sample_sd": float(out.std(0).mean()), "loss_d": float(logs["loss_d"])})

    train_gan(x[:n_images], Gaussian(16), ConvDecoder(channels, depth=2, output=output),
              ConvCritic(channels=channels), loss=loss, steps=steps, lr_g=lr, lr_d=lr, batch_size=128,
              seed=seed, progress=False, log_every=every, callbacks=[record])
    return rows


def check(*, variants=VARIANTS, n_images: int = 20_000, channels: int = 16, every: int = 250,
          seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Every variant's trajectory, one row per (variant, logged step); variants run as tasks on the
    current executor (``latentdist repro --workers`` style: :func:`latentdist.tasks.use_executor`)."""
    from latentdist.tasks import Task, run_tasks

    tasks = [Task(_variant, {"loss": loss, "lr": lr, "output": output, "steps": steps, "n_images": n_images,
                             "channels": channels, "every": every, "seed": seed},
                  name=f"gan-{loss}-{lr:g}-{output}") for loss, lr, output, steps in variants]
    return pd.DataFrame([r for rows in run_tasks(tasks, progress=progress, desc="GAN output check")
                         for r in rows])


def main(argv: list[str] | None = None) -> None:
    """Run :func:`check` on two worker processes and write ``<out_dir>/R7_gan_output_check.csv``."""
    from latentdist.experiments.io import save_table
    from latentdist.tasks import make_executor, use_executor

    args = argv if argv is not None else sys.argv[1:]
    out = Path((args or ["figures"])[0])
    with make_executor("processes", workers=2) as ex, use_executor(ex):
        table = check(progress=False)
    save_table(table, out, "R7_gan_output_check")
    last = table.sort_values("step").groupby(["loss", "lr", "output"], sort=False).tail(1)
    print(last.to_string(index=False))


if __name__ == "__main__":
    main()
