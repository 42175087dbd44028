"""MNIST IDX parsing, verification, download (offline, via file:// mirrors), subsets; sklearn digits."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from latentdist.data import download_mnist, load_digits, load_mnist, read_idx
from latentdist.data import mnist as mnist_mod

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
GZ_FILES = [s + ".gz" for pair in mnist_mod.MNIST_FILES.values() for s in pair]


def _idx_bytes(arr: np.ndarray, type_code: int, big_endian_dtype: str) -> bytes:
    header = bytes([0, 0, type_code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.astype(big_endian_dtype).tobytes()


# ----------------------------------------------------------------- IDX parser


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "dtype, code, be",
    [(np.uint8, 0x08, ">u1"), (np.int8, 0x09, ">i1"), (np.int16, 0x0B, ">i2"), (np.int32, 0x0C, ">i4"),
     (np.float32, 0x0D, ">f4"), (np.float64, 0x0E, ">f8")],
)
def test_read_idx_round_trip(tmp_path, compress, dtype, code, be):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((5, 3, 4)) * 50).astype(dtype)
    data = _idx_bytes(arr, code, be)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(data) if compress else data)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == (5, 3, 4)
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable


def test_read_idx_mnist_like_magics(tmp_path):
    imgs = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    labels = np.array([3, 7], dtype=np.uint8)
    (tmp_path / "i").write_bytes(_idx_bytes(imgs, 0x08, ">u1"))
    (tmp_path / "l").write_bytes(_idx_bytes(labels, 0x08, ">u1"))
    np.testing.assert_array_equal(read_idx(tmp_path / "i", expected_magic=2051), imgs)
    np.testing.assert_array_equal(read_idx(tmp_path / "l", expected_magic=2049), labels)
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        read_idx(tmp_path / "l", expected_magic=2051)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_rejects_truncated_and_overlong(tmp_path, compress):
    data = _idx_bytes(np.arange(100, dtype=np.uint8).reshape(10, 10), 0x08, ">u1")
    wrap = gzip.compress if compress else (lambda b: b)
    bad = tmp_path / "bad"
    bad.write_bytes(wrap(data[:-1]))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(bad)
    bad.write_bytes(wrap(data + b"\x00"))
    with pytest.raises(ValueError, match="longer than its header"):
        read_idx(bad)
    bad.write_bytes(wrap(data[:6]))  # inside the size fields
    with pytest.raises(ValueError, match="truncated"):
        read_idx(bad)


def test_read_idx_rejects_cut_gzip_stream_and_bad_magic(tmp_path):
    data = _idx_bytes(np.arange(1000, dtype=np.uint8) % 251, 0x08, ">u1")
    gz = gzip.compress(data)
    bad = tmp_path / "cut.gz"
    bad.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(bad)
    for header in (b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00", b"PK\x03"):
        bad.write_bytes(header + data[4:])
        with pytest.raises(ValueError, match="(invalid IDX magic|too short)"):
            read_idx(bad)


# ----------------------------------------------------------------- real MNIST


def test_real_mnist_train_and_test(mnist_root):
    x, y = load_mnist("train", root=mnist_root)
    assert x.shape == (60000, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (60000,) and y.dtype == np.int64
    assert np.bincount(y, minlength=10).tolist() == TRAIN_COUNTS
    assert x.min() == 0.0 and x.max() == 1.0
    # pixels are k/255 exactly as float32
    np.testing.assert_array_equal(np.round(x[:50] * 255) / np.float32(255), x[:50])
    xt, yt = load_mnist("test", root=mnist_root)
    assert xt.shape == (10000, 1, 28, 28) and yt.shape == (10000,)
    assert np.bincount(yt, minlength=10).sum() == 10000 and set(np.unique(yt)) == set(range(10))
    assert not np.array_equal(x[:100], xt[:100])


def test_returned_arrays_do_not_alias_the_cache(mnist_root):
    x, y = load_mnist("test", root=mnist_root)
    x0, y0 = x[0].copy(), y[0]
    x[:] = -1.0
    y[:] = 42
    x2, y2 = load_mnist("test", root=mnist_root)
    np.testing.assert_array_equal(x2[0], x0)
    assert y2[0] == y0


def test_env_var_root(mnist_root, monkeypatch, tmp_path):
    monkeypatch.setenv("LATENTDIST_DATA", str(mnist_root))
    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "cache"))
    _, y = load_mnist("test", n=10, seed=0)
    assert y.shape == (10,)


def test_digits_and_seeded_subset(mnist_root):
    full_x, full_y = load_mnist("test", root=mnist_root)
    x, y = load_mnist("test", root=mnist_root, digits=[3, 8], n=700, seed=1)
    assert x.shape == (700, 1, 28, 28) and set(np.unique(y)) <= {3, 8}
    x2, y2 = load_mnist("test", root=mnist_root, digits=(8, 3), n=700, seed=1)
    np.testing.assert_array_equal(x, x2)
    x3, _ = load_mnist("test", root=mnist_root, digits=[3, 8], n=700, seed=2)
    assert not np.array_equal(x, x3)
    # every returned image is an image of those classes, and none is drawn twice
    rows = {full_x[i].tobytes(): i for i in np.flatnonzero(np.isin(full_y, [3, 8]))}
    idx = [rows[img.tobytes()] for img in x]
    assert len(set(idx)) == 700 and idx == sorted(idx)
    np.testing.assert_array_equal(full_y[idx], y)
    # all of one class
    _, y4 = load_mnist("test", root=mnist_root, digits=5)
    assert len(y4) == (full_y == 5).sum() and np.all(y4 == 5)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"split": "val"}, ValueError, "split"),
        ({"n": 0}, ValueError, "n must be >= 1"),
        ({"n": 10001}, ValueError, "n=10001 exceeds the 10000"),
        ({"n": 2000, "digits": [1]}, ValueError, r"exceeds the 1135 .* digits \[1\]"),
        ({"digits": [10]}, ValueError, "digits must be <= 9"),
        ({"digits": []}, ValueError, "digits must name at least one"),
        ({"digits": "3"}, TypeError, "digits must be an integer"),
        ({"digits": 2.0}, TypeError, "digits must be an int or a sequence"),
        ({"download": "yes"}, TypeError, "download must be a bool"),
    ],
)
def test_bad_arguments(mnist_root, kwargs, exc, match):
    kwargs = {"split": "test", **kwargs}
    with pytest.raises(exc, match=match):
        load_mnist(root=mnist_root, **kwargs)


def test_missing_files_say_where_and_how(tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTDIST_DATA", raising=False)
    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(download=False)
    msg = str(err.value)
    assert str(tmp_path / "cache" / "data" / "mnist") in msg
    assert "LATENTDIST_DATA" in msg and "LATENTDIST_MNIST_URL" in msg and "download=False" in msg
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "elsewhere")):
        load_mnist(root=tmp_path / "elsewhere", download=False)


def _copy_root(src: Path, dst: Path, corrupt: str | None = None) -> Path:
    (dst / "mnist").mkdir(parents=True)
    for f in GZ_FILES:
        if f == corrupt:
            data = bytearray((src / "mnist" / f).read_bytes())
            data[-20] ^= 0xFF
            (dst / "mnist" / f).write_bytes(bytes(data))
        elif f.startswith("t10k"):
            shutil.copyfile(src / "mnist" / f, dst / "mnist" / f)
        else:
            os.symlink(src / "mnist" / f, dst / "mnist" / f)
    return dst


def test_corrupt_file_fails_md5(mnist_root, tmp_path):
    root = _copy_root(mnist_root, tmp_path / "root", corrupt="t10k-labels-idx1-ubyte.gz")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz fails its md5 check"):
        load_mnist("test", root=root)
    load_mnist("train", root=root, n=5)  # the intact split still loads


def test_raw_uncompressed_files_are_accepted(mnist_root, tmp_path):
    root = tmp_path / "raw"
    (root / "mnist").mkdir(parents=True)
    for f in GZ_FILES:
        if f.startswith("t10k"):
            (root / "mnist" / f[:-3]).write_bytes(gzip.decompress((mnist_root / "mnist" / f).read_bytes()))
        else:
            os.symlink(mnist_root / "mnist" / f, root / "mnist" / f)
    xr, yr = load_mnist("test", root=root)
    xg, yg = load_mnist("test", root=mnist_root)
    np.testing.assert_array_equal(xr, xg)
    np.testing.assert_array_equal(yr, yg)


# ----------------------------------------------------------------- download (offline: file:// mirrors)


def _mirror(src: Path, dst: Path, corrupt: str | None = None) -> str:
    dst.mkdir(parents=True)
    for f in GZ_FILES:
        data = (src / "mnist" / f).read_bytes()
        if f == corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        (dst / f).write_bytes(data)
    return dst.as_uri() + "/"


def test_download_from_mirror(mnist_root, tmp_path):
    good = _mirror(mnist_root, tmp_path / "good")
    missing = (tmp_path / "nowhere").as_uri() + "/"
    root = download_mnist(tmp_path / "root", mirrors=[missing, good], progress=False)
    assert root == tmp_path / "root"
    assert sorted(p.name for p in (root / "mnist").iterdir()) == sorted(GZ_FILES)
    for f in GZ_FILES:
        assert (root / "mnist" / f).read_bytes() == (mnist_root / "mnist" / f).read_bytes()
    _, y = load_mnist("train", root=root)
    assert np.bincount(y).tolist() == TRAIN_COUNTS


def test_download_rejects_bad_checksum_and_writes_nothing(mnist_root, tmp_path):
    bad = _mirror(mnist_root, tmp_path / "bad", corrupt="train-labels-idx1-ubyte.gz")
    with pytest.raises(OSError, match="train-labels-idx1-ubyte.gz: md5 .* != expected d53e105e"):
        download_mnist(tmp_path / "root", mirrors=[bad], progress=False)
    written = sorted(p.name for p in (tmp_path / "root" / "mnist").iterdir())
    assert "train-labels-idx1-ubyte.gz" not in written
    assert not any(name.endswith(".tmp") for name in written)
    # a second mirror with the good file completes the set, keeping what is already there
    good = _mirror(mnist_root, tmp_path / "good")
    download_mnist(tmp_path / "root", mirrors=[bad, good], progress=False)
    assert sorted(p.name for p in (tmp_path / "root" / "mnist").iterdir()) == sorted(GZ_FILES)


def test_load_downloads_by_default_from_module_mirrors_into_the_cache(mnist_root, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_mod, "MIRRORS", (_mirror(mnist_root, tmp_path / "m"),))
    monkeypatch.delenv("LATENTDIST_MNIST_URL", raising=False)
    monkeypatch.setenv("LATENTDIST_DATA", str(tmp_path / "data"))  # empty: the download goes to the cache
    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "cache"))
    x, y = load_mnist("test", n=3, seed=0)
    assert x.shape == (3, 1, 28, 28)
    assert (tmp_path / "cache" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
    assert not (tmp_path / "data").exists()


# ----------------------------------------------------------------- sklearn digits


def test_load_digits():
    x, y = load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(np.round(x * 16) / 16, x)
    assert set(np.unique(y)) == set(range(10))
    xs, ys = load_digits(n=100, seed=3)
    xs2, _ = load_digits(n=100, seed=3)
    xs3, _ = load_digits(n=100, seed=4)
    np.testing.assert_array_equal(xs, xs2)
    assert not np.array_equal(xs, xs3) and xs.shape == (100, 1, 8, 8)
    with pytest.raises(ValueError, match="n=1798 exceeds"):
        load_digits(n=1798)
    with pytest.raises(TypeError, match="n must be an integer"):
        load_digits(n=1.5)
