"""A real package: the README's example is example.py, ``--version``, sdist + wheel, a wheel that works
outside the checkout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _readme_example() -> str:
    match = re.search(r"## Ten lines\n\n```python\n(.*?)```", README, re.S)
    assert match, "README.md lost its '## Ten lines' python block"
    return match.group(1)


PYPROJECT = (REPO / "pyproject.toml").read_text(encoding="utf-8")


def _version() -> str:
    return re.search(r'^version = "([^"]+)"', PYPROJECT, re.M).group(1)


def test_example_py_is_the_readme_example():
    assert (REPO / "example.py").read_text(encoding="utf-8") == _readme_example()


def test_version_option():
    run = subprocess.run([sys.executable, "-m", "latentdist.cli", "--version"], capture_output=True,
                         text=True, check=True, cwd=REPO)
    assert run.stdout.strip() == f"latentdist {_version()}"


def test_py_typed_is_declared_package_data():
    assert (REPO / "latentdist" / "py.typed").is_file()
    table = PYPROJECT.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^latentdist = \[.*"py\.typed"', table, re.M)


def _run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    run = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert run.returncode == 0, f"{cmd} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


@pytest.mark.slow
def test_wheel_installs_and_runs_the_readme_example_outside_the_checkout(tmp_path):
    pytest.importorskip("build")
    pytest.importorskip("twine")
    dist = tmp_path / "dist"
    # --no-isolation builds with this environment's setuptools, so the test needs no package index.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, REPO], cwd=tmp_path)
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    _run([sys.executable, "-m", "twine", "check", "--strict", *wheels, *sdists])
    import zipfile

    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "latentdist/py.typed" in names and "latentdist/data/mnist.py" in names

    # A fresh venv outside the checkout, holding only the wheel. Its dependencies (torch, POT, ...) are
    # not installed again, which would need an index and GBs: a plain path in a .pth file appends this
    # environment's site-packages to sys.path. A plain path (not site.addsitedir) means that directory's
    # own .pth files are not processed, so the editable install of the checkout living there stays
    # inactive, and the wheel's copy, earlier on sys.path, is the one imported.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-index", "--no-deps", "--quiet",
          wheels[0]])
    target = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    (Path(target) / "_deps_from_dev_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "example.py").write_text((REPO / "example.py").read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg", LATENTDIST_PROGRESS="0")
    where = _run([py, "-c", "import latentdist; print(latentdist.__file__)"], cwd=work, env=env).stdout
    assert Path(where.strip()).resolve().is_relative_to(Path(target).resolve()), where
    assert _run([venv / "bin" / "latentdist", "--version"], cwd=work, env=env).stdout.strip() == \
        f"latentdist {_version()}"
    out = _run([py, "example.py"], cwd=work, env=env, timeout=900).stdout
    # The printed estimates are the README's quoted numbers (re-measure the README when this fails).
    printed = re.findall(r"D = [^\n]*?\(floor [^)]*\)", out)
    assert len(printed) == 3, out
    for text in printed:
        assert text in README, f"README.md does not quote the example's output {text!r}:\n{out}"
