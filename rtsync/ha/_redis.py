"""Opening a Redis connection from a URL, with its password kept out of reprs and messages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigurationError, ConnectionLost

__all__ = ["connect", "shown", "unreachable"]


def shown(url: str) -> str:
    """`url` without its password (safe for reprs, logs and exception messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid redis url>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def connect(url: str, timeout: float) -> Any:
    """A `redis.Redis` for `url` whose every call gives up after `timeout` seconds."""
    try:
        import redis
    except ImportError:
        raise ConfigurationError("the Redis features need redis-py: pip install 'rtsync[redis]'") from None
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(f"a Redis URL starts with redis://, rediss:// or unix://; got {shown(str(url))!r}")
    try:
        return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                    decode_responses=True)
    except ValueError as exc:
        raise ConfigurationError(f"invalid Redis URL {shown(url)!r}: {exc}") from None


def unreachable(url: str, exc: BaseException) -> ConnectionLost:
    """The rtsync error for a failed Redis call (redis-py's messages carry host and port, no password)."""
    return ConnectionLost(f"Redis at {shown(url)} failed: {type(exc).__name__}: {exc}")
