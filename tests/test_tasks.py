"""Tasks, their per-task cache and the three executor backends (latentdist.tasks)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from latentdist.tasks import (
    TASK_LOG,
    ProcessExecutor,
    SerialExecutor,
    Task,
    TaskFailure,
    TaskStore,
    make_executor,
    run_tasks,
)

TINY_R6 = {"datasets": {"ring8": {"name": "gaussian_mixture_ring", "params": {"k": 8}}},
           "distances": ["w2", "mmd"], "n": 200, "width": 4, "steps": 5, "optimal_steps": 5, "batch_size": 32}


def _power(base: float, exp: int) -> float:
    if exp == 2:
        raise ValueError("exp 2 is refused on purpose")
    return base**exp


def _tasks(exps) -> list[Task]:
    return [Task(_power, {"base": 3.0, "exp": e}, name=f"power-{e}", version=1) for e in exps]


def test_results_in_task_order_and_read_back_from_the_store(tmp_path):
    store = TaskStore(tmp_path)
    assert run_tasks(_tasks([0, 1, 3]), store=store, progress=False) == [1.0, 3.0, 27.0]
    assert len(list(tmp_path.glob("power-*.pkl"))) == 3
    before = len(TASK_LOG)
    assert run_tasks(_tasks([3, 1, 0, 4]), store=store, progress=False) == [27.0, 3.0, 1.0, 81.0]
    assert [t["name"] for t in TASK_LOG[before:]] == ["power-4"]  # only the new task ran
    other = Task(_power, {"base": 3.0, "exp": 3}, name="power-3", version=2)  # new code version
    assert other.key != _tasks([3])[0].key


def test_task_checks_its_inputs():
    with pytest.raises(TypeError, match=r"tasks\[1\] must be a Task"):
        run_tasks([_tasks([1])[0], _power], progress=False)
    with pytest.raises(ValueError, match="backend"):
        make_executor("threads")
    with pytest.raises(ValueError, match="workers must be >= 1"):
        make_executor("processes", workers=0)
    with pytest.raises(ValueError, match="address"):
        make_executor("serial", address="10.0.0.1:6379")
    with pytest.raises(TypeError, match="JSON-like"):
        _ = Task(_power, {"base": object(), "exp": 1}).key


@pytest.mark.parametrize("backend", ["serial", "processes"])
def test_failed_task_names_its_config_and_traceback_and_the_others_are_cached(backend, tmp_path):
    executor = SerialExecutor() if backend == "serial" else ProcessExecutor(workers=2, threads=1)
    with executor, pytest.raises(TaskFailure) as info:
        run_tasks(_tasks([0, 1, 2, 3]), executor=executor, store=tmp_path, progress=False)
    msg = str(info.value)
    assert "1 of 4 task(s) failed" in msg and "power-2" in msg and '"exp": 2' in msg
    assert "Traceback" in msg and "exp 2 is refused on purpose" in msg
    (task, tb), = info.value.failures
    assert task.config["exp"] == 2 and "ValueError" in tb
    assert sorted(p.name.split("-")[1] for p in tmp_path.glob("power-*.pkl")) == ["0", "1", "3"]


def test_killed_claim_run_recomputes_only_the_missing_tasks(tmp_path):
    """SIGKILL a real claim run right after its first task is stored; the rerun computes only the other
    task, and the table equals an uninterrupted run's."""
    from latentdist.experiments import run_experiment

    units = tmp_path / "units"
    script = textwrap.dedent(f"""
        import os, signal
        from latentdist.experiments import _common, run_experiment
        store = _common.UnitStore.store
        def store_then_die(self, task, result):
            store(self, task, result)
            os.kill(os.getpid(), signal.SIGKILL)  # killed between two tasks
        _common.UnitStore.store = store_then_die
        run_experiment("R6", "quick", write=False, progress=False, use_cache=False,
                       unit_dir={str(units)!r}, **{TINY_R6!r})
    """)
    env = {**os.environ, "LATENTDIST_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(list((units / "R6").glob("*.json"))) == 1  # the first task, whole; the second never started

    before = len(TASK_LOG)
    resumed = run_experiment("R6", "quick", write=False, progress=False, use_cache=False, unit_dir=str(units),
                             **TINY_R6)
    assert len(TASK_LOG) - before == 1  # only the missing task ran
    assert len(list((units / "R6").glob("*.json"))) == 2
    fresh = run_experiment("R6", "quick", write=False, progress=False, use_cache=False,
                           unit_dir=str(tmp_path / "other"), **TINY_R6)
    pd.testing.assert_frame_equal(resumed.table, fresh.table)


@contextlib.contextmanager
def _one_thread():
    """This process at one BLAS/torch thread (what each worker gets), restored afterwards."""
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(old)


def _small_profile(executor):
    from latentdist.generators import MLP
    from latentdist.latents import Gaussian, Uniform
    from latentdist.profile import complexity_profile

    x = np.random.default_rng(0).normal(size=(300, 2))
    prof = complexity_profile({"gauss": Gaussian(2), "unif": Uniform(2)}, x, MLP(depth=1).at([2, 6]),
                              steps=15, n_restarts=2, seed=3, progress=False, executor=executor)
    return prof.drop(columns="fit_time")


@pytest.fixture(scope="module")
def serial_profile():
    with _one_thread():
        serial = _small_profile(None)  # the plain loop, no executor
        assert serial.equals(_small_profile(SerialExecutor()))
    return serial


def test_processes_give_bit_identical_profiles(serial_profile):
    with ProcessExecutor(workers=2, threads=1) as ex:
        pd.testing.assert_frame_equal(_small_profile(ex), serial_profile, check_exact=True)


@pytest.mark.slow  # starting Ray takes 1-3 minutes on 2 loaded cores; CI does not install Ray (it skips)
def test_ray_gives_bit_identical_profiles(serial_profile):
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install 'latentdist[ray]'): serial and processes only")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        pd.testing.assert_frame_equal(_small_profile(make_executor("ray")), serial_profile, check_exact=True)
    finally:
        ray.shutdown()


def test_repro_cli_options(capsys):
    from latentdist.cli import build_parser, main

    args = build_parser().parse_args(["repro", "--workers", "2", "--backend", "ray", "--address", "auto"])
    assert (args.workers, args.backend, args.address) == (2, "ray", "auto")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["repro", "--workers", "0"])
    assert main(["repro", "--only", "R1", "--address", "10.0.0.1:6379"]) == 2
    assert "--address" in capsys.readouterr().err
