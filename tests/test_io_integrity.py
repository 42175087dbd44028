"""Checkpoint integrity (SHA-256 framing) and no-lost-work behaviour of latentdist._io and its callers.

Covers issue 18 items 1-2: byte flips, truncation, garbage, old-format and foreign files never load
silently and raise one ``CheckpointError`` naming the file; stale temporary files of killed writers are
removed; written files honour the umask; an unwritable cache is detected before computing.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import latentdist
from latentdist import _io
from latentdist._io import CheckpointError
from latentdist._seeding import make_torch_generator
from latentdist.data import make_dataset
from latentdist.experiments import cache, runner
from latentdist.experiments.result import ExperimentResult
from latentdist.generators import MLP
from latentdist.latents import Gaussian
from latentdist.metrics import FeatureRecipe, MNISTFeatures, features
from latentdist.train import MLPCritic, train_gan

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _gan(x, **kw):
    args = dict(loss="wgan-gp", steps=4, n_critic=1, batch_size=16, seed=3, progress=False, log_every=2,
                checkpoint_every=2)
    args.update(kw)
    return train_gan(x, Gaussian(2), MLP(width=8, depth=1), MLPCritic(width=8, depth=1), **args)


@pytest.fixture(scope="module")
def ring():
    return make_dataset("gaussian_mixture_ring", 200, seed=0).x


@pytest.fixture(scope="module")
def gan_checkpoint(ring, tmp_path_factory):
    """The bytes of a real training checkpoint (critic, optimisers, RNG states, history)."""
    d = tmp_path_factory.mktemp("ckpt")
    _gan(ring, checkpoint_dir=d)
    return (d / "gan.pt").read_bytes()


def _flip(data: bytes, offset: int, width: int = 8) -> bytes:
    return data[:offset] + bytes(b ^ 0xFF for b in data[offset:offset + width]) + data[offset + width:]


# ----------------------------------------------------------------- checkpoint integrity


def test_round_trip_and_header(tmp_path):
    obj = {"w": torch.arange(5.0), "step": 3, "history": [{"loss": 1.5}]}
    p = _io.save_checkpoint(obj, tmp_path / "c.pt")
    raw = p.read_bytes()
    assert raw.startswith(b"LDCKPT")
    buf = io.BytesIO()
    torch.save(obj, buf)
    assert len(raw) == len(buf.getvalue()) + 48  # 8-byte magic, 32-byte digest, 8-byte length
    back = _io.load_checkpoint(p)
    assert torch.equal(back["w"], obj["w"]) and back["history"] == obj["history"]
    assert latentdist.CheckpointError is CheckpointError and issubclass(CheckpointError, ValueError)


def test_flips_inside_tensor_data_that_torch_alone_loads_silently_are_caught(tmp_path):
    weights = torch.linspace(-3.0, 7.0, 64, dtype=torch.float64)
    p = _io.save_checkpoint({"w": weights}, tmp_path / "c.pt")
    raw = p.read_bytes()
    at = raw.find(weights.numpy().tobytes())
    assert at > 48
    for offset in (at, at + 8 * 17, at + 8 * 63):
        bad = _flip(raw, offset)
        # Without the digest the damage is invisible: torch loads different numbers without complaint.
        silently = torch.load(io.BytesIO(bad[48:]), weights_only=True)["w"]
        assert not torch.equal(silently, weights)
        p.write_bytes(bad)
        with pytest.raises(CheckpointError, match="corrupted") as info:
            _io.load_checkpoint(p)
        assert str(p) in str(info.value) and "resume=False" in str(info.value)


def test_flips_anywhere_in_a_training_checkpoint_never_load(gan_checkpoint, tmp_path):
    raw = gan_checkpoint
    p = tmp_path / "gan.pt"
    offsets = sorted({0, 4, 8, 20, 40, 44, *np.linspace(48, len(raw) - 8, 40).astype(int).tolist()})
    for offset in offsets:
        p.write_bytes(_flip(raw, offset))
        with pytest.raises(CheckpointError, match=re.escape(str(p))):
            _io.load_checkpoint(p)
    p.write_bytes(raw)
    assert _io.load_checkpoint(p)["step"] == 4  # the intact bytes do load


@pytest.mark.parametrize("keep", [0, 1, 7, 47, 48, 100, -1])
def test_truncated_checkpoints_never_load(gan_checkpoint, tmp_path, keep):
    p = tmp_path / "gan.pt"
    p.write_bytes(gan_checkpoint[: keep if keep >= 0 else len(gan_checkpoint) + keep])
    with pytest.raises(CheckpointError, match="not a latentdist checkpoint|truncated") as info:
        _io.load_checkpoint(p)
    assert str(p) in str(info.value)


def test_padded_garbage_old_format_missing_and_foreign_files(gan_checkpoint, tmp_path):
    p = tmp_path / "x.pt"
    cases = {
        "padded": gan_checkpoint + b"\x00" * 16,
        "garbage": np.random.default_rng(0).bytes(5000),
        "text": b"hello, this is not a checkpoint\n" * 10,
    }
    buf = io.BytesIO()
    torch.save({"version": 1, "step": 2}, buf)  # the unframed format written before the digest
    cases["old format"] = buf.getvalue()
    for data in cases.values():
        p.write_bytes(data)
        with pytest.raises(CheckpointError, match=re.escape(str(p))):
            _io.load_checkpoint(p)
    with pytest.raises(CheckpointError, match="cannot be read"):
        _io.load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="cannot be read"):
        _io.load_checkpoint(tmp_path)  # a directory
    # An intact frame around a payload weights_only refuses (arbitrary pickled objects) still fails clearly.
    _io.write_verified_bytes(p, pickle.dumps(types.SimpleNamespace(a=1), protocol=2))
    with pytest.raises(CheckpointError, match="passed its digest check") as info:
        _io.load_checkpoint(p)
    assert "weights_only" not in str(info.value)  # never advise loading arbitrary code


def test_resume_from_a_damaged_or_foreign_checkpoint_raises_and_resume_false_recovers(ring, gan_checkpoint,
                                                                                      tmp_path):
    p = tmp_path / "gan.pt"
    for bad in (_flip(gan_checkpoint, len(gan_checkpoint) // 2), gan_checkpoint[:-100], b"garbage"):
        p.write_bytes(bad)
        with pytest.raises(CheckpointError, match="resume=False") as info:
            _gan(ring, checkpoint_dir=tmp_path, resume=True)
        assert str(p) in str(info.value)
    _io.save_checkpoint({"recipe_hash": "abc"}, p)  # intact, but not a training checkpoint
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        _gan(ring, checkpoint_dir=tmp_path, resume=True)
    fresh = _gan(ring, checkpoint_dir=tmp_path, resume=False)  # overwrites the bad file
    assert _io.load_checkpoint(p)["step"] == 4 and len(fresh.history) == 2
    resumed = _gan(ring, checkpoint_dir=tmp_path, resume=True)
    pd.testing.assert_frame_equal(fresh.history, resumed.history)


# ----------------------------------------------------------------- atomic writes: umask, stale temps


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002], ids=["022", "077", "002"])
def test_written_files_honour_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        a = _io.atomic_write_text(tmp_path / "a.txt", "x")
        b = _io.save_checkpoint({"w": torch.ones(1)}, tmp_path / "b.pt")
    finally:
        os.umask(old)
    for p in (a, b):
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_are_removed_only_when_their_writer_is_gone_or_they_are_old(tmp_path):
    target = tmp_path / "r.json"
    host = _io._host_tag()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        old = time.time() - 2 * _io.STALE_AFTER_SECONDS
        temps = {
            f".r.json.{host}-{_dead_pid()}.ab12cd34.tmp": ("fresh", False),  # writer killed: removed
            f".r.json.{host}-{live.pid}.ab12cd34.tmp": ("fresh", True),  # a live concurrent writer: kept
            f".r.json.{host}-{live.pid}.ee12cd34.tmp": ("old", False),  # ... unless it stalled for long
            ".r.json.k3j_h5g6.tmp": ("fresh", True),  # old-style name, no pid: only the age rule applies
            ".r.json.z9y_x8w7.tmp": ("old", False),
            f".r.json.00000000-{_dead_pid()}.ab12cd34.tmp": ("fresh", True),  # another host's pid: age rule
            f".other.json.{host}-{_dead_pid()}.ab12cd34.tmp": ("old", True),  # another target: untouched
        }
        for name, (age, _) in temps.items():
            (tmp_path / name).write_bytes(b"partial")
            if age == "old":
                os.utime(tmp_path / name, (old, old))
        _io.atomic_write_json(target, {"a": 1})
    finally:
        live.kill()
        live.wait()
    for name, (_, kept) in temps.items():
        assert (tmp_path / name).exists() == kept, name
    assert target.read_text().strip().startswith("{")


_KILLED_WRITER = """
import os, sys, time
import torch
from latentdist import _io

