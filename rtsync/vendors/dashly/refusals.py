"""How Dashly's HTTP answers become errors: the module's explain header, 401/403, 414, 429 and the rest."""

from __future__ import annotations

from typing import Mapping, Optional

from ...errors import AuthenticationError, ConnectionLost, RequestRejected, RtsyncError
from ...policy import seconds, status_error

__all__ = ["explain", "header", "http_failure"]


def explain(headers: Mapping[str, str]) -> str:
    for key, value in headers.items():
        if key.lower() == "x-nginx-pushstream-explain":
            return f": {value}"
    return ""


def header(headers: Mapping[str, str], name: str) -> Optional[str]:
    name = name.lower()
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def http_failure(status: int, headers: Mapping[str, str]) -> RtsyncError:
    """Classify a non-2xx/304 answer: 401/403 auth (final), other 4xx final, the rest transient."""
    why = explain(headers)
    if status in (401, 403) and not why:
        return AuthenticationError(
            f"Dashly refused the auth_token (HTTP {status}). Check the token; rtsync will not retry."
        )
    if status == 429:  # nginx's limit_req in front of the module: wait, as the policy does everywhere
        return status_error(status, f"Dashly (HTTP 429{why})", seconds(header(headers, "retry-after")))
    if status == 414:  # nginx: the request line passed its 8 KB buffer
        return RequestRejected("Dashly answered HTTP 414: the URL is too long (channel names, or the "
                               "auth_token); use fewer or shorter channels per connection", status=status)
    if 400 <= status < 500 and status != 408:
        return RequestRejected(f"Dashly rejected the subscription (HTTP {status}{why})", status=status)
    return ConnectionLost(f"Dashly answered HTTP {status}{why}")
