"""Independent units of work (tasks), a per-task result cache, and one executor interface, three backends.

A :class:`Task` is ``fn(**config, **context)``: ``config`` is the JSON-like description that identifies
the task (a seed, a capacity, a model, a dataset, plus the settings it uses) and is hashed into its cache
key; ``context`` carries what is needed but derived (arrays, a trained feature network, ``progress``) and
is not hashed. :func:`run_tasks` loads every task already in its :class:`TaskStore`, sends the others to
an executor, stores each result the moment it arrives (atomically, digest-framed: a killed run leaves no
half-written entry) and returns the results in task order. A run killed half-way and restarted therefore
recomputes only the tasks that had not finished.

Backends (all behind :class:`Executor`; the same config gives bit-identical numbers on each, since a
task's numbers depend only on its own seeds and the worker's BLAS/torch thread count, which is pinned):

- :class:`SerialExecutor` runs tasks in this process, in order (the default);
- :class:`ProcessExecutor` runs them on ``workers`` local processes (``spawn``), each pinned to
  ``threads`` BLAS/OpenMP/torch threads so that ``workers * threads <= cores``;
- :class:`RayExecutor` sends them to a Ray cluster (``pip install latentdist[ray]``) as remote functions
  requesting ``num_cpus`` each; results come back to the calling process, which writes them into the
  same store, so a cluster run and a laptop run share cached results.

A task that raises does not stop the others: they finish and are stored, then :class:`TaskFailure` is
raised naming each failed task with its config and traceback.

Example
-------
>>> from latentdist.tasks import Task, run_tasks
>>> run_tasks([Task(pow, {"base": 2, "exp": e}, name="pow") for e in range(4)], progress=False)
[1, 2, 4, 8]
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentdist._progress import progress_bar
from latentdist._validation import check_int, check_option

__all__ = ["Task", "TaskStore", "TaskFailure", "Executor", "SerialExecutor", "ProcessExecutor",
           "RayExecutor", "make_executor", "run_tasks", "use_executor", "current_executor", "BACKENDS",
           "available_cores", "TASK_LOG"]

BACKENDS = ("serial", "processes", "ray")


@dataclass(frozen=True)
class Task:
    """One independent unit of work: ``fn(**config, **context)``.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled to worker processes and Ray workers).
    config : dict
        JSON-like keyword arguments (dict, list, str, number, bool, None) that identify the task; hashed,
        with ``name`` and ``version``, into :attr:`key`.
    name : str
        Readable identifier (also the stem of the cache file), e.g. ``'R3/spiral-seed2'``.
    version : int
        Bump when ``fn``'s computation changes, so cached results of the old code are not reused.
    context : dict
        Further keyword arguments that are not part of the identity (derived arrays, ``progress``).
    num_cpus : int
        CPUs the task asks for (Ray's resource request; a process worker has ``threads`` of them).
    """

    fn: Callable[..., Any]
    config: Mapping[str, Any]
    name: str = "task"
    version: int = 0
    context: Mapping[str, Any] = field(default_factory=dict)
    num_cpus: int = 1

    @property
    def key(self) -> str:
        """16 hex digits of SHA-256 over ``name``, ``version`` and the canonical ``config``."""
        from latentdist.experiments.cache import config_hash

        return config_hash(self.name, dict(self.config), self.version)

    def run(self) -> Any:
        """``fn(**config, **context)`` in this process."""
        return self.fn(**self.config, **self.context)

    def describe(self, limit: int = 1500) -> str:
        """``name`` and the JSON of ``config`` (cut at ``limit`` characters) for error reports."""
        text = json.dumps(self.config, sort_keys=True, default=repr)
        return f"{self.name} (key {self.key}) config={text[:limit]}{' ...' if len(text) > limit else ''}"


class TaskStore:
    """Per-task result cache: one digest-framed pickle ``<root>/<name>-<key>.pkl`` per finished task.

    ``root=None`` stores nothing (every task runs). Entries are written atomically by
    :func:`latentdist.experiments.cache.store_file`; a damaged entry warns and counts as missing.
    """

    def __init__(self, root: str | os.PathLike | None):
        self.root = None if root is None else Path(root)

    def path(self, task: Task) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in task.name)
        return self.root / f"{safe}-{task.key}.pkl"

    def load(self, task: Task) -> tuple[bool, Any]:
        """``(True, result)`` for a cached task, ``(False, None)`` otherwise."""
        from latentdist.experiments.cache import load_file

        if self.root is None:
            return False, None
        path = self.path(task)
        if not path.is_file():
            return False, None
        out = load_file(path)  # None also for a damaged entry (warned): recompute it
        return (out is not None), out

    def store(self, task: Task, result: Any) -> None:
        """Write ``result`` (an unwritable cache is skipped: the runner already warned about it)."""
        from latentdist.experiments.cache import store_file

        if self.root is None or result is None:
            return
        with contextlib.suppress(OSError):
            store_file(self.path(task), result)


class TaskFailure(RuntimeError):
    """One or more tasks raised; ``failures`` holds ``(task, traceback text)``; the others were stored."""

    def __init__(self, failures: list[tuple[Task, str]], n_tasks: int):
        self.failures = failures
        parts = [f"{len(failures)} of {n_tasks} task(s) failed (the others finished and were cached):"]
        for task, tb in failures:
            parts.append(f"--- {task.describe()}\n{tb.rstrip()}")
        super().__init__("\n".join(parts))


# ------------------------------------------------------------------------------------------ executors

#: (succeeded, result or traceback text, seconds)
Outcome = tuple[bool, Any, float]


def _execute(task: Task) -> Outcome:
    """Run one task, catching its exception as text (a traceback object does not cross processes)."""
    start = time.perf_counter()
    try:
        return True, task.run(), time.perf_counter() - start
    except Exception:  # noqa: BLE001 - reported with the task's config by run_tasks
        return False, traceback.format_exc(), time.perf_counter() - start


def available_cores() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def pin_threads(threads: int) -> None:
    """Limit BLAS/OpenMP (threadpoolctl) and torch intra-op threads of this process to ``threads``."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)  # for libraries loaded after this point
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    import torch

    torch.set_num_threads(threads)


class Executor(ABC):
    """Runs tasks; :meth:`run` yields ``(index, outcome)`` as each task finishes, in any order."""

    @abstractmethod
    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[int, Outcome]]:
        """Execute ``tasks`` and yield ``(position in tasks, (ok, result or traceback, seconds))``."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for executors without workers
        """Release workers (a no-op where there are none)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class SerialExecutor(Executor):
    """Tasks one after the other in this process (``threads`` pins this process's threads if given)."""

    def __init__(self, threads: int | None = None):
        self.threads = None if threads is None else check_int(threads, "threads", low=1)

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[int, Outcome]]:
        if self.threads is not None:
            pin_threads(self.threads)
        for i, task in enumerate(tasks):
            yield i, _execute(task)


