"""Execute the notebooks in place in quick mode, so the committed copies carry their outputs.

The documentation site renders the notebooks as committed (mkdocs-jupyter with ``execute: false``), so after
a change to the library run::

    .venv/bin/python docs/execute_notebooks.py              # all six
    .venv/bin/python docs/execute_notebooks.py 02 03        # the ones whose name starts with 02 or 03

MNIST (notebook 05) is read from ``$LATENTDIST_DATA`` or the user cache. Each kernel runs in a temporary
folder and the experiments write their figures into its ``figures/`` (the notebooks show shrunken copies),
so the committed outputs name no machine path; results come from the experiment cache when the
configuration is unchanged. Each notebook's wall time is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(path: Path, workdir: Path, timeout: int = 1800) -> float:
    """Run ``path`` top to bottom in a fresh kernel started in ``workdir`` and write it back with outputs;
    returns seconds."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # start clean, so no output of an earlier run survives a cell that now prints less
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    env = {"LATENTDIST_MODE": "quick", "LATENTDIST_FIGURES": "figures", "LATENTDIST_PROGRESS": "0",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    os.environ.update(env)
    start = time.perf_counter()
    # record_timing=False keeps per-cell timestamps out of the committed file (smaller, stable diffs)
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()
    seconds = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    if errors:
        raise RuntimeError(f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*",
                        help="run only the notebooks whose file name starts with one of these")
    args = parser.parse_args(argv)
    paths = sorted(p for p in NOTEBOOKS.glob("*.ipynb")
                   if not args.prefixes or any(p.name.startswith(pre) for pre in args.prefixes))
    if not paths:
        parser.error(f"no notebook in {NOTEBOOKS} matches {args.prefixes}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="latentdist-notebooks-") as workdir:
        for path in paths:
            seconds = execute(path, Path(workdir))
            size = path.stat().st_size / 1024
            print(f"{path.name}: {seconds:.1f} s, {size:.0f} KiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
