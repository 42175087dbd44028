"""The documentation site: theory citations resolve, the API pages cover the package, the site builds.

Code and prose cite the theory as ``docs/theory.md §4``, ``docs/theory.md §6 R5`` or
``docs/theory.md P4`` / ``A2``. Each cited section must be a heading of the cited page: ``## 4. ...`` or
``### 4.2 ...`` for a section number, ``### P4 ...`` for a labelled property, anchor or claim.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# Where citations may live: the package, its tests, benchmarks, notebooks and the top-level prose.
CITING = ["latentdist", "tests", "benchmarks", "notebooks", "docs", "README.md", "paper_repro.md",
          "CONTRIBUTING.md"]
SUFFIXES = {".py", ".md", ".ipynb"}
# One cited section: §4, §4.2, P4, A2, R5.
_TOKEN = r"(?:§\d+(?:\.\d+)*|[PAR]\d+)"
# A citation: the page, then one or more sections joined by ',', '-', '–', 'and' or spaces.
CITATION = re.compile(rf"docs/([\w/-]+\.md)\s+({_TOKEN}(?:\s*(?:,|-|–|and)?\s*{_TOKEN})*)")
API_MODULES = ["data", "distances", "generators", "latents", "estimator", "profile", "optimal", "complexity",
               "train", "metrics", "experiments"]


def _citing_files() -> list[Path]:
    files: list[Path] = []
    for entry in CITING:
        path = ROOT / entry
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [p for p in sorted(path.rglob("*")) if p.suffix in SUFFIXES and p.is_file()
                      and ".ipynb_checkpoints" not in p.parts]
    return files


def _citations() -> list[tuple[str, str, str]]:
    """(file:line, page, section) for every cited section in the repository."""
    found = []
    for path in _citing_files():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in CITATION.finditer(line):
                for token in re.findall(_TOKEN, match.group(2)):
                    found.append((f"{path.relative_to(ROOT)}:{lineno}", match.group(1), token))
    return found


def _headings(page: Path) -> list[str]:
    """Heading texts of a Markdown page, outside fenced code."""
    headings, fenced = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6}\s+(.*)", line)):
            headings.append(m.group(1).strip())
    return headings


def _has_section(headings: list[str], token: str) -> bool:
    if token.startswith("§"):  # '## 4. Title' or '### 4.2 Title'
        number = re.escape(token[1:])
        return any(re.match(rf"{number}\.?(\s|$)", h) for h in headings)
    return any(re.match(rf"{token}(\s|$)", h) for h in headings)  # '### P4 Title'


def test_citation_parser_reads_every_form():
    line = ("x (docs/theory.md §3, §6 R3) y docs/theory.md §3-§4 z docs/theory.md P4 and "
            "docs/theory.md §2 and P5")
    tokens = [t for m in CITATION.finditer(line) for t in re.findall(_TOKEN, m.group(2))]
    assert tokens == ["§3", "§6", "R3", "§3", "§4", "P4", "§2", "P5"]
    headings = ["1. Objects", "P4 Reparameterization invariance", "4.2 Sub"]
    assert _has_section(headings, "§1") and _has_section(headings, "P4") and _has_section(headings, "§4.2")
    assert not _has_section(headings, "§4") and not _has_section(headings, "P1")
    assert not _has_section(["P41 Other"], "P4") and not _has_section(["10. Ten"], "§1")


def test_theory_citations_point_at_existing_sections():
    citations = _citations()
    assert len(citations) > 30, "the citation scan found too little; has the citation form changed?"
    missing = []
    for where, page, token in citations:
        target = DOCS / page
        if not target.is_file():
            missing.append(f"{where}: docs/{page} does not exist")
        elif not _has_section(_headings(target), token):
            missing.append(f"{where}: docs/{page} has no heading for {token}")
    assert not missing, "\n".join(missing)


def test_no_citation_of_the_old_theory_file():
    # THEORY.md lived outside the repository; a citation of it leads nowhere for anyone who clones.
    stale = [f"{p.relative_to(ROOT)}:{i}" for p in _citing_files() if p != Path(__file__).resolve()
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if "THEORY.md" in line]
    assert not stale, stale


def test_api_pages_cover_every_subpackage():
    for name in API_MODULES:
        page = DOCS / "api" / f"{name}.md"
        assert page.is_file(), page
        assert f"::: latentdist.{name}" in page.read_text(encoding="utf-8"), page
        assert f"api/{name}.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), name


@pytest.mark.parametrize("name", API_MODULES)
def test_public_objects_have_docstrings(name):
    """The API reference is the docstrings: a public name without one would be an empty entry."""
    module = importlib.import_module(f"latentdist.{name}")
    assert inspect.getdoc(module), f"latentdist.{name} has no module docstring"
    undocumented = [attr for attr in getattr(module, "__all__", [])
                    if (inspect.isfunction(obj := getattr(module, attr)) or inspect.isclass(obj))
                    and not (obj.__doc__ or "").strip()]
    assert not undocumented, f"latentdist.{name}: {undocumented}"


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    """The site builds with --strict: a broken link or an unresolvable ``:::`` reference fails it."""
    for plugin in ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_jupyter"):
        pytest.importorskip(plugin)
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    for page in ["theory", "reproduction", "getting-started", *(f"api/{m}" for m in API_MODULES)]:
        assert (tmp_path / page / "index.html").is_file(), page
    assert len(list((tmp_path / "notebooks").glob("*/index.html"))) == 6


def test_doctest_hook_turns_bare_doctests_into_code():
    """A ``>>>`` block in a docstring's prose renders as code, not as Markdown (where '[1, 2]' is a link)."""
    markdown = pytest.importorskip("markdown")
    spec = importlib.util.spec_from_file_location("doctests_hook", DOCS / "_hooks" / "doctests.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    text = "Prose.\n\n>>> [f(x) for x in (1, 2)]\n[1, 2]\n\nMore prose."
    html = markdown.markdown(text, extensions=[hook.DoctestBlocks()])
    assert "<pre><code>&gt;&gt;&gt; [f(x) for x in (1, 2)]\n[1, 2]\n</code></pre>" in html
    assert "<p>More prose.</p>" in html
    assert "<code>" not in markdown.markdown(text)  # without the hook the doctest is plain text
