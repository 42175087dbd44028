"""MNIST on a fresh machine: fetch over HTTP from a local server, md5 rejection, fast failure, preflight.

The real idx files are served by ``http.server`` on 127.0.0.1 from ``$LATENTDIST_DATA/mnist`` (or from the
user cache when an earlier fetch put them there, as ``.ci/run`` does on a machine without a local copy); the
tests that need them skip, saying why, when neither holds them. Timeouts are short.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from latentdist.data import mnist as mnist_mod
from latentdist.data.mnist import (
    MNIST_URL_ENV,
    WITHOUT_MNIST,
    MNISTUnavailableError,
    download_mnist,
    ensure_mnist,
    load_mnist,
    mnist_mirrors,
)

GZ_FILES = [s + ".gz" for pair in mnist_mod.MNIST_FILES.values() for s in pair]
FIRST = GZ_FILES[0]  # fetched first, so corrupting it means nothing at all may be written


@pytest.fixture(scope="module")
def idx_dir() -> Path:
    env = os.environ.get("LATENTDIST_DATA")
    for src in ([Path(env) / "mnist"] if env else []) + [mnist_mod.cache_root("data", "mnist")]:
        if all((src / f).is_file() for f in GZ_FILES):
            return src
    pytest.skip("serving MNIST needs the idx .gz files in $LATENTDIST_DATA/mnist or the user cache")


@pytest.fixture
def serve():
    """``serve(directory) -> base URL`` of a threaded HTTP server on 127.0.0.1; shut down afterwards."""
    servers = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the test log clean
            pass

    def start(directory: Path) -> str:
        handler = functools.partial(Quiet, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fresh(tmp_path, monkeypatch) -> Path:
    """A machine without MNIST: no LATENTDIST_DATA, an empty (not yet created) cache."""
    monkeypatch.delenv("LATENTDIST_DATA", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("LATENTDIST_CACHE", str(cache))
    return cache


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there any more: connection refused


def _files_under(path: Path) -> list[str]:
    return sorted(p.name for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_fetch_over_http_verifies_and_caches(idx_dir, serve, fresh, monkeypatch):
    monkeypatch.setenv(MNIST_URL_ENV, serve(idx_dir))
    x, y = load_mnist("test", n=5, seed=0)  # download is the default
    assert x.shape == (5, 1, 28, 28) and y.shape == (5,)
    assert _files_under(fresh) == sorted(GZ_FILES)
    for f in GZ_FILES:
        assert (fresh / "data" / "mnist" / f).read_bytes() == (idx_dir / f).read_bytes()
    xa, ya = load_mnist("test", root=idx_dir.parent)
    np.testing.assert_array_equal(load_mnist("test")[1], ya)


def test_mirrors_are_tried_in_turn(idx_dir, serve, fresh, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(MNIST_URL_ENV, f"{_closed_port_url()}, {serve(empty)} {serve(idx_dir)}")
    assert len(mnist_mirrors()) == 3
    assert ensure_mnist(progress=False) == fresh / "data"
    assert _files_under(fresh) == sorted(GZ_FILES)


def test_local_directory_as_mirror(idx_dir, fresh, monkeypatch):
    monkeypatch.setenv(MNIST_URL_ENV, str(idx_dir.parent))  # the data root (holding mnist/) works too
    assert mnist_mirrors() == (idx_dir.resolve().as_uri() + "/",)
    download_mnist(progress=False)
    assert _files_under(fresh) == sorted(GZ_FILES)


def test_corrupted_file_is_rejected_and_nothing_is_cached(idx_dir, serve, fresh, tmp_path, monkeypatch):
    bad = tmp_path / "bad"
    shutil.copytree(idx_dir, bad)
    data = bytearray((bad / FIRST).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / FIRST).write_bytes(bytes(data))
    monkeypatch.setenv(MNIST_URL_ENV, serve(bad))
    with pytest.raises(MNISTUnavailableError) as err:
        load_mnist("train", n=3)
    msg = str(err.value)
    assert FIRST in msg and f"!= expected {mnist_mod.MNIST_MD5[FIRST]}" in msg and "not written" in msg
    assert _files_under(fresh) == []  # no file, no temporary file


def test_unreachable_mirrors_fail_fast_with_one_message(fresh, monkeypatch):
    url = _closed_port_url()
    monkeypatch.setenv(MNIST_URL_ENV, url)
    start = time.perf_counter()
    with pytest.raises(MNISTUnavailableError) as err:
        load_mnist("test")
    assert time.perf_counter() - start < 5.0
    msg = str(err.value)
    assert str(fresh / "data" / "mnist") in msg  # where it looked
    assert url + FIRST in msg  # which mirror, and what it answered
    assert MNIST_URL_ENV in msg and "LATENTDIST_DATA" in msg  # which variable to set
    assert WITHOUT_MNIST in msg  # how to run without MNIST
    assert isinstance(err.value, FileNotFoundError)
    assert not fresh.exists()  # a failed fetch creates no cache directory


def test_a_silent_mirror_times_out(fresh):
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        start = time.perf_counter()
        with pytest.raises(MNISTUnavailableError, match="timed out"):
            download_mnist(mirrors=[url], timeout=0.5, progress=False)
        assert time.perf_counter() - start < 5.0


def test_present_files_need_no_writable_cache(idx_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("a regular file where the cache's parent would be")
    monkeypatch.setenv("LATENTDIST_CACHE", str(blocker / "cache"))  # cannot be created
    monkeypatch.setenv("LATENTDIST_DATA", str(idx_dir.parent))
    monkeypatch.setenv(MNIST_URL_ENV, _closed_port_url())  # and must not be needed
    x, _ = load_mnist("test", n=2, seed=0)
    assert x.shape == (2, 1, 28, 28)
    assert ensure_mnist() == idx_dir.parent


def test_download_false_only_looks_on_disk(fresh, monkeypatch):
    monkeypatch.setenv(MNIST_URL_ENV, "http://127.0.0.1:9/never-contacted/")
    with pytest.raises(MNISTUnavailableError, match="download=False") as err:
        load_mnist("test", download=False)
    assert "never-contacted" not in str(err.value)


def test_repro_preflight_stops_before_computing(fresh, tmp_path, monkeypatch):
    out = tmp_path / "figures"
    env = {**os.environ, MNIST_URL_ENV: _closed_port_url(), "LATENTDIST_PROGRESS": "0"}
    run = subprocess.run([sys.executable, "-m", "latentdist.cli", "repro", "--quick", "--only", "R1", "R5",
                          "--out", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 1
    assert "R5 needs MNIST; nothing was computed" in run.stderr and WITHOUT_MNIST in run.stderr
    assert "Traceback" not in run.stderr
    assert not out.exists() and not fresh.exists()  # R1 was not run, nothing was cached


def test_claims_that_need_mnist_declare_it():
    import inspect

    from latentdist.experiments.config import CLAIMS
    from latentdist.experiments.runner import experiment_module

    assert experiment_module("R5").NEEDS_MNIST is True
    for claim in ("R1", "R2", "R3", "R4", "R6"):  # the claims the message tells users to run without it
        assert not getattr(experiment_module(claim), "NEEDS_MNIST", False)
    uses = ("load_mnist", "MNISTFeatures", "mnist_metrics")
    for claim in CLAIMS:  # a claim module that loads MNIST must say so, or the preflight skips it
        module = experiment_module(claim)
        if any(name in inspect.getsource(module) for name in uses):
            assert getattr(module, "NEEDS_MNIST", False) is True, f"{claim} uses MNIST: set NEEDS_MNIST"


def test_run_all_requires_mnist_before_computing(fresh, tmp_path, monkeypatch):
    from latentdist.experiments.runner import run_all

    monkeypatch.setenv(MNIST_URL_ENV, _closed_port_url())
    out = tmp_path / "figures"
    with pytest.raises(MNISTUnavailableError, match=r"R5 needs MNIST; nothing was computed"):
        run_all(["R1", "R5"], "quick", out=out, progress=False)
    assert not out.exists() and not fresh.exists()
