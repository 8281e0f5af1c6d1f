"""Users' `mypy --strict` is happy: a program using every client, typed payloads and MockLink type-checks."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import need

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_a_user_program_passes_mypy_strict() -> None:
    need(importlib.util.find_spec("mypy") is not None, "mypy is not installed (it is in the test extra)")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "examples/typed_usage.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_typed_example_runs() -> None:
    done = subprocess.run([sys.executable, "examples/typed_usage.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "['7'] ['hello']" in done.stdout
