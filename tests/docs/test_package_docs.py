"""What users read without the source tree: the testing servers' docstrings cite nothing that is not in the package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import rtsync

PACKAGE = Path(rtsync.__file__).resolve().parent
TESTING = sorted((PACKAGE / "testing").glob("*.py"))


@pytest.mark.parametrize("path", TESTING, ids=[p.name for p in TESTING])
def test_testing_modules_cite_no_file_outside_the_package(path: Path) -> None:
    cited = re.findall(r"\b(?:protocols|seeds)/[\w.-]+", path.read_text(encoding="utf-8"))
    assert not cited, f"{path.name} cites {cited}: files users do not have; say it in the docstring instead"


@pytest.mark.parametrize("path", TESTING, ids=[p.name for p in TESTING])
def test_testing_modules_open_with_one_sentence_of_purpose(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith('"""'), path.name
    first = text[3:].split("\n", 1)[0]
    assert first.endswith(".") or first.endswith('."""'), f"{path.name}: {first!r}"


@pytest.mark.parametrize("name", ["README.rst", "CHANGELOG.rst"])
def test_the_rst_files_render_without_warnings_as_pypi_shows_them(name: str) -> None:
    """README.rst is the package's long_description: plain docutils (no Sphinx) must render it cleanly."""
    from tests.conftest import need

    try:
        import docutils.core
    except ImportError:
        need(False, "docutils is not installed (it comes with sphinx, in the test extra)")
    text = (PACKAGE.parent / name).read_text(encoding="utf-8")
    docutils.core.publish_doctree(text, settings_overrides={"halt_level": 2, "report_level": 2,
                                                            "warning_stream": False})
