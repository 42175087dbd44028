"""The ``latentdist`` command.

::

    latentdist repro [--quick | --full] [--only R2 R3] [--out DIR] [--no-cache]
                     [--workers N] [--backend {serial,processes,ray}] [--address HOST:PORT]
    latentdist distance --latent gaussian --data spiral --family mlp --width 32 --distance w2
    latentdist datasets
    latentdist --version

A ``repro`` that includes a claim needing MNIST (its module sets ``NEEDS_MNIST = True``) first makes
sure MNIST is on disk, fetching it if needed, and otherwise stops with one message before computing.

Bad options exit with status 2 and a message naming the option (argparse's convention).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]

FAMILIES = ("linear", "mlp", "lipschitz")
LATENTS = ("gaussian", "uniform")


def _int_at_least(name: str, low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low}, got {value}")
        return value

    return parse


def _positive_float(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be a positive finite number, got {text}")
        return value

    return parse


def _version() -> str:
    """The installed distribution's version (the package's own when run from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("latentdist")
    except PackageNotFoundError:
        from latentdist import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    from latentdist.experiments.config import CLAIMS

    parser = argparse.ArgumentParser(prog="latentdist",
                                     description="Latent-data distances (Hu et al., 2023).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="{repro,distance,datasets}")
    sub.required = True

    rep = sub.add_parser("repro", help="run the experiments R1-R6 and write figures and numbers")
    mode = rep.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="small configuration, minutes on a laptop (default); writes figures/quick/")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="the configuration behind paper_repro.md; writes figures/")
    rep.add_argument("--only", nargs="+", choices=CLAIMS, metavar="CLAIM",
                     help=f"run only these claims (from {', '.join(CLAIMS)})")
    rep.add_argument("--out", metavar="DIR", help="output directory for figures and numbers")
    rep.add_argument("--no-cache", action="store_true", help="recompute even if a cached result exists")
    rep.add_argument("--no-progress", action="store_true", help="hide progress bars")
    rep.add_argument("--workers", type=_int_at_least("--workers", 1), default=1,
                     help="local worker processes for the claims' tasks (default 1: this process); each "
                          "worker gets cores/N BLAS and torch threads")
    rep.add_argument("--backend", choices=("serial", "processes", "ray"), default=None,
                     help="where tasks run: serial, local processes (default when --workers > 1) or a Ray "
                          "cluster (pip install 'latentdist[ray]')")
    rep.add_argument("--address", metavar="HOST:PORT", default=None,
                     help="Ray cluster to join (--backend ray; 'auto' for the one this machine is in; "
                          "default: start a local Ray instance)")

    dist = sub.add_parser("distance", help="estimate D_G(P_z, P_x) for one latent, dataset and family")
    dist.add_argument("--latent", default="gaussian", choices=LATENTS, help="latent distribution")
    dist.add_argument("--latent-dim", type=_int_at_least("--latent-dim", 1), default=None,
                      help="latent dimension (default: the data's intrinsic dimension, at least 1)")
    dist.add_argument("--data", default="spiral", help="toy dataset name (see `latentdist datasets`)")
    dist.add_argument("--family", default="mlp", choices=FAMILIES, help="generator family")
    dist.add_argument("--width", type=_int_at_least("--width", 1), default=32, help="hidden width")
    dist.add_argument("--depth", type=_int_at_least("--depth", 1), default=2, help="hidden layers")
    dist.add_argument("--lipschitz", type=_positive_float("--lipschitz"), default=1.0,
                      help="Lipschitz bound (family 'lipschitz' only)")
    dist.add_argument("--distance", default="w2", help="sample distance (w1, w2, sinkhorn, mmd, ...)")
    dist.add_argument("--n", type=_int_at_least("--n", 1), default=1000, help="number of data samples")
    dist.add_argument("--restarts", type=_int_at_least("--restarts", 1), default=3, help="random restarts")
    dist.add_argument("--steps", type=_int_at_least("--steps", 1), default=500,
                      help="optimizer steps per restart")
    dist.add_argument("--seed", type=_int_at_least("--seed", 0), default=0, help="random seed")
    dist.add_argument("--no-progress", action="store_true", help="hide progress bars")

    sub.add_parser("datasets", help="list the toy datasets")
    return parser


def _cmd_repro(args: argparse.Namespace) -> int:
    from latentdist.data.mnist import MNISTUnavailableError
    from latentdist.experiments.runner import run_all
    from latentdist.tasks import make_executor

    mode = args.mode or "quick"
    backend = args.backend or ("processes" if args.workers > 1 else "serial")
    if args.address is not None and backend != "ray":
        print("latentdist repro: error: argument --address: only used with --backend ray", file=sys.stderr)
        return 2
    try:
        executor = make_executor(backend, workers=args.workers, address=args.address)
    except ImportError as exc:  # --backend ray without Ray installed
        print(f"latentdist: error: {exc}", file=sys.stderr)
        return 1
    try:  # run_all fetches MNIST first when a claim needs it, and stops with one message when it cannot
        with executor:
            results = run_all(args.only, mode, out=args.out, use_cache=not args.no_cache,
                              progress=not args.no_progress, log=print, executor=executor)
    except MNISTUnavailableError as exc:
        print(f"latentdist: error: {exc}", file=sys.stderr)
        return 1
    print(f"done: {len(results)} claim(s) in mode {mode!r}")
    return 0


def _cmd_distance(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from latentdist.data import available_datasets, make_dataset

    if args.data not in available_datasets():
        parser.error(f"argument --data: unknown dataset {args.data!r}; choose from {available_datasets()}")
    from latentdist.distances import available_distances
    from latentdist.estimator import latent_data_distance
    from latentdist.generators import MLP, Linear, LipschitzMLP
    from latentdist.latents import make_latent

    if args.distance not in available_distances():
        parser.error(f"argument --distance: unknown distance {args.distance!r}; "
                     f"choose from {available_distances()}")
    if args.family == "lipschitz" and args.width % 2:
        parser.error(f"argument --width: the lipschitz family needs an even width, got {args.width}")
    data = make_dataset(args.data, args.n, seed=args.seed)
    dim = args.latent_dim or max(1, data.intrinsic_dim)
    latent = make_latent(args.latent, dim)
    family = {"linear": lambda: Linear(),
              "mlp": lambda: MLP(width=args.width, depth=args.depth),
              "lipschitz": lambda: LipschitzMLP(lipschitz=args.lipschitz, width=args.width, depth=args.depth),
              }[args.family]()
    res = latent_data_distance(latent, data.x, family, args.distance, n_restarts=args.restarts,
                               steps=args.steps, seed=args.seed, progress=not args.no_progress)
    print(f"D_{{{family.label()}}}({latent!r}, {args.data}) under {args.distance}: "
          f"{res.value:.4f} ± {res.std:.4f} (spread over {args.restarts} restarts)")
    print(f"noise floor d(P_x, P_x'): {res.noise_floor:.4f} ± {res.noise_floor_std:.4f}")
    return 0


def _cmd_datasets() -> int:
    from latentdist.data import available_datasets

    for name in available_datasets():
        print(name)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``latentdist`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "repro":
        return _cmd_repro(args)
    if args.command == "distance":
        return _cmd_distance(parser, args)
    return _cmd_datasets()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
