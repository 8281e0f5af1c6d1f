"""A TCP connect that another thread can abort at once (a blocking `connect()` cannot be interrupted)."""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from typing import Any, Callable, Optional

__all__ = ["open_tcp"]

_SLICE = 0.1  # how often a pending connect looks whether it was aborted


def open_tcp(host: str, port: int, timeout: float, *, aborted: Callable[[], bool],
             started: Callable[[socket.socket], None]) -> socket.socket:
    """A connected blocking socket (timeout: what is left of `timeout`), trying each address in turn.

    `started(sock)` is called with each socket before it connects, so the caller can shut it
    from another thread; `aborted()` is asked every 0.1 s while a connect is pending.
    """
    deadline = time.monotonic() + timeout
    failure: Optional[OSError] = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        if aborted():
            break
        sock = socket.socket(family, kind, proto)
        try:
            started(sock)
            _connect(sock, address, deadline, aborted)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            return sock
        except OSError as exc:
            failure = exc
            sock.close()
            if time.monotonic() >= deadline:
                break
    if aborted():
        raise ConnectionAbortedError("the connect was aborted")
    raise failure or OSError(f"no address for {host}")


def _connect(sock: socket.socket, address: Any, deadline: float, aborted: Callable[[], bool]) -> None:
    sock.setblocking(False)
    err = sock.connect_ex(address)
    if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
        raise OSError(err, os.strerror(err))
    poller = select.poll() if hasattr(select, "poll") else None
    if poller is not None:
        poller.register(sock, select.POLLOUT)
    while err != 0:
        if aborted():
            raise ConnectionAbortedError("the connect was aborted")
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("connect timed out")
        wait = min(_SLICE, left)
        ready = poller.poll(wait * 1000) if poller is not None else select.select([], [sock], [], wait)[1]
        if ready:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
            break
    sock.setblocking(True)
