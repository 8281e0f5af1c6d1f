"""Users' `mypy --strict` is happy: a program using every client, typed payloads and MockLink type-checks."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
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


_NOT_COPIED = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache",
                                     ".pytest_cache", ".hypothesis", "node_modules", ".venv", ".benchmarks")


@pytest.mark.timeout(600)
def test_mypy_finds_rtsync_from_the_readmes_editable_install(tmp_path: pathlib.Path) -> None:
    """README's `python3 -m pip install -e '.[test]'`, then a user's `mypy --strict` elsewhere finds rtsync.

    Into a fresh virtualenv (sharing this one's packages, so nothing else is fetched but the build
    backend) from a copy of the project holding a module the installed rtsync does not have: mypy
    can only resolve it through the new editable install, from a directory outside the project.
    """
    need(importlib.util.find_spec("mypy") is not None, "mypy is not installed (it is in the test extra)")
    need(importlib.util.find_spec("venv") is not None and importlib.util.find_spec("ensurepip") is not None,
         "the venv module with ensurepip is needed to make a throwaway environment")
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=_NOT_COPIED)
    (project / "rtsync" / "_editable_probe.py").write_text('"""Only in this copy."""\n\nPROBE: int = 1\n')
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH", "PYTHONHOME")}
    venv_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv_dir)], check=True,
                   env=env, timeout=120)
    python = str(venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    install = subprocess.run([python, "-m", "pip", "install", "-q", "-e", ".[test]"], cwd=project, env=env,
                             capture_output=True, text=True, timeout=400)
    assert install.returncode == 0, install.stdout + install.stderr
    user = tmp_path / "user"  # not the project, not on any path
    user.mkdir()
    program = (ROOT / "examples" / "typed_usage.py").read_text()
    (user / "typed_usage.py").write_text(program + "\nfrom rtsync._editable_probe import PROBE\n\nassert PROBE == 1\n")
    done = subprocess.run([python, "-m", "mypy", "--strict", "--no-incremental", "typed_usage.py"], cwd=user,
                          env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout + done.stderr
