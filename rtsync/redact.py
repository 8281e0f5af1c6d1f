"""Keeps secrets out of logs, reprs, exceptions and CLI output."""

from __future__ import annotations

import re
from typing import Iterable

__all__ = ["MASK", "redact", "redact_url"]

MASK = "***"

# Query parameters that carry credentials for one vendor or another.
_SECRET_PARAMS = re.compile(
    r"(?i)([?&](?:auth_token|token|auth|api_key|apikey|access_token|pubsub_token|secret)=)[^&#\s]*"
)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret (and its URL-quoted form) with `***`."""
    from urllib.parse import quote

    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
            quoted = quote(secret, safe="")
            if quoted != secret:
                text = text.replace(quoted, MASK)
    return text


def redact_url(url: str, secrets: Iterable[str] = ()) -> str:
    """Mask credential-bearing query values and any known secret appearing in the URL."""
    return redact(_SECRET_PARAMS.sub(lambda m: m.group(1) + MASK, url), secrets)
