"""Test helpers: `MockLink` (recorded frames, no socket) and local servers that speak each vendor's protocol.

`MockLink` needs nothing more. The local servers (used by rtsync's tests,
`rtsync demo` and your own tests) need the `testing` extra
(`pip install rtsync[testing]`, which brings aiohttp).
"""

from typing import TYPE_CHECKING, Any

from .mock import MockLink

if TYPE_CHECKING:
    from ._server import LocalServer

__all__ = ["LocalServer", "MockLink"]


def __getattr__(name: str) -> Any:
    if name == "LocalServer":  # loads aiohttp: only when asked for
        from ._server import LocalServer

        return LocalServer
    raise AttributeError(f"module 'rtsync.testing' has no attribute {name!r}")
