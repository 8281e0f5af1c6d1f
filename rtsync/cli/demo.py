"""What every `rtsync demo <vendor>` shares: loading the local servers lazily, a deadline, and clear failures."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from types import ModuleType
from typing import Any, Callable, Optional, TypeVar, Union

from ..client import Client
from .output import Output, OutputClosed

__all__ = ["Demo", "DemoFailed", "TestingMissing", "local_servers"]

C = TypeVar("C", bound=Client)

INSTALL_HINT = "rtsync {command} needs the local servers: pip install 'rtsync[testing]'"


class TestingMissing(Exception):
    """The `testing` extra (aiohttp, cryptography) is not installed."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, command: str = "demo") -> None:
        super().__init__(INSTALL_HINT.format(command=command))


class DemoFailed(Exception):
    """A demo could not play its script in time; the message says which step."""


def local_servers(vendor: str) -> ModuleType:
    """`rtsync.testing.<vendor>`: the only place the command loads rtsync.testing (never at import)."""
    try:
        return importlib.import_module(f"rtsync.testing.{vendor}")
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        if missing.split(".")[0] == "rtsync":
            raise
        raise TestingMissing() from None


class Demo:
    """One demo run: where events go, and a deadline `duration` seconds away that no step passes."""

    def __init__(self, output: Output, duration: float, vendor: str, quiet: bool = False) -> None:
        self.output = output
        self.duration = duration
        self.vendor = vendor
        self.quiet = quiet
        self.started = time.monotonic()
        self.deadline = self.started + duration

    def say(self, text: str) -> None:
        """Narrate a step on stderr (stdout carries only the events' JSON lines), unless --quiet."""
        if self.quiet:
            return
        try:
            print(f"rtsync demo {self.vendor}: {text}", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass

    def done(self) -> None:
        """Say why the demo ends: its script has played to the end."""
        self.say(f"done: the script played to the end in {time.monotonic() - self.started:.1f} s; exiting")

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def watch(self, client: C) -> C:
        """Print every event the client delivers."""
        client.on("*", self.output)
        return client

    def wait(self, done: Union[threading.Event, Callable[[], Any]], step: str,
             client: Optional[Client] = None, seconds: Optional[float] = None) -> None:
        """Wait until `done`; raise DemoFailed naming `step` at the deadline, the client's fatal error if it ended."""
        check = done.is_set if isinstance(done, threading.Event) else done
        until = self.deadline if seconds is None else min(self.deadline, time.monotonic() + seconds)
        while not check():
            if self.output.closed.is_set():
                raise OutputClosed()
            if client is not None and client.error is not None:
                raise client.error
            if time.monotonic() >= until:
                raise DemoFailed(
                    f"rtsync demo {self.vendor}: {step} within {self.duration:g} s; "
                    "try a longer --duration")
            time.sleep(0.02)

    def pause(self, seconds: float) -> None:
        """Let events flow for `seconds` (cut short by the deadline or a closed output)."""
        until = min(self.deadline, time.monotonic() + seconds)
        while time.monotonic() < until:
            if self.output.closed.is_set():
                raise OutputClosed()
            time.sleep(min(0.02, max(0.0, until - time.monotonic())))
        if self.output.closed.is_set():
            raise OutputClosed()
