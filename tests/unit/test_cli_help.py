"""`rtsync --help`, `--version` and every option's help text, with and without the testing extra."""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from typing import Iterator

import pytest

import rtsync
from rtsync.cli import _parser, main

NO_AIOHTTP = textwrap.dedent("""
    import contextlib, io, sys
    sys.modules["aiohttp"] = None  # the testing extra is not installed
    from rtsync.cli import main
    for argv in (["--help"], ["listen", "--help"], ["listen", "dashly", "--help"], ["poll", "dashly", "--help"],
                 ["demo", "--help"], ["serve", "--help"], ["publish", "voxsig", "--help"], ["--version"]):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert main(argv) == 0, argv
        assert out.getvalue().startswith(("usage: rtsync", "rtsync ")), argv
    assert not [m for m in sys.modules if m.startswith("rtsync.testing")], "library code imported rtsync.testing"
    sys.exit(main(["demo", "voxsig"]))
""")


def test_help_works_without_the_testing_extra_and_the_demo_says_what_to_install() -> None:
    done = subprocess.run([sys.executable, "-c", NO_AIOHTTP], capture_output=True, text=True, timeout=30)
    assert done.returncode == 5, done.stderr
    assert done.stderr == "rtsync demo needs the local servers: pip install 'rtsync[testing]'\n"
    assert done.stdout == ""


def test_serve_without_the_testing_extra_says_what_to_install() -> None:
    script = NO_AIOHTTP.replace('sys.exit(main(["demo", "voxsig"]))', 'sys.exit(main(["serve", "voxsig"]))')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 5, done.stderr
    assert done.stderr == "rtsync serve needs the local servers: pip install 'rtsync[testing]'\n"


def test_version(capsys: pytest.CaptureFixture) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"rtsync {rtsync.__version__}\n"


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for line in ("0    ok", "1    runtime failure", "2    usage error", "3    authentication refused",
                 "4    configuration error", "130  interrupted"):
        assert line in out


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def test_every_option_and_argument_has_help_text() -> None:
    missing = [f"{p.prog}: {a.option_strings or a.dest}"
               for p in _parsers(_parser()) for a in p._actions
               if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []


def test_the_vendor_cli_modules_live_in_rtsync_cli() -> None:
    import importlib.util

    for vendor in ("dashly", "voxsig", "quickmeet", "dialpad", "doshii"):
        assert importlib.util.find_spec(f"rtsync.cli.{vendor}") is not None
        assert importlib.util.find_spec(f"rtsync.vendors.{vendor}.cli") is None
