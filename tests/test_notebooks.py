"""The notebooks: committed executed (the documentation site renders them as committed), and each still runs
top to bottom in a clean kernel, in quick mode, as a copy in a temporary directory (never in place).

The notebooks use the experiment cache (``latentdist._io.cache_dir('experiments')``), so after
``latentdist repro --quick`` their experiment cells only redraw; the by-hand API cells always compute.
Refresh the committed outputs with ``python docs/execute_notebooks.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
#: Embedded figures are shrunk (dpi 80, thumbnails); a notebook past this size has a figure at full size.
MAX_BYTES = 1_500_000


def _errors(cells) -> list:
    return [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


def test_notebooks_are_committed_executed():
    assert len(NOTEBOOKS) == 6, [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        counts = [c.get("execution_count") for c in code]
        # one clean kernel, top to bottom: 1, 2, 3, ... (a stale or hand-edited output breaks the sequence)
        assert counts == list(range(1, len(code) + 1)), (
            f"{path.name} is not committed executed top to bottom; run docs/execute_notebooks.py")
        assert not _errors(nb["cells"]), f"{path.name} was committed with an error output"
        images = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, f"{path.name} shows no figure"
        assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size} bytes"


#: Public calls a reader should see made by hand (not only through ``run_experiment``).
API_CALLS = ("get_distance(", "noise_floor(", "bootstrap(", "two_sample_test(", "latent_data_distance(",
             "complexity_profile(", "eps_complexity(", "optimal_latent(", "complexity_report(", "train_gan(",
             "fit_prior(", "train_autoencoder(", "train_dae(", "mnist_metrics(", "mode_coverage(")


def test_notebooks_walk_through_the_api_before_the_experiment():
    for path in NOTEBOOKS:
        code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        first = next((i for i, src in enumerate(code) if "run_experiment(" in src), len(code))
        before = "\n".join(code[:first])
        calls = [call for call in API_CALLS if call in before]
        # the set-up cell, then at least two cells of by-hand work with at least one public call
        assert first >= 3 and calls, f"{path.name}: {first} cells and the calls {calls} before its experiment"


@pytest.mark.slow  # each trains small models by hand and runs one claim in quick mode: about a minute
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch, mnist_root):
    monkeypatch.setenv("LATENTDIST_MODE", "quick")
    monkeypatch.setenv("LATENTDIST_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("LATENTDIST_PROGRESS", "0")
    monkeypatch.setenv("LATENTDIST_DATA", str(mnist_root))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    for cell in nb.cells:  # the committed outputs must not mask a cell that no longer produces any
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    assert not _errors(nb.cells)
    if "01_" not in path.name:  # every experiment notebook writes its figures where it was told
        assert list((tmp_path / "figures").glob("R*.png")), "no figure written"
