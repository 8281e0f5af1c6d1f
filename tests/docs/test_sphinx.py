"""The Sphinx site in docs/ builds with warnings as errors, and its close-code table is rtsync.policy.CLOSE_CODES."""

from __future__ import annotations

import html
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rtsync.policy import CLOSE_CODES
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(importlib.util.find_spec("sphinx") is not None, "sphinx is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("html")
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           str(ROOT / "docs"), str(out)], capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _text(page: Path) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))
    return " ".join(text.replace("\u2019", "'").replace("\u201c", "\"").replace("\u201d", "\"").split())  # smart quotes


def test_the_site_builds_without_warnings_and_has_every_page(site: Path) -> None:
    for page in ("index", "quickstart", "clients", "cli", "threading", "failures", "testing", "recipes", "api",
                 "changelog", "vendors/dashly", "vendors/voxsig", "vendors/quickmeet", "vendors/dialpad",
                 "vendors/doshii"):
        assert (site / f"{page}.html").exists(), page
    api = _text(site / "api.html")
    for name in ("DashlyClient", "run_forever", "wait_connected", "AuthenticationError", "MockLink", "poll_once"):
        assert name in api


def test_the_close_code_table_is_generated_from_the_policy(site: Path) -> None:
    text = _text(site / "failures.html")
    rows = re.findall(r"(\d{4}) (every vendor \(unless overridden below\)|[A-Z][a-z]+) (.+?) (?=\d{4} |Errors)", text)
    shown = {(who, int(code)) for code, who, _ in rows}
    wanted = {("every vendor (unless overridden below)" if v == "*" else v.capitalize(), code)
              for v, table in CLOSE_CODES.items() for code in table}
    assert shown == wanted
    for vendor, table in CLOSE_CODES.items():
        for code, (verdict, meaning) in table.items():
            assert meaning in text
