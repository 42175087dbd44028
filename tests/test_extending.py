"""The contributor guide's pages (docs/extending/*.md) run: every python block of a page, in order."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from latentdist.distances import available_distances, unregister_distance

PAGES = sorted((Path(__file__).resolve().parents[1] / "docs" / "extending").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_the_four_pages_exist():
    assert {p.stem for p in PAGES} >= {"distance", "family", "latent", "experiment"}


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_code_runs_and_fits_on_one_screen(page, tmp_path, monkeypatch):
    blocks = BLOCK.findall(page.read_text())
    assert blocks, f"{page.name} has no python block"
    assert sum(b.count("\n") for b in blocks) <= 60, f"{page.name}: the example must fit on one screen"
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType(f"docs_extending_{page.stem}")  # dataclasses look their module up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    names = set(available_distances())
    try:
        for block in blocks:
            exec(compile(block, str(page), "exec"), module.__dict__)  # noqa: S102 - our own documentation
    finally:
        for name in set(available_distances()) - names:
            unregister_distance(name)
