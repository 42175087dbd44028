"""Real MNIST from the original IDX files: parsing, md5 verification, download, subsets.

Files live in ``<root>/mnist/`` as ``train-images-idx3-ubyte.gz`` and friends (the raw,
uncompressed files are accepted too). They are looked for, in order, under the ``root`` argument,
``$LATENTDIST_DATA`` and the user cache ``<cache>/data`` (``$LATENTDIST_CACHE``, default
``~/.cache/latentdist``). When they are in none of these, :func:`load_mnist` fetches them into the
user cache on first use: from ``$LATENTDIST_MNIST_URL`` when set (a mirror's base URL, or a local
directory or ``file://`` URL holding the four ``.gz`` files), else from :data:`MIRRORS`, in turn.
Every file is md5-verified before it is written, and written atomically.

When nothing answers, :class:`MNISTUnavailableError` says where the files were looked for, what each
mirror answered, which variable to set, and how to run the toolkit without MNIST.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import urllib.error
import urllib.request
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes, cache_root
from .._progress import progress_bar
from .._seeding import SeedLike, make_rng
from .._validation import check_int, check_option, check_scalar

__all__ = [
    "load_mnist",
    "read_idx",
    "download_mnist",
    "ensure_mnist",
    "mnist_root",
    "mnist_mirrors",
    "MNISTUnavailableError",
    "MNIST_FILES",
    "MNIST_MD5",
    "MIRRORS",
    "MNIST_URL_ENV",
    "WITHOUT_MNIST",
]

#: The four files of each split: (images, labels).
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: Published md5 sums, for the gzip files and their decompressed contents.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

#: Tried in order by :func:`download_mnist`; each serves ``<mirror><file>.gz``.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

#: Environment variable naming the mirror(s) to use instead of :data:`MIRRORS` (see :func:`mnist_mirrors`).
MNIST_URL_ENV = "LATENTDIST_MNIST_URL"

#: How to reproduce everything that does not need MNIST (quoted in every "MNIST unavailable" message).
WITHOUT_MNIST = "latentdist repro --quick --only R1 R2 R3 R4 R6"

_CHUNK = 1 << 16


class MNISTUnavailableError(FileNotFoundError):
    """MNIST is neither on disk nor obtainable from any mirror (or every copy failed its md5 check)."""

_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike, *, expected_magic: int | None = None) -> np.ndarray:
    """Parse an IDX file (raw or gzip-compressed) into a numpy array.

    Layout: a 4-byte big-endian magic ``0x0000 TT NN`` (TT the element type, NN the
    number of dimensions), NN big-endian uint32 sizes, then the elements in C order.
    MNIST uses magic 2051 (ubyte, 3 dims: images) and 2049 (ubyte, 1 dim: labels).

    Parameters
    ----------
    path : path-like
        ``.gz`` files (detected by their gzip signature) are decompressed.
    expected_magic : int, optional
        Raise unless the file's magic number equals this.

    Returns
    -------
    numpy.ndarray
        Native-endian array of the declared shape and element type.

    Raises
    ------
    ValueError
        Bad or unexpected magic, unknown element type, truncated or over-long data,
        corrupt gzip stream.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.idx"
    >>> _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(p).tolist()
    [7, 8, 9]
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path} is not a readable gzip file (truncated or corrupt): {exc}") from exc
    if len(raw) < 4:
        raise ValueError(f"{path} is too short to be an IDX file ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise ValueError(f"{path} has an invalid IDX magic number {int.from_bytes(raw[:4], 'big')}")
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"{path} has IDX magic number {magic}, expected {expected_magic}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated inside its IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header declares"
        raise ValueError(f"{path} is {what}: {len(raw)} bytes, header of shape {shape} needs {expected}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=64)
def _verified(path: str, mtime_ns: int, size: int) -> bool:
    """md5 check, cached per (path, mtime, size) so repeated loads do not re-hash."""
    return _md5(Path(path)) == MNIST_MD5[Path(path).name]


def _check_file(path: Path) -> None:
    st = path.stat()
    if not _verified(str(path), st.st_mtime_ns, st.st_size):
        raise ValueError(
            f"{path} fails its md5 check (expected {MNIST_MD5[path.name]}); the file is corrupt or "
            "not the original MNIST file: delete it, and load_mnist fetches a verified copy"
        )


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _candidate_roots(root: str | os.PathLike | None) -> list[Path]:
    if root is not None:
        return [Path(root)]
    env = os.environ.get("LATENTDIST_DATA")
    # The cache path is not created here: loading files that are already present must work on a
    # machine where the cache is not writable.
    return ([Path(env)] if env else []) + [cache_root("data")]


def mnist_root(root: str | os.PathLike | None = None) -> Path | None:
    """The first data root (argument, ``$LATENTDIST_DATA``, user cache) holding all MNIST files."""
    for cand in _candidate_roots(root):
        if all(_find(cand / "mnist", s) for pair in MNIST_FILES.values() for s in pair):
            return cand
    return None


def mnist_mirrors() -> tuple[str, ...]:
    """The mirrors :func:`download_mnist` tries, in order: ``$LATENTDIST_MNIST_URL`` when set, else
    :data:`MIRRORS`.

    ``LATENTDIST_MNIST_URL`` holds one or more entries separated by commas or white space; each is a
    base URL serving ``<url>/train-images-idx3-ubyte.gz`` and the other three files (any scheme urllib
    reads: ``https://``, ``http://``, ``file://``), or a local directory holding the files (or holding
    ``mnist/`` with them), for users behind a proxy or with a copy on disk.

    Returns
    -------
    tuple of str
        Base URLs, each ending in ``/``.

    Examples
    --------
    >>> import os
    >>> os.environ["LATENTDIST_MNIST_URL"] = "http://127.0.0.1:8000/mnist"
    >>> mnist_mirrors()
    ('http://127.0.0.1:8000/mnist/',)
    >>> del os.environ["LATENTDIST_MNIST_URL"]
    """
    entries = [e for e in re.split(r"[\s,]+", os.environ.get(MNIST_URL_ENV, "")) if e]
    if not entries:
        return MIRRORS
    return tuple(_as_base_url(e) for e in entries)


def _as_base_url(entry: str) -> str:
    if "://" not in entry:  # a local directory
        path = Path(entry).expanduser().resolve()
        if not (path / (MNIST_FILES["train"][0] + ".gz")).is_file() and (path / "mnist").is_dir():
            path = path / "mnist"
        entry = path.as_uri()
    return entry.rstrip("/") + "/"


def _fetch(url: str, timeout: float, progress: bool, name: str) -> bytes:
    """The body at ``url``, read in chunks under a byte progress bar."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length") if resp.headers is not None else None
        total = int(length) if length and length.isdigit() else None
        buf = io.BytesIO()
        with progress_bar(total=total, progress=progress, desc=name, unit="B", unit_scale=True,
                          unit_divisor=1024) as bar:
            for block in iter(lambda: resp.read(_CHUNK), b""):
                buf.write(block)
                bar.update(len(block))
    return buf.getvalue()


def _unavailable(what: str, attempts: list[str], root: str | os.PathLike | None) -> MNISTUnavailableError:
    looked = ", ".join(str(c / "mnist") for c in _candidate_roots(root))
    return MNISTUnavailableError(
        f"MNIST is not available: {what}.\n"
        f"Looked on disk in: {looked}.\n"
        "Mirrors tried:\n  " + "\n  ".join(attempts) + "\n"
        f"Fix: set {MNIST_URL_ENV} to a mirror's base URL or to a local directory holding the four "
        "MNIST .gz files (or set LATENTDIST_DATA to a directory holding mnist/).\n"
        f"To run without MNIST: {WITHOUT_MNIST}"
    )


def download_mnist(
    root: str | os.PathLike | None = None,
    *,
    mirrors: tuple[str, ...] | list[str] | None = None,
    timeout: float = 10.0,
    progress: bool = True,
) -> Path:
    """Download the MNIST ``.gz`` files that are missing from ``<root>/mnist/``.

    Each file is fetched from the first mirror that serves it with its published md5 (the others are
    tried in turn), then written atomically (temporary file and rename), so an interrupted or
    corrupted download never leaves a file behind. Files already present are kept.

    Parameters
    ----------
    root : path-like, optional
        Data root; default: the user cache ``<cache>/data`` (never ``$LATENTDIST_DATA``, which is
        often a read-only shared copy).
    mirrors : sequence of str, optional
        Base URLs (or local directories); default :func:`mnist_mirrors`.
    timeout : float
        Seconds a mirror may stay silent (connection or read) before the next one is tried.
    progress : bool
        Byte progress bar per file.

    Returns
    -------
    pathlib.Path
        The data root (the files are in ``<root>/mnist/``).

    Raises
    ------
    MNISTUnavailableError
        A file could not be fetched with a valid md5 from any mirror; the message lists every attempt,
        the variable to set, and how to run without MNIST. Files fetched before it are kept.

    Examples
    --------
    >>> download_mnist(progress=False)  # doctest: +SKIP
    PosixPath('.../.cache/latentdist/data')
    """
    timeout = check_scalar(timeout, "timeout", low=0.0, low_inclusive=False)
    target = Path(root) if root is not None else cache_root("data")
    bases = [_as_base_url(str(m)) for m in (mnist_mirrors() if mirrors is None else mirrors)]
    if not bases:
        raise ValueError("mirrors must list at least one base URL")
    directory = target / "mnist"
    for stem in [s for pair in MNIST_FILES.values() for s in pair]:
        if _find(directory, stem) is not None:
            continue
        fname = stem + ".gz"
        failures = []
        for base in bases:
            url = base + fname
            try:
                data = _fetch(url, timeout, progress, fname)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                continue
            digest = hashlib.md5(data).hexdigest()
            if digest != MNIST_MD5[fname]:
                failures.append(f"{url}: md5 {digest} != expected {MNIST_MD5[fname]} (corrupt or not the "
                                "original file; not written)")
                continue
            atomic_write_bytes(directory / fname, data)
            break
        else:
            raise _unavailable(f"no mirror gave {fname} with its published md5", failures, root)
    return target


def ensure_mnist(
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    timeout: float = 10.0,
    progress: bool = True,
) -> Path:
    """The data root holding all four MNIST files, fetching them into the cache first if needed.

    Commands that need MNIST call this before computing anything, so a machine without MNIST and
    without a reachable mirror fails within seconds, with one message.

    Parameters
    ----------
    root : path-like, optional
        As in :func:`load_mnist`.
    download : bool
        ``False`` only looks on disk.
    timeout, progress
        As in :func:`download_mnist`.

    Returns
    -------
    pathlib.Path
        A root whose ``mnist/`` holds the files.

    Raises
    ------
    MNISTUnavailableError
        The files are on no candidate root and (with ``download``) no mirror served them.
    """
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}")
    found = mnist_root(root)
    if found is not None:
        return found
    if not download:
        raise _unavailable("the files are not on disk and download=False", ["none (download=False)"], root)
    found = mnist_root(download_mnist(root, timeout=timeout, progress=progress))
    assert found is not None  # download_mnist raises unless every file is in place
    return found


@lru_cache(maxsize=4)
def _parsed(images: str, labels: str, key: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Parsed uint8 images and labels; ``key`` carries mtimes and sizes so edits invalidate it."""
    x = read_idx(images, expected_magic=_IMAGES_MAGIC)
    y = read_idx(labels, expected_magic=_LABELS_MAGIC)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"{images} must hold 28x28 images, got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"{labels} holds {y.shape} labels for {len(x)} images in {images}")
    if y.max(initial=0) > 9:
        raise ValueError(f"{labels} holds labels outside 0..9")
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_mnist(
    split: str = "train",
    *,
    root: str | os.PathLike | None = None,
    download: bool = True,
    n: int | None = None,
    digits: int | list[int] | tuple[int, ...] | None = None,
    seed: SeedLike = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST images as float32 in [0, 1] with int64 labels.

    ``x = pixel / 255``. Files are md5-verified (once per path, mtime and size) and
    parsed once per process; every call returns fresh arrays.

    Parameters
    ----------
    split : {'train', 'test'}
        60,000 training or 10,000 test images.
    root : path-like, optional
        Directory holding ``mnist/``; default ``$LATENTDIST_DATA``, then the user cache.
    download : bool, default True
        Fetch missing files into the user cache (or ``root``) on first use, from
        ``$LATENTDIST_MNIST_URL`` or the canonical mirrors (see :func:`download_mnist`); ``False``
        only reads from disk.
    n : int, optional
        Size of a seeded random subset drawn without replacement, kept in file order. The files are
        not exchangeable (writers are grouped), so shuffle before splitting a subset by position.
    digits : int or sequence of int, optional
        Keep only these classes (applied before ``n``).
    seed : int or Generator
        Seeds the subset.

    Returns
    -------
    images : numpy.ndarray, shape (n, 1, 28, 28), float32
    labels : numpy.ndarray, shape (n,), int64

    Raises
    ------
    MNISTUnavailableError
        Not on disk and not obtainable (a ``FileNotFoundError``; the message says what to do).

    Examples
    --------
    >>> x, y = load_mnist("test", n=100, digits=[0, 1], seed=0)  # doctest: +SKIP
    >>> x.shape, set(y.tolist()) <= {0, 1}  # doctest: +SKIP
    ((100, 1, 28, 28), True)
    """
    split = check_option(split, "split", list(MNIST_FILES))
    keep = None
    if digits is not None:
        seq = [digits] if isinstance(digits, (int, np.integer)) and not isinstance(digits, bool) else digits
        try:
            seq = list(seq)
        except TypeError:
            raise TypeError(f"digits must be an int or a sequence of ints in 0..9, got {digits!r}") from None
        if not seq:
            raise ValueError("digits must name at least one class in 0..9")
        keep = np.array(sorted({check_int(d, "digits", low=0, high=9) for d in seq}))
    if n is not None:
        n = check_int(n, "n", low=1)

    found = ensure_mnist(root, download=download)
    paths = [_find(found / "mnist", s) for s in MNIST_FILES[split]]
    for p in paths:
        _check_file(p)
    key = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    images, labels = _parsed(str(paths[0]), str(paths[1]), key)

    idx = np.arange(len(labels)) if keep is None else np.flatnonzero(np.isin(labels, keep))
    if n is not None:
        if n > len(idx):
            raise ValueError(f"n={n} exceeds the {len(idx)} images available in split {split!r}"
                             + ("" if keep is None else f" for digits {keep.tolist()}"))
        idx = np.sort(make_rng(seed).choice(idx, size=n, replace=False))
    x = images[idx].astype(np.float32)
    x /= 255.0
    return x[:, None], labels[idx].astype(np.int64)
