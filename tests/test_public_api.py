"""The top-level API: public names only, lazy, and no plotting stack on a star import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import latentdist as ld

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return out.stdout.strip()


def test_star_import_loads_no_plotting_and_no_experiments():
    got = _run("import sys\nfrom latentdist import *\n"
               "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' "
               "or m.startswith('latentdist.experiments') or m == 'latentdist.cli'))")
    assert got == "[]"


def test_top_level_names_are_lazy():
    got = _run("import sys, latentdist as ld\nbefore = 'latentdist.latents' in sys.modules\n"
               "g = ld.Gaussian(2)\nprint(before, 'latentdist.latents' in sys.modules, g.dim)")
    assert got == "False True 2"


@pytest.mark.parametrize("name", ld.__all__)
def test_every_public_name_resolves_and_is_public(name):
    assert not name.startswith("_") or name == "__version__"
    assert getattr(ld, name) is not None


def test_all_holds_no_internals_or_modules():
    for name in ("cli", "experiments", "ensemble", "OT_THREADS", "StackedGenerators", "check_callbacks"):
        assert name not in ld.__all__
    assert ld.MLP is ld.generators.MLP and ld.Gaussian is ld.latents.Gaussian
    assert ld.FitSettings is ld.settings.FitSettings
    with pytest.raises(AttributeError, match="no attribute"):
        ld.not_a_name  # noqa: B018


@pytest.mark.parametrize("module", ["profile.py", "optimal.py", "estimator.py"])
def test_core_modules_import_only_public_names(module):
    tree = ast.parse((ROOT / "latentdist" / module).read_text())
    private = [f"{node.module}.{alias.name}" for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("latentdist")
               and not (node.module or "").startswith("latentdist._")
               for alias in node.names if alias.name.startswith("_")]
    assert private == []


CORE_MODULES = ["latentdist.distances.registry", "latentdist.distances.batched",
                "latentdist.distances.minibatch",
                "latentdist.settings", "latentdist.optim", "latentdist._seeding", "latentdist.stacked",
                "latentdist.fitting"]


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
