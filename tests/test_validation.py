"""The shared helpers: validation, seeding, atomic IO (and the progress switch)."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from latentdist import _io
from latentdist._progress import progress_bar, progress_enabled
from latentdist._seeding import make_rng, make_torch_generator, seed_int, spawn_seeds
from latentdist._validation import (
    check_array,
    check_device,
    check_int,
    check_option,
    check_pair,
    check_samples,
    check_scalar,
    check_weights,
    to_numpy,
    to_tensor,
)

# ----------------------------------------------------------------- check_array / check_samples


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (None, TypeError, "data must be an array or tensor, got None"),
        ("abc", TypeError, "data must be an array or tensor"),
        (np.array([[1 + 2j]]), TypeError, "data must hold real numbers"),
        (np.array([[True]]), TypeError, "data must hold real numbers"),
        (torch.tensor([[True]]), TypeError, "data must hold real numbers"),
        (np.array([["a"]]), TypeError, "data must hold real numbers"),
        ([[1.0, 2.0], [3.0]], ValueError, "data could not be read as a rectangular array"),
        (np.array([[np.nan, 1.0]]), ValueError, "data contains NaN or inf"),
        (torch.tensor([[1.0, float("inf")]]), ValueError, "data contains NaN or inf"),
        (np.zeros((2, 2, 2)), ValueError, r"data must be 2-D, got shape \(2, 2, 2\)"),
        (np.zeros(3), ValueError, r"reshape\(-1, 1\)"),
        (np.zeros((0, 3)), ValueError, "data needs at least 1 samples, got 0"),
        (np.zeros((3, 0)), ValueError, "data must have at least one feature"),
    ],
)
def test_check_samples_rejects_with_the_argument_name(bad, exc, match):
    with pytest.raises(exc, match=match):
        check_samples(bad, "data")


def test_check_samples_bounds_and_dim():
    with pytest.raises(ValueError, match="x needs at least 5 samples, got 4"):
        check_samples(np.zeros((4, 2)), min_samples=5)
    with pytest.raises(ValueError, match="x must have 3 features"):
        check_samples(np.zeros((4, 2)), dim=3)
    assert check_samples(np.zeros((5, 3)), min_samples=5, dim=3).shape == (5, 3)


def test_integer_input_becomes_float_and_allow_int_false_rejects():
    a = check_array(np.arange(6).reshape(3, 2), "a")
    assert a.dtype == np.float64
    t = check_array(torch.arange(6).reshape(3, 2), "t")
    assert t.dtype == torch.float32
    with pytest.raises(TypeError, match="a must be floating point"):
        check_array(np.arange(3), "a", allow_int=False)
    with pytest.raises(TypeError, match="t must be floating point"):
        check_array(torch.arange(3), "t", allow_int=False)
    assert check_array(np.array([np.nan]), "a", finite=False).shape == (1,)


def test_tensors_keep_their_grad():
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = check_samples(x, "x")
    assert out is x and out.requires_grad
    y, z = check_pair(x * 2, x, ("y", "z"))
    assert y.requires_grad and y.grad_fn is not None
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 2.0))
    t = to_tensor(x * 3)
    assert t.requires_grad and t.grad_fn is not None
    assert to_numpy(x).dtype == np.float64  # detaches without error
    w = check_weights(torch.ones(4, requires_grad=True), 4)
    assert w.requires_grad


@given(
    arr=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
                   elements=st.floats(-1e6, 1e6)),
    data=st.data(),
)
def test_finite_data_passes_unchanged_and_one_bad_entry_is_caught(arr, data):
    out = check_samples(arr, "x")
    np.testing.assert_array_equal(out, arr)
    out_t = check_samples(torch.from_numpy(arr.copy()), "x")
    np.testing.assert_array_equal(out_t.numpy(), arr)
    i = data.draw(st.integers(0, arr.shape[0] - 1))
    j = data.draw(st.integers(0, arr.shape[1] - 1))
    bad = arr.copy()
    bad[i, j] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        check_samples(bad, "x")
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        check_samples(torch.from_numpy(bad), "x")


def test_check_pair_names_both_arguments():
    msg = "source and target must have the same number of features, got 2 and 3"
    with pytest.raises(ValueError, match=msg):
        check_pair(np.zeros((3, 2)), np.zeros((3, 3)), ("source", "target"))
    with pytest.raises(ValueError, match="target needs at least 2 samples"):
        check_pair(np.zeros((3, 2)), np.zeros((1, 2)), ("source", "target"), min_samples=2)


def test_check_weights():
    assert check_weights(None, 3) is None
    np.testing.assert_allclose(check_weights([1.0, 1.0, 2.0], 3), [0.25, 0.25, 0.5])
    with pytest.raises(ValueError, match="w must have length 3"):
        check_weights([1.0, 1.0], 3, "w")
    with pytest.raises(ValueError, match="w must be non-negative"):
        check_weights([1.0, -1.0, 1.0], 3, "w")
    with pytest.raises(ValueError, match="w must not be all zero"):
        check_weights([0.0, 0.0, 0.0], 3, "w")
    with pytest.raises(ValueError, match="w contains NaN"):
        check_weights([np.nan, 1.0, 1.0], 3, "w")


# ----------------------------------------------------------------- scalars, ints, options, devices


@pytest.mark.parametrize(
    "value, kwargs, exc, match",
    [
        (True, {}, TypeError, "eps must be a real number, got bool"),
        ("1.0", {}, TypeError, "eps must be a real number, got str"),
        (None, {}, TypeError, "eps must be a real number"),
        (float("nan"), {}, ValueError, "eps must be finite"),
        (float("inf"), {}, ValueError, "eps must be finite"),
        (-1.0, {"low": 0.0}, ValueError, "eps must be >= 0.0"),
        (0.0, {"low": 0.0, "low_inclusive": False}, ValueError, "eps must be > 0.0"),
        (2.0, {"high": 1.0}, ValueError, "eps must be <= 1.0"),
        (1.0, {"high": 1.0, "high_inclusive": False}, ValueError, "eps must be < 1.0"),
        (torch.ones(2), {}, TypeError, "eps must be a real number"),
    ],
)
def test_check_scalar_rejects(value, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        check_scalar(value, "eps", **kwargs)


def test_check_scalar_accepts_numeric_kinds():
    for v in (1, 1.5, np.float32(1.5), np.int64(2), torch.tensor(0.5)):
        out = check_scalar(v, "eps", low=0.0, high=2.0)
        assert isinstance(out, float) and out == float(v)


def test_check_int():
    assert check_int(np.int64(3), "k", low=0) == 3 and isinstance(check_int(np.int32(3), "k"), int)
    for bad in (True, 3.0, "3", None):
        with pytest.raises(TypeError, match="k must be an integer"):
            check_int(bad, "k")
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        check_int(0, "k", low=1)
    with pytest.raises(ValueError, match="k must be <= 5, got 6"):
        check_int(6, "k", high=5)


def test_check_option_lists_options():
    assert check_option("emd", "method", ["emd", "sinkhorn"]) == "emd"
    with pytest.raises(ValueError, match=r"unknown method 'EMD'; expected one of \['emd', 'sinkhorn'\]"):
        check_option("EMD", "method", ["emd", "sinkhorn"])
    with pytest.raises(TypeError, match="method must be one of"):
        check_option(1, "method", ["emd"])


def test_check_device():
    assert check_device(None) == torch.device("cpu")
    assert check_device("cpu") == torch.device("cpu")
    assert check_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert check_device("auto").type == expected
    with pytest.raises(ValueError, match="device must be"):
        check_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            check_device("cuda")


def test_to_numpy_and_to_tensor_dtypes():
    assert to_numpy(torch.ones(2, dtype=torch.float32)).dtype == np.float64
    assert to_numpy(np.ones(2), dtype=np.float32).dtype == np.float32
    t = to_tensor(np.ones(3))
    assert t.dtype == torch.float64 and t.device.type == "cpu"
    assert to_tensor(np.ones(3), dtype=torch.float32).dtype == torch.float32
    base = np.arange(6.0).reshape(2, 3)[:, ::2]  # non-contiguous
    np.testing.assert_array_equal(to_tensor(base).numpy(), base)


# ----------------------------------------------------------------- seeding


def test_same_seed_same_numbers():
    assert np.array_equal(make_rng(7).standard_normal(5), make_rng(7).standard_normal(5))
    assert not np.array_equal(make_rng(7).standard_normal(5), make_rng(8).standard_normal(5))
    a = torch.randn(5, generator=make_torch_generator(7))
    b = torch.randn(5, generator=make_torch_generator(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.randn(5, generator=make_torch_generator(8)))


def test_generators_pass_through_and_are_reduced_deterministically():
    g = np.random.default_rng(1)
    assert make_rng(g) is g
    tg = torch.Generator().manual_seed(1)
    assert make_torch_generator(tg) is tg
    assert seed_int(np.random.default_rng(3)) == seed_int(np.random.default_rng(3))
    assert seed_int(torch.Generator().manual_seed(3)) == seed_int(torch.Generator().manual_seed(3))
    g2 = np.random.default_rng(3)
    assert seed_int(g2) != seed_int(g2)  # the generator advances
    assert isinstance(seed_int(None), int)


@pytest.mark.parametrize("bad, exc, match", [(-1, ValueError, "seed must be non-negative"),
                                             (True, TypeError, "seed must be an int"),
                                             ("0", TypeError, "seed must be an int"),
                                             (1.5, TypeError, "seed must be an int")])
def test_bad_seeds(bad, exc, match):
    with pytest.raises(exc, match=match):
        make_rng(bad)


@given(seed=st.integers(0, 2**63 - 1), n=st.integers(1, 20))
def test_spawn_seeds_reproducible_and_distinct(seed, n):
    kids = spawn_seeds(seed, n)
    assert kids == spawn_seeds(seed, n) and len(kids) == n and len(set(kids)) == n
    assert all(isinstance(k, int) and 0 <= k < 2**63 for k in kids)
    assert spawn_seeds(seed, n + 1)[:n] == kids


def test_no_global_rng_state_touched():
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (checking it is untouched)
    t_state = torch.random.get_rng_state().clone()
    make_rng(1).standard_normal(10)
    torch.randn(3, generator=make_torch_generator(1))
    spawn_seeds(5, 3)
    seed_int(np.random.default_rng(0))
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.equal(torch.random.get_rng_state(), t_state)


# ----------------------------------------------------------------- atomic IO


def _leftovers(directory):
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_atomic_writes_round_trip_and_leave_no_temp_files(tmp_path):
    p = _io.atomic_write_bytes(tmp_path / "sub" / "deeper" / "a.bin", b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    _io.atomic_write_bytes(p, b"replaced")
    assert p.read_bytes() == b"replaced"
    _io.atomic_write_text(tmp_path / "t.txt", "héllo")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo"
    _io.atomic_write_json(tmp_path / "r.json", {"b": 1, "a": [1.5, None], "p": tmp_path})
    loaded = json.loads((tmp_path / "r.json").read_text())
    assert loaded == {"a": [1.5, None], "b": 1, "p": str(tmp_path)}
    _io.atomic_torch_save({"w": torch.arange(3.0)}, tmp_path / "ck.pt")
    assert torch.equal(_io.load_checkpoint(tmp_path / "ck.pt")["w"], torch.arange(3.0))
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub" / "deeper") == []


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
def test_failed_write_keeps_old_file_and_cleans_up(tmp_path, monkeypatch, fail_at):
    target = tmp_path / "result.json"
    _io.atomic_write_text(target, "old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(_io.os, fail_at, boom)
    with pytest.raises(OSError, match="disk full"):
        _io.atomic_write_text(target, "new" * 1000)
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_failed_torch_save_writes_nothing(tmp_path):
    with pytest.raises(Exception):
        _io.atomic_torch_save(lambda: None, tmp_path / "x.pt")  # lambdas do not pickle
    assert list(tmp_path.iterdir()) == []


def test_concurrent_reader_never_sees_a_torn_file(tmp_path):
    target = tmp_path / "big.bin"
    payloads = [bytes([i]) * (1 << 20) for i in (1, 2)]
    _io.atomic_write_bytes(target, payloads[0])
    stop = threading.Event()
    seen = []

    def reader():
        while not stop.is_set():
            seen.append(target.read_bytes())

    th = threading.Thread(target=reader)
    th.start()
    try:
        for i in range(30):
            _io.atomic_write_bytes(target, payloads[i % 2])
    finally:
        stop.set()
        th.join()
    assert seen and all(s in payloads for s in seen)
    assert _leftovers(tmp_path) == []


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "c"))
    d = _io.cache_dir("data", "mnist")
    assert d == tmp_path / "c" / "data" / "mnist" and d.is_dir()
    monkeypatch.delenv("LATENTDIST_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _io.cache_dir() == tmp_path / "xdg" / "latentdist"


# ----------------------------------------------------------------- progress switch


def test_progress_switch(monkeypatch):
    monkeypatch.setenv("LATENTDIST_PROGRESS", "1")
    assert progress_enabled(True) and not progress_enabled(False)
    assert list(progress_bar(range(3), progress=False)) == [0, 1, 2]
    assert progress_bar(range(3), progress=False).disable
    monkeypatch.setenv("LATENTDIST_PROGRESS", "0")
    assert not progress_enabled(True)
    assert os.environ["LATENTDIST_PROGRESS"] == "0"