class ProcessExecutor(Executor):
    """``workers`` local processes (``spawn``: no forked torch/OpenMP state), each pinned to ``threads``
    BLAS/torch threads; ``threads`` defaults to ``max(1, cores // workers)`` so that
    ``workers * threads <= cores``."""

    def __init__(self, workers: int, threads: int | None = None):
        self.workers = check_int(workers, "workers", low=1)
        cores = available_cores()
        self.threads = max(1, cores // self.workers) if threads is None else check_int(threads, "threads",
                                                                                        low=1)
        self._pool = None

    def _get_pool(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=pin_threads, initargs=(self.threads,))
        return self._pool

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[int, Outcome]]:
        from concurrent.futures import as_completed

        pool = self._get_pool()
        futures = {pool.submit(_execute, task): i for i, task in enumerate(tasks)}
        for fut in as_completed(futures):
            try:
                outcome = fut.result()
            except Exception:  # noqa: BLE001 - the worker died or the task did not pickle
                outcome = (False, traceback.format_exc(), 0.0)
            yield futures[fut], outcome

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _ray_execute(task: Task, threads: int) -> Outcome:
    pin_threads(threads)
    return _execute(task)


class RayExecutor(Executor):
    """Tasks as Ray remote functions, each requesting ``task.num_cpus`` CPUs (and pinned to that many
    threads). Connects with ``ray.init(address=address)`` unless Ray is already initialised (``address``
    ``None`` starts a local instance; ``'auto'`` joins the cluster this machine belongs to)."""

    def __init__(self, address: str | None = None):
        try:
            import ray
        except ImportError as exc:
            raise ImportError("backend 'ray' needs Ray: pip install 'latentdist[ray]'") from exc
        self._ray = ray
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[int, Outcome]]:
        ray = self._ray
        remote = ray.remote(_ray_execute)
        refs = {remote.options(num_cpus=t.num_cpus).remote(t, t.num_cpus): i for i, t in enumerate(tasks)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                outcome = ray.get(done[0])
            except Exception:  # noqa: BLE001 - a worker crashed or the object was lost
                outcome = (False, traceback.format_exc(), 0.0)
            yield refs[done[0]], outcome


def make_executor(backend: str = "serial", *, workers: int = 1, address: str | None = None) -> Executor:
    """The executor of ``backend`` ('serial', 'processes', 'ray'); ``workers`` is for 'processes'."""
    backend = check_option(backend, "backend", BACKENDS)
    workers = check_int(workers, "workers", low=1)
    if backend == "ray":
        return RayExecutor(address)
    if address is not None:
        raise ValueError(f"address is only used by backend 'ray', got backend {backend!r}")
    if backend == "processes" or workers > 1:
        return ProcessExecutor(workers)
    return SerialExecutor()


_CURRENT: list[Executor] = []

#: ``{'name': ..., 'seconds': ...}`` of every task computed in this process (the runner reports it)
TASK_LOG: list[dict] = []


@contextlib.contextmanager
def use_executor(executor: Executor | None) -> Iterator[None]:
    """Within the block, :func:`run_tasks` calls without ``executor=`` use ``executor``."""
    if executor is None:
        yield
        return
    _CURRENT.append(executor)
    try:
        yield
    finally:
        _CURRENT.pop()


def current_executor() -> Executor:
    """The executor set by :func:`use_executor`, else a :class:`SerialExecutor`."""
    return _CURRENT[-1] if _CURRENT else SerialExecutor()


def run_tasks(tasks: Sequence[Task], *, executor: Executor | None = None,
              store: TaskStore | str | os.PathLike | None = None, progress: bool = True,
              desc: str = "tasks", timings: dict | None = None) -> list[Any]:
    """Results of ``tasks`` in order: cached ones loaded from ``store``, the rest computed on ``executor``.

    Parameters
    ----------
    tasks : sequence of Task
    executor : Executor, optional
        Defaults to :func:`current_executor` (serial unless :func:`use_executor` set one).
    store : TaskStore or path, optional
        Where finished tasks are cached; each result is stored as soon as it arrives. ``None``: no cache.
    progress : bool
        A bar counting finished tasks (off outside a terminal, see :mod:`latentdist._progress`).
    desc : str
        Label of the bar.
    timings : dict, optional
        Filled with ``task name -> seconds`` for the tasks computed in this call.

    Returns
    -------
    list
        ``fn(**config, **context)`` of each task, in the order of ``tasks``.

    Raises
    ------
    TaskFailure
        After every other task has finished (and been stored), when some task raised; names each
        failed task's config and traceback.
    """
    tasks = list(tasks)
    for i, t in enumerate(tasks):
        if not isinstance(t, Task):
            raise TypeError(f"tasks[{i}] must be a Task, got {type(t).__name__}")
    store = store if isinstance(store, TaskStore) else TaskStore(store)
    executor = executor or current_executor()
    results: list[Any] = [None] * len(tasks)
    todo: list[int] = []
    with progress_bar(total=len(tasks), progress=progress, desc=desc) as bar:
        for i, task in enumerate(tasks):
            hit, value = store.load(task)
            if hit:
                results[i] = value
                bar.update(1)
            else:
                todo.append(i)
        failures = []
        for j, (ok, value, seconds) in executor.run([tasks[i] for i in todo]):
            task = tasks[todo[j]]
            if ok:
                results[todo[j]] = value
                store.store(task, value)
                TASK_LOG.append({"name": task.name, "seconds": seconds})
                if timings is not None:
                    timings[task.name] = seconds
            else:
                failures.append((task, value))
            bar.update(1)
    if failures:
        raise TaskFailure(failures, len(tasks))
    return results
