"""Keeps secrets out of logs, reprs, exceptions and CLI output."""

from __future__ import annotations

import re
import threading
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

__all__ = ["MASK", "Secrets", "redact", "redact_url"]

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


class Secrets:
    """One client's secrets, for redaction. Thread-safe: readers iterate a snapshot.

    `add` keeps a value for the client's life; `rotate(kind, value)` keeps the
    newest `keep` values of one kind (hourly URL tokens, short-lived bearer
    tokens), so a long-running client does not grow its list forever while a
    log line about the previous token is still masked; `watch(kind, read)`
    rotates in whatever `read()` returns at each use (a token a protocol
    learns from the server).
    """

    def __init__(self, *values: str) -> None:
        self._lock = threading.Lock()
        self._fixed: List[str] = []
        self._rotating: Dict[str, List[str]] = {}
        self._snapshot: Tuple[str, ...] = ()
        self._watched: List[Tuple[str, Callable[[], Optional[str]]]] = []
        self.add(*values)

    def add(self, *values: str) -> None:
        with self._lock:
            self._fixed += [v for v in values if v and v not in self._fixed]
            self._publish()

    def rotate(self, kind: str, value: str, keep: int = 3) -> None:
        with self._lock:
            values = [v for v in self._rotating.get(kind, []) if v != value] + [value]
            self._rotating[kind] = values[-keep:]
            self._publish()

    def watch(self, kind: str, read: Callable[[], Optional[str]]) -> None:
        self._watched.append((kind, read))

    def _current(self) -> Tuple[str, ...]:
        for kind, read in self._watched:
            value = read()
            if value and value not in self._snapshot:
                self.rotate(kind, value)
        return self._snapshot

    def _publish(self) -> None:
        rotating = [v for values in self._rotating.values() for v in values]
        self._snapshot = tuple(self._fixed + rotating)

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __contains__(self, value: object) -> bool:
        return value in self._current()

    def redact(self, text: str) -> str:
        """`text` with every secret and credential-bearing URL parameter masked."""
        secrets = self._current()
        return redact_url(redact(text, secrets), secrets)

    def __repr__(self) -> str:
        return f"<Secrets: {len(self._snapshot)} held>"
