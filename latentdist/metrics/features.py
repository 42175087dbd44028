"""A small MNIST classifier the toolkit trains itself, used as the feature map for FID, KID and the
k-NN metrics.

No downloaded weights: the network is trained on MNIST train with a fixed recipe and seed, and cached
under a key that hashes the recipe, the seed and the data. A trained model is looked up in
``<data root>/models/`` (even when the data root is read-only, so a shipped model is used) and then in
``latentdist._io.cache_root('models')``. A newly trained one is written to ``<data root>/models/`` when
the data root is writable, else to the cache; when neither is, it is used without being saved, with a
warning. Model files carry a SHA-256 digest checked before loading
(:func:`latentdist._io.load_checkpoint`); a file lock keeps two processes (for example two pytest-xdist
workers) from training it twice at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from latentdist._io import CheckpointError, cache_root, load_checkpoint, save_checkpoint, unwritable_reason
from latentdist._seeding import SeedLike, make_torch_generator, seed_int, seeded
from latentdist._validation import (
    ArrayLike,
    check_array,
    check_device,
    check_int,
    check_lr,
    check_option,
    check_scalar,
    is_tensor,
)
from latentdist.optim import make_optimizer, update

__all__ = ["FeatureRecipe", "MNISTFeatures", "check_mnist_images"]

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class FeatureRecipe:
    """Everything that determines the trained classifier, besides the seed and the data.

    Architecture: conv(1->c1, 3x3) -> ReLU -> maxpool 2 -> conv(c1->c2, 3x3) -> ReLU -> maxpool 2
    -> linear(c2*7*7 -> hidden) -> ReLU -> linear(hidden -> 10); trained with Adam and cross-entropy,
    the learning rate either constant or decayed per step along a cosine to zero (``lr_schedule``).
    """

    channels: tuple[int, int] = (16, 32)
    hidden: int = 128
    epochs: int = 3
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"

    def __post_init__(self) -> None:
        c = self.channels
        if not (isinstance(c, tuple) and len(c) == 2):
            raise TypeError(f"channels must be a tuple of two ints, got {c!r}")
        for i, ci in enumerate(c):
            check_int(ci, f"channels[{i}]", low=1)
        check_int(self.hidden, "hidden", low=1)
        check_int(self.epochs, "epochs", low=1)
        check_int(self.batch_size, "batch_size", low=1)
        check_lr(self.lr, "lr")
        check_scalar(self.weight_decay, "weight_decay", low=0.0)
        check_option(self.lr_schedule, "lr_schedule", ("constant", "cosine"))


class _Net(nn.Module):
    def __init__(self, recipe: FeatureRecipe) -> None:
        super().__init__()
        c1, c2 = recipe.channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, recipe.hidden),
            nn.ReLU(),
        )
        self.head = nn.Linear(recipe.hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _build_net(recipe: FeatureRecipe, generator: torch.Generator) -> _Net:
    # nn.Module constructors draw from the global RNG; fork_rng restores it afterwards, and every
    # parameter is then re-drawn from our own generator with PyTorch's default init rule.
    with seeded(None):
        net = _Net(recipe)
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(module.weight, a=5**0.5, generator=generator)
            fan_in = module.weight[0].numel()
            bound = 1.0 / fan_in**0.5
            nn.init.uniform_(module.bias, -bound, bound, generator=generator)
    return net


def check_mnist_images(images: ArrayLike, name: str = "images") -> torch.Tensor:
    """Validate MNIST-shaped images and return them as a float32 tensor of shape (n, 1, 28, 28).

    Accepts numpy arrays or tensors of shape (n, 1, 28, 28) or (n, 784) with values in [0, 1].
    """
    arr = check_array(images, name, ndim=(2, 4))
    shape = tuple(arr.shape)
    if not (shape[1:] == (1, 28, 28) or (len(shape) == 2 and shape[1] == 784)):
        raise ValueError(f"{name} must have shape (n, 1, 28, 28) or (n, 784), got {shape}")
    if shape[0] < 1:
        raise ValueError(f"{name} must hold at least one image, got shape {shape}")
    if is_tensor(arr):
        t = arr.detach()
    else:  # torch refuses read-only buffers (load_mnist returns read-only arrays)
        t = torch.from_numpy(np.array(arr, copy=not arr.flags.writeable or not arr.flags.c_contiguous))
    lo, hi = float(t.min()), float(t.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} must have pixel values in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
    return t.to(torch.float32).reshape(-1, 1, 28, 28)


def _check_labels(labels: ArrayLike, n: int) -> torch.Tensor:
    arr = check_array(labels, "labels", ndim=1, finite=True)
    t = arr.detach() if is_tensor(arr) else torch.from_numpy(np.array(arr))
    if len(t) != n:
        raise ValueError(f"labels must have one entry per image ({n}), got {len(t)}")
    if not torch.equal(t, t.round()) or float(t.min()) < 0 or float(t.max()) > 9:
        raise ValueError("labels must be integers in 0..9")
    return t.to(torch.int64)


def _md5(*arrays: np.ndarray | torch.Tensor) -> str:
    h = hashlib.md5()
    for a in arrays:
        a = a.detach().cpu().numpy() if is_tensor(a) else np.asarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _writable_dir(path: Path) -> bool:
    """Writable by permission bits *and* by access(2): root bypasses access checks, and a data root
    shipped read-only (such as a shared MNIST copy) must stay untouched even then."""
    return path.is_dir() and bool(path.stat().st_mode & stat.S_IWUSR) and os.access(path, os.W_OK)


def _data_root(root: str | os.PathLike | None) -> str | os.PathLike | None:
    return root if root is not None else os.environ.get("LATENTDIST_DATA")


def _model_dirs(root: str | os.PathLike | None) -> list[Path]:
    """Where a trained classifier may already sit, in lookup order: the data root's ``models/``
    (read-only or not), then the cache."""
    root = _data_root(root)
    return ([Path(root, "models")] if root is not None else []) + [cache_root("models")]


def _models_dir(root: str | os.PathLike | None) -> Path | None:
    """Where a newly trained classifier is written: the data root's ``models/`` when the data root is
    writable, else the cache (the fallback for writing only); None when neither can be written."""
    root = _data_root(root)
    if root is not None and _writable_dir(Path(root)):
        target = Path(root, "models")
        if unwritable_reason(target) is None and _writable_dir(target):
            return target
    cache = cache_root("models")
    return cache if unwritable_reason(cache) is None else None


class MNISTFeatures:
    """A seeded, self-trained MNIST CNN whose 128-unit penultimate layer serves as feature map.

    Build one with :meth:`load_or_train` (cached, full MNIST train) or :meth:`train` (any data, no
    cache). The measured test accuracy of the cached model is stored with its weights.

    Attributes
    ----------
    recipe : FeatureRecipe
    seed : int
    accuracy : float or None
        Accuracy on MNIST test measured when the weights were trained (None for :meth:`train`).
    recipe_hash : str
        Hex key of (recipe, seed, data md5s, format version); names the cache file.
    device : torch.device

    Examples
    --------
    >>> feats = MNISTFeatures.load_or_train()  # doctest: +SKIP
    >>> feats.features(images).shape  # doctest: +SKIP
    (n, 128)
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        recipe: FeatureRecipe,
        seed: int,
        recipe_hash: str,
        accuracy: float | None = None,
        device: str | torch.device | None = "cpu",
    ) -> None:
        self.device = check_device(device)
        self.net = net.to(self.device).eval()
        self.recipe = recipe
        self.seed = seed
        self.recipe_hash = recipe_hash
        self.accuracy = accuracy

    def __repr__(self) -> str:
        acc = "untested" if self.accuracy is None else f"{self.accuracy:.4f}"
        return f"MNISTFeatures(recipe_hash={self.recipe_hash!r}, accuracy={acc}, device={self.device})"

    # ------------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        images: ArrayLike,
        labels: ArrayLike,
        *,
        recipe: FeatureRecipe | None = None,
        seed: SeedLike = 0,
        device: str | torch.device | None = "cpu",
        progress: bool = True,
    ) -> MNISTFeatures:
        """Train a classifier on the given images, without touching the cache.

        Parameters
        ----------
        images : array-like or torch.Tensor, shape (n, 1, 28, 28) or (n, 784), values in [0, 1]
        labels : array-like or torch.Tensor, shape (n,), integers 0..9
        recipe : FeatureRecipe, optional
            Defaults to ``FeatureRecipe()``.
        seed : int or Generator
            Initialisation and minibatch order; the same seed gives identical weights on CPU.
        device : str or torch.device
        progress : bool
            Show a bar over minibatches.

        Returns
        -------
        MNISTFeatures
            With ``accuracy=None``; its ``recipe_hash`` covers recipe, seed and the data given.
        """
        recipe = FeatureRecipe() if recipe is None else recipe
        if not isinstance(recipe, FeatureRecipe):
            raise TypeError(f"recipe must be a FeatureRecipe, got {type(recipe).__name__}")
        x = check_mnist_images(images)
        y = _check_labels(labels, len(x))
        seed = seed_int(seed)
        dev = check_device(device)
        gen = make_torch_generator(seed, "cpu")
        net = _build_net(recipe, gen).to(dev)
        n, bs = len(x), recipe.batch_size
        per_epoch = (n + bs - 1) // bs
        steps = recipe.epochs * per_epoch
        schedule = "cosine" if recipe.lr_schedule == "cosine" else "constant"
        opt, sched = make_optimizer(net.parameters(), recipe.lr, weight_decay=recipe.weight_decay,
                                    schedule=schedule, steps=steps)
        loss_fn = nn.CrossEntropyLoss()
        order = torch.empty(0, dtype=torch.long)
        net.train()

        def step_fn(step: int) -> dict:
            nonlocal order
            if step % per_epoch == 0:  # a new epoch: a fresh permutation of the rows
                order = torch.randperm(n, generator=gen)
            idx = order[(step % per_epoch) * bs : (step % per_epoch + 1) * bs]
            update(opt, loss_fn(net(x[idx].to(dev)), y[idx].to(dev)), sched)
            return {}

        from latentdist.train.loop import run_loop  # lazily: the train package is heavy

        run_loop(step_fn, steps=steps, progress=progress, desc="MNISTFeatures", device=dev)
        key = _recipe_hash(recipe, seed, _md5(x, y))
        return cls(net, recipe=recipe, seed=seed, recipe_hash=key, device=dev)

    @classmethod
    def load_or_train(
        cls,
        *,
        root: str | os.PathLike | None = None,
        seed: SeedLike = 0,
        device: str | torch.device | None = "cpu",
        progress: bool = True,
        recipe: FeatureRecipe | None = None,
    ) -> MNISTFeatures:
        """The cached classifier for ``(recipe, seed, MNIST files)``, trained on first use.

        First use loads MNIST through :func:`latentdist.data.load_mnist` (``root`` or
        ``$LATENTDIST_DATA``), trains on all 60,000 training images, measures accuracy on the 10,000
        test images and writes weights and accuracy atomically. Later calls just load. A
        ``filelock.FileLock`` next to the cache file serialises concurrent first uses.

        Parameters
        ----------
        root : path, optional
            Data root holding ``mnist/``; defaults to ``$LATENTDIST_DATA``.
        seed : int or Generator
        device : str or torch.device
        progress : bool
        recipe : FeatureRecipe, optional
            Defaults to ``FeatureRecipe()`` (98.87% test accuracy at seed 0).

        Returns
        -------
        MNISTFeatures
        """
        from filelock import FileLock

        from latentdist.data import load_mnist

        recipe = FeatureRecipe() if recipe is None else recipe
        if not isinstance(recipe, FeatureRecipe):
            raise TypeError(f"recipe must be a FeatureRecipe, got {type(recipe).__name__}")
        seed = seed_int(seed)
        dev = check_device(device)
        x_train, y_train = load_mnist("train", root=root)
        data_md5 = _md5(check_mnist_images(x_train), _check_labels(y_train, len(x_train)))
        key = _recipe_hash(recipe, seed, data_md5)
        name = f"mnist_features_{key}.pt"
        for directory in _model_dirs(root):
            if (directory / name).is_file():  # atomic writes: an existing file is complete, no lock needed
                return cls._load(directory / name, key, dev)

        def fit() -> MNISTFeatures:
            model = cls.train(x_train, y_train, recipe=recipe, seed=seed, device=dev, progress=progress)
            x_test, y_test = load_mnist("test", root=root)
            model.accuracy = float((model.predict(x_test) == _to_np_int(y_test)).mean())
            return model

        target = _models_dir(root)
        if target is None:
            warnings.warn(
                f"no writable place for the trained MNIST classifier (the data root's models/ and the cache "
                f"{cache_root('models')} are not writable); training it without saving it. Set "
                "LATENTDIST_CACHE to a writable directory to keep it.",
                RuntimeWarning, stacklevel=2,
            )
            return fit()
        path = target / name
        with FileLock(str(path) + ".lock"):
            if path.exists():
                return cls._load(path, key, dev)
            model = fit()
            state = {k: v.detach().cpu() for k, v in model.net.state_dict().items()}
            save_checkpoint(
                {
                    "state_dict": state,
                    "recipe": json.dumps(_recipe_dict(recipe)),
                    "seed": seed,
                    "recipe_hash": key,
                    "accuracy": model.accuracy,
                    "format_version": _FORMAT_VERSION,
                },
                path,
            )
            return model

    @classmethod
    def _load(cls, path: Path, key: str, device: torch.device) -> MNISTFeatures:
        remedy = "delete it and it will be retrained"
        blob = load_checkpoint(path, what="cached classifier", remedy=remedy)
        if not isinstance(blob, dict) or blob.get("recipe_hash") != key:
            raise CheckpointError(f"cached classifier {path} does not match its recipe hash {key}; {remedy}")
        try:
            raw = json.loads(blob["recipe"])
            recipe = FeatureRecipe(**{**raw, "channels": tuple(raw["channels"])})
            net = _build_net(recipe, make_torch_generator(0))
            net.load_state_dict(blob["state_dict"])
            seed, accuracy = int(blob["seed"]), float(blob["accuracy"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"cached classifier {path} has unexpected contents ({type(exc).__name__}: {exc}); {remedy}"
            ) from exc
        return cls(net, recipe=recipe, seed=seed, recipe_hash=key, accuracy=accuracy, device=device)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _forward(self, images: ArrayLike, batch_size: int, head: bool) -> np.ndarray:
        x = check_mnist_images(images)
        batch_size = check_int(batch_size, "batch_size", low=1)
        outs = []
        for start in range(0, len(x), batch_size):
            h = self.net.body(x[start : start + batch_size].to(self.device))
            outs.append((self.net.head(h) if head else h).cpu())
        return torch.cat(outs).numpy()

    def features(self, images: ArrayLike, batch_size: int = 1000) -> np.ndarray:
        """Penultimate-layer activations (after ReLU).

        Parameters
        ----------
        images : array-like or torch.Tensor, shape (n, 1, 28, 28) or (n, 784), values in [0, 1]
        batch_size : int

        Returns
        -------
        numpy.ndarray, shape (n, hidden), float64
        """
        return self._forward(images, batch_size, head=False).astype(np.float64)

    def logits(self, images: ArrayLike, batch_size: int = 1000) -> np.ndarray:
        """Class logits, shape (n, 10), float64."""
        return self._forward(images, batch_size, head=True).astype(np.float64)

    def predict(self, images: ArrayLike, batch_size: int = 1000) -> np.ndarray:
        """Predicted digit per image, shape (n,), int64."""
        return self.logits(images, batch_size).argmax(1).astype(np.int64)


def _to_np_int(labels: Any) -> np.ndarray:
    return (labels.detach().cpu().numpy() if is_tensor(labels) else np.asarray(labels)).astype(np.int64)


def _recipe_dict(recipe: FeatureRecipe) -> dict[str, Any]:
    d = dataclasses.asdict(recipe)
    d["channels"] = list(d["channels"])
    return d


def _recipe_hash(recipe: FeatureRecipe, seed: int, data_md5: str) -> str:
    payload = json.dumps(
        {"recipe": _recipe_dict(recipe), "seed": seed, "data_md5": data_md5, "version": _FORMAT_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
