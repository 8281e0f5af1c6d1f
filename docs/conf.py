"""Sphinx configuration for rtsync's documentation (built in CI with warnings as errors: tests/docs/test_sphinx.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document this checkout, whatever rtsync is installed

import rtsync  # noqa: E402
from rtsync.policy import CLOSE_CODES  # noqa: E402

project = "rtsync"
author = "the rtsync authors"
copyright = "the rtsync authors, MIT license"
release = version = rtsync.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
exclude_patterns = ["_build"]
default_role = "code"  # docstrings write `name` for code, as the source does
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
nitpicky = False
html_theme = "alabaster"
html_static_path: List[str] = []

VERDICTS = {
    "final": "final: ``RequestRejected``, not retried",
    "auth": "final: ``AuthenticationError``, not retried",
    "wait": "retried after a pause (10 s)",
    "retry": "retried with backoff",
}


class CloseCodes(SphinxDirective):
    """``.. rtsync-close-codes::`` renders `rtsync.policy.CLOSE_CODES`, so the page cannot drift from the code."""

    has_content = False

    def run(self) -> List[nodes.Node]:
        rows: List[str] = []
        for vendor, table in CLOSE_CODES.items():
            who = "every vendor (unless overridden below)" if vendor == "*" else vendor.capitalize()
            for code, (verdict, meaning) in sorted(table.items()):
                rows += [f"   * - {code}", f"     - {who}", f"     - {VERDICTS.get(verdict, verdict)}",
                         f"     - {meaning}"]
        text = [".. list-table::", "   :header-rows: 1", "   :widths: 8 22 25 45", "",
                "   * - code", "     - vendor", "     - what rtsync does", "     - meaning"] + rows
        container = nodes.container()
        self.state.nested_parse(StringList(text, source="rtsync.policy.CLOSE_CODES"), self.content_offset, container)
        return container.children


def literal_examples(app: Any, what: str, name: str, obj: Any, options: Any, lines: List[str]) -> None:
    """rtsync's docstrings show code as an indented block after a blank line, without reST's `::`: add it."""
    for i in range(len(lines) - 1, 0, -1):
        here, before = lines[i], lines[i - 1]
        if before.strip() or not here.startswith(" ") or not here.strip():
            continue
        previous = next((line for line in reversed(lines[:i - 1]) if line.strip()), "")
        if previous.startswith(" ") or previous.rstrip().endswith("::") or previous.lstrip().startswith(".."):
            continue  # inside a block already, or one reST already marks
        lines[i - 1:i] = ["", "::", ""]


def deployment_page(app: Any, docname: str, source: List[str]) -> None:
    """List docs/deployment.rst (written on another branch) in the toctree once it exists."""
    if docname == "index" and (Path(app.srcdir) / "deployment.rst").exists():
        source[0] = source[0].replace("   changelog\n", "   changelog\n   deployment\n", 1)


def setup(app: Any) -> Dict[str, Any]:
    app.add_directive("rtsync-close-codes", CloseCodes)
    app.connect("autodoc-process-docstring", literal_examples)
    app.connect("source-read", deployment_page)
    return {"parallel_read_safe": True}
