"""Every notebook runs top to bottom in a clean kernel, in quick mode, writing into a temporary directory.

The notebooks use the experiment cache (``latentdist._io.cache_dir('experiments')``), so after
``latentdist repro --quick`` they only redraw; on a fresh machine each computes its claims once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_notebooks_exist_and_are_committed_clean():
    assert len(NOTEBOOKS) == 6, [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch, mnist_root):
    monkeypatch.setenv("LATENTDIST_MODE", "quick")
    monkeypatch.setenv("LATENTDIST_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("LATENTDIST_PROGRESS", "0")
    monkeypatch.setenv("LATENTDIST_DATA", str(mnist_root))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    if "01_" not in path.name:  # every experiment notebook writes its figures where it was told
        assert list((tmp_path / "figures").glob("R*.png")), "no figure written"
