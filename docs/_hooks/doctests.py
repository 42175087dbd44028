"""MkDocs hook: render bare doctest blocks in docstrings as code.

numpydoc puts ``>>>`` examples in an ``Examples`` section, which mkdocstrings renders as code; a doctest
written in a module's prose (or under a heading griffe does not know) would otherwise be read as
Markdown, where an output line such as ``[8, 16, 32]`` is a link reference that fails the strict build.
This preprocessor indents every block of lines that starts with ``>>>`` (up to the next blank line) into
a Markdown code block. It runs after the fenced-code preprocessor, so fenced blocks are already stashed
and left alone.
"""

from __future__ import annotations

import mkdocs.plugins
from markdown import Extension
from markdown.preprocessors import Preprocessor


class _DoctestBlocks(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        in_block = False
        for line in lines:
            if not in_block and line.lstrip().startswith(">>>"):
                in_block = True
                indent = len(line) - len(line.lstrip())
                out.append("")  # an indented code block must follow a blank line
            elif in_block and not line.strip():
                in_block = False
            out.append("    " + line[indent:] if in_block else line)
        return out


class DoctestBlocks(Extension):
    def extendMarkdown(self, md):  # noqa: N802 (Python-Markdown's API name)
        # superfences stashes fenced code at priority 25; running below it leaves that code untouched
        md.preprocessors.register(_DoctestBlocks(md), "latentdist_doctests", 20)


@mkdocs.plugins.event_priority(100)  # before mkdocstrings copies the extension list for docstrings
def on_config(config):
    config.markdown_extensions.append(DoctestBlocks())
    return config