def hang(fd):  # the data is written; die before the rename, as a SIGKILL mid-write would
    print("writing", flush=True)
    time.sleep(120)

_io.os.fsync = hang
if sys.argv[2] == "checkpoint":
    _io.save_checkpoint({"w": torch.zeros(1000)}, sys.argv[1])
else:
    _io.atomic_write_bytes(sys.argv[1], b"x" * 100000)
"""


@pytest.mark.parametrize("kind", ["bytes", "checkpoint"])
def test_debris_of_a_sigkilled_writer_is_removed_on_the_next_write(tmp_path, kind):
    target = tmp_path / "out.bin"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(target), kind], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    debris = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(debris) == 1 and f"-{proc.pid}." in debris[0] and not target.exists()
    if kind == "checkpoint":
        _io.save_checkpoint({"w": torch.ones(2)}, target)
        assert torch.equal(_io.load_checkpoint(target)["w"], torch.ones(2))
    else:
        _io.atomic_write_bytes(target, b"new")
        assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


# ----------------------------------------------------------------- the experiment cache and the runner


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    """R1 and R2 replaced by a fast stand-in; records whether a warning was issued before computing."""
    calls = []

    def compute(config, *, progress=True):
        calls.append(config["seed"])
        return ExperimentResult("R1", pd.DataFrame({"x": [config["seed"]], "y": [1.5]}), {"s": 1})

    module = types.SimpleNamespace(TITLE="stand-in", VERSION=1, compute=compute, plot=lambda result, out: [])
    monkeypatch.setattr(runner, "experiment_module", lambda claim: module)
    return calls


def _block_cache(tmp_path, monkeypatch, how):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("LATENTDIST_CACHE", str(blocker / "cache") if how == "under a file" else str(blocker))
    return blocker


@pytest.mark.parametrize("how", ["under a file", "is a file"])
def test_unwritable_cache_warns_once_before_computing_and_keeps_the_outputs(stand_in, tmp_path, monkeypatch,
                                                                            how):
    _block_cache(tmp_path, monkeypatch, how)
    seen_before_compute = []
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        original = runner.experiment_module("R1").compute

        def compute(config, *, progress=True):
            seen_before_compute.append(len(record))
            return original(config, progress=progress)

        runner.experiment_module("R1").compute = compute
        res = runner.run_experiment("R1", "quick", out=out, use_cache=False)
    msgs = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]
    assert len(msgs) == 1 and seen_before_compute == [1]
    assert "LATENTDIST_CACHE" in msgs[0] and str(tmp_path / "a-file") in msgs[0]
    assert not res.cached and (out / "R1.csv").exists() and (out / "R1.json").exists()


def test_run_all_with_an_unwritable_cache_warns_once_and_writes_everything(stand_in, tmp_path, monkeypatch):
    _block_cache(tmp_path, monkeypatch, "under a file")
    out = tmp_path / "out"
    with pytest.warns(RuntimeWarning, match="LATENTDIST_CACHE") as record:
        results = runner.run_all(["R1", "R2"], "quick", out=out)
    assert len([w for w in record if issubclass(w.category, RuntimeWarning)]) == 1
    assert set(results) == {"R1", "R2"} and len(stand_in) == 2
    assert (out / "R1.csv").exists() and (out / "R2.json").exists() and (out / "repro_summary.json").exists()


@pytest.mark.skipif(IS_ROOT or sys.platform == "win32", reason="root ignores permission bits")
def test_read_only_cache_directory_is_detected(stand_in, tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        monkeypatch.setenv("LATENTDIST_CACHE", str(ro))
        with pytest.warns(RuntimeWarning, match="not writable"):
            runner.run_experiment("R1", "quick", out=tmp_path / "out")
    finally:
        os.chmod(ro, 0o700)


def test_corrupted_or_old_cache_entries_are_recomputed_with_a_warning(stand_in, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "cache"))
    first = runner.run_experiment("R1", "quick", write=False)
    path = cache.cache_path("R1", first.key)
    raw = path.read_bytes()
    assert runner.run_experiment("R1", "quick", write=False).cached and len(stand_in) == 1
    buf = io.BytesIO()
    pickle.dump(first, buf)
    for bad in (_flip(raw, len(raw) // 2), raw[:-10], buf.getvalue()):  # flipped, torn, unframed pickle
        path.write_bytes(bad)
        with pytest.warns(RuntimeWarning, match=re.escape(f"cached result {path}")):
            res = runner.run_experiment("R1", "quick", write=False)
        assert not res.cached
        assert path.read_bytes() != bad  # rewritten, so the next run is a hit again
        assert runner.run_experiment("R1", "quick", write=False).cached
    assert len(stand_in) == 4


# ----------------------------------------------------------------- the feature classifier's model files

TINY = FeatureRecipe(channels=(4, 8), hidden=16, epochs=1, batch_size=32)


@pytest.fixture
def data_root(mnist_root, tmp_path, monkeypatch):
    """A writable data root that sees the real MNIST files, a private cache, and training replaced by a
    seeded untrained tiny net (the lookup logic is under test here, not the training)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "mnist").symlink_to(mnist_root / "mnist")
    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "cache"))
    calls = []

    def train(cls, x, y, *, recipe, seed, device, progress):
        calls.append(seed)
        net = features._build_net(recipe, make_torch_generator(seed))
        return cls(net, recipe=recipe, seed=seed, recipe_hash="untrained", device=device)

    monkeypatch.setattr(MNISTFeatures, "train", classmethod(train))
    return root, calls


