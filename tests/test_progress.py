"""Progress bars: off in logs (stderr not a terminal), forced either way by LATENTDIST_PROGRESS."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from latentdist import _progress
from latentdist._progress import progress_bar, progress_enabled


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize("tty", [True, False])
def test_default_follows_whether_stderr_is_a_terminal(tty, monkeypatch):
    monkeypatch.delenv("LATENTDIST_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", _Stream(tty))
    assert progress_enabled() is tty
    assert progress_enabled(False) is False  # the per-call switch wins


@pytest.mark.parametrize(("value", "tty", "expected"),
                         [("1", False, True), ("true", False, True), ("0", True, False), ("off", True, False),
                          ("", True, True), ("", False, False)])
def test_environment_forces_either_way(value, tty, expected, monkeypatch):
    monkeypatch.setenv("LATENTDIST_PROGRESS", value)
    monkeypatch.setattr(sys, "stderr", _Stream(tty))
    assert progress_enabled() is expected


def test_stderr_without_isatty_counts_as_a_log(monkeypatch):
    monkeypatch.delenv("LATENTDIST_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", object())
    assert not _progress._stderr_is_terminal()
    assert progress_enabled() is False


def test_a_piped_process_writes_no_bar():
    # A child whose stderr is a pipe (a CI log): the bar must stay silent without any variable set.
    code = ("import os; os.environ.pop('LATENTDIST_PROGRESS', None)\n"
            "from latentdist._progress import progress_bar\n"
            "for _ in progress_bar(range(50), desc='loop'): pass\n")
    env = {k: v for k, v in os.environ.items() if k != "LATENTDIST_PROGRESS"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert run.stderr == ""
    forced = subprocess.run([sys.executable, "-c", code.replace("os.environ.pop('LATENTDIST_PROGRESS', None)",
                                                                "os.environ['LATENTDIST_PROGRESS'] = '1'")],
                            capture_output=True, text=True, env=env, check=True)
    assert "loop" in forced.stderr  # the same loop draws when forced, so the check above can fail


def test_disabled_bar_still_iterates(monkeypatch):
    monkeypatch.setenv("LATENTDIST_PROGRESS", "0")
    assert list(progress_bar(range(3))) == [0, 1, 2]
