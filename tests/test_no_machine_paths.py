"""No machine paths in the repository: docs, notebooks and code use $LATENTDIST_DATA or the user cache.

An absolute home, work or temporary path (under ``/root``, ``/home``, ``/work``, ``/Users`` or
``/tmp``) only exists on the machine it was written on; for anyone who clones the repository it leads
nowhere. This scans every tracked text file, notebook outputs included.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: An absolute path starting at one of these roots, not inside a longer word or URL path.
MACHINE_PATH = re.compile(r"(?<![\w.~$/-])/(?:root|home|work|Users|tmp)/[\w.-]")

#: Files allowed to contain such text, and why.
ALLOWED = {
    "tests/test_no_machine_paths.py": "states the patterns it looks for",
}

#: Lines allowed anywhere, and why: the executed notebooks print the temporary figures folder that
#: docs/execute_notebooks.py creates for the run (a throwaway name, not a path anyone is told to use).
ALLOWED_LINES = re.compile(r"figures -> /tmp/latentdist-figures-\w+")


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout (an sdist or an installed copy): no tracked-file list")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name]


def test_the_pattern_can_fail():
    # Built from parts so that this file itself holds no machine path for the repository-wide scans.
    hits = [f"LATENTDIST_DATA=/{'work'}/shared/data", f"see /{'root'}/.cache/x", f"(/{'home'}/me/data)",
            f"'/{'tmp'}/run1'", f"/{'Users'}/ana/mnist"]
    misses = ["$LATENTDIST_DATA/mnist", "~/.cache/latentdist", "http://host/tmp/x", f"docs/{'work'}/page.md",
              "$TMPDIR/full_r4", "a/home/b"]
    assert all(MACHINE_PATH.search(h) for h in hits)
    assert not any(MACHINE_PATH.search(m) for m in misses)


def test_no_tracked_file_holds_a_machine_path():
    found = []
    for name in _tracked_files():
        path = REPO / name
        if name in ALLOWED or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:  # binary (figures)
            continue
        for lineno, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if MACHINE_PATH.search(ALLOWED_LINES.sub("", line)):
                found.append(f"{name}:{lineno}: {line.strip()[:120]}")
    assert not found, "machine paths (use $LATENTDIST_DATA, the user cache or a relative path):\n" + \
        "\n".join(found)
