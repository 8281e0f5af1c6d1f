"""Local servers that speak each vendor's protocol, for rtsync's tests, `rtsync demo` and your own tests.

They need the `testing` extra (`pip install rtsync[testing]`, which brings aiohttp).
"""

from ._server import LocalServer

__all__ = ["LocalServer"]