def _same_weights(a, b):
    sa, sb = a.net.state_dict(), b.net.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_read_only_data_roots_model_is_used(data_root, tmp_path):
    root, calls = data_root
    first = MNISTFeatures.load_or_train(root=root, recipe=TINY, progress=False)
    files = list((root / "models").glob("mnist_features_*.pt"))
    assert len(calls) == 1 and len(files) == 1
    os.chmod(root / "models", 0o555)
    os.chmod(root, 0o555)  # read-only by mode bits, which the lookup honours even for root
    try:
        again = MNISTFeatures.load_or_train(root=root, recipe=TINY, progress=False)
    finally:
        os.chmod(root, 0o755)
        os.chmod(root / "models", 0o755)
    assert len(calls) == 1 and _same_weights(first, again) and again.accuracy == first.accuracy
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())
    raw = files[0].read_bytes()
    files[0].write_bytes(_flip(raw, len(raw) // 2))
    with pytest.raises(CheckpointError, match="retrained") as info:
        MNISTFeatures.load_or_train(root=root, recipe=TINY, progress=False)
    assert str(files[0]) in str(info.value)


def test_cache_is_the_write_fallback_and_nothing_writable_still_works(data_root, tmp_path, monkeypatch):
    root, calls = data_root
    os.chmod(root, 0o555)
    try:
        first = MNISTFeatures.load_or_train(root=root, recipe=TINY, progress=False)
        assert len(list((tmp_path / "cache" / "models").glob("mnist_features_*.pt"))) == 1
        assert not (root / "models").exists()
        again = MNISTFeatures.load_or_train(root=root, recipe=TINY, progress=False)
        assert len(calls) == 1 and _same_weights(first, again)
        _block_cache(tmp_path, monkeypatch, "under a file")
        with pytest.warns(RuntimeWarning, match="LATENTDIST_CACHE"):
            unsaved = MNISTFeatures.load_or_train(root=root, recipe=TINY, progress=False)
    finally:
        os.chmod(root, 0o755)
    assert len(calls) == 2 and _same_weights(first, unsaved) and not (root / "models").exists()


def test_cache_file_helpers_round_trip_and_recompute_garbage(tmp_path):
    p = tmp_path / "units" / "gan-0.pkl"
    assert cache.load_file(p) is None  # absent: a silent miss
    cache.store_file(p, {"fid": 1.5, "grid": np.arange(4)})
    back = cache.load_file(p)
    assert back["fid"] == 1.5 and np.array_equal(back["grid"], np.arange(4))
    p.write_bytes(b"\x80\x04garbage")
    with pytest.warns(RuntimeWarning, match="not a latentdist checkpoint"):
        assert cache.load_file(p) is None
    _io.write_verified_bytes(p, b"\x80\x04intact frame, broken pickle")
    with pytest.warns(RuntimeWarning, match="no longer loads"):
        assert cache.load_file(p) is None


def test_an_unwritable_output_folder_is_refused_before_computing(stand_in, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "cache"))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="out .*not a directory"):
        runner.run_experiment("R1", "quick", out=blocker / "figures")
    with pytest.raises(ValueError, match="LATENTDIST_FIGURES"):
        runner.run_all(["R1"], "quick", out=blocker)
    assert stand_in == []  # nothing was computed
    runner.run_experiment("R1", "quick", out=blocker / "figures", write=False)  # no output, no check
    assert stand_in == [0]


def test_no_module_bypasses_the_digest_check():
    """Every checkpoint or cache read goes through latentdist._io (torch) or experiments.cache (pickle);
    a direct torch.load / pickle.load elsewhere would load a damaged file silently."""
    package = Path(latentdist.__file__).parent
    allowed = {package / "_io.py", package / "experiments" / "cache.py"}
    pattern = re.compile(r"\b(torch\.load|torch\.save|pickle\.loads?|pickle\.Unpickler)\s*\(")
    offenders = [f"{p.relative_to(package.parent)}:{i}"
                 for p in sorted(package.rglob("*.py")) if p not in allowed
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == [], f"use _io.save/load_checkpoint or cache.store_file/load_file: {offenders}"


def test_unwritable_checkpoint_dir_fails_before_training(tmp_path, ring):
    # A directory below a regular file cannot be created even by root; it must fail at validation,
    # before a single step runs (not at the first save, after the work).
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"checkpoint_dir=.*cannot hold checkpoints"):
        _gan(ring, checkpoint_dir=blocker / "sub")
