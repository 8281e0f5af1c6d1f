"""How QuickMeet's (Meteor's) error objects become rtsync errors: codes, reasons and the waits rate limits ask for."""

from __future__ import annotations

import math
import re
from typing import Any, Dict, Optional

from ...errors import CallError, ProtocolError, RateLimited, RtsyncError

__all__ = ["VersionMismatch", "call_error", "code_of", "rate_limit_wait", "short"]

_CODE_SUFFIX = re.compile(r"\[([^\[\]]+)\]\s*$")
RATE_LIMITED = ("too-many-requests", "error-too-many-requests")


class VersionMismatch(ProtocolError):
    """The server answered `connect` with `failed`: it does not speak DDP version 1. Final (Meteor
    treats it as permanent: the same server gives the same answer to every retry)."""

    retryable = False


def _number(text: str) -> Any:
    """`text` as an int when it is a plain decimal number (`"²"` is a digit, not a number), else itself."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else text


def code_of(error: Any) -> Any:
    """The error code, tolerant of broker-mangled shapes: `"User not found [403]"` means 403.

    Always a str, a number, a bool or None: anything else a server sends is shown, cut short."""
    code = error.get("error") if isinstance(error, dict) else error
    if isinstance(code, str):
        found = _CODE_SUFFIX.search(code)
        if found:
            return _number(found.group(1))
        return _number(code[:200])
    if code is None or isinstance(code, (int, float, bool)):
        return code
    return short(code)


def short(value: Any, limit: int = 80) -> str:
    """A server-sent value for a message: strings as they are, anything else as its repr; cut short."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _seconds(value: Any) -> Optional[float]:
    """A wait the server asked for, in seconds, if it is a sane one."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(min(value, 24 * 3600.0))
    return None


def rate_limit_wait(error: Any) -> Optional[float]:
    """Seconds a `too-many-requests` error asks us to wait (`timeToReset` ms, else `seconds`), if it says."""
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, dict):
        return None
    wait = _seconds(details.get("timeToReset"))
    return wait / 1000 if wait is not None else _seconds(details.get("seconds"))


def call_error(method: str, error: Any) -> RtsyncError:
    """A DDP `result.error` as the rtsync error to raise: rate limits wait, the rest is a CallError."""
    if not isinstance(error, dict):
        return CallError(f"{method} failed: {short(error)}", error=code_of(error))
    code = code_of(error)
    reason = short(error.get("reason") or error.get("message") or "", 160)
    raw_details = error.get("details")
    details: Dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
    if code in RATE_LIMITED:
        return RateLimited(f"{method} was rate limited: {reason}", retry_after=rate_limit_wait(error))
    return CallError(f"{method} failed: {reason} [{code}]", error=code, reason=reason, details=details)
