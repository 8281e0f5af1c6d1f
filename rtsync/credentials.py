"""A credential given as a value or as a zero-argument callable, resolved before each connection attempt."""

from __future__ import annotations

from typing import Callable, Optional, Union

from .errors import ConfigurationError, ConnectionLost
from .redact import Secrets

__all__ = ["Credential", "CredentialSource"]

#: What a client accepts wherever it takes a secret: the value, or a function returning the
#: current value (a vault lookup, a rotating token), called before every connection attempt.
Credential = Union[str, Callable[[], str]]


class CredentialSource:
    """One credential argument of a client.

    A plain value is checked at construction. A callable is called by `get()`,
    which vendors call in their `prepare` hook (once per connection attempt,
    never on the link thread's hot path); each value it returns joins the
    client's secrets for redaction (the newest few are kept). A callable that
    raises is a transient failure (a vault briefly away is retried with backoff);
    one that returns something other than a non-empty string is a configuration
    error, which ends the client.
    """

    def __init__(self, name: str, value: Credential, secrets: Secrets, *, hint: str = "") -> None:
        self.name = name
        self._secrets = secrets
        self._hint = hint
        self._value: Optional[str] = None
        self._read: Optional[Callable[[], str]] = None
        if callable(value):
            self._read = value
        else:
            self._value = self._checked(value)
            secrets.add(self._value)

    @property
    def dynamic(self) -> bool:
        """True when the credential is a callable, so every connection may bring a new value."""
        return self._read is not None

    @property
    def current(self) -> Optional[str]:
        """The value last resolved (None before the first `get()` of a callable credential)."""
        return self._value

    def get(self) -> str:
        """The credential to use now: the fixed value, or what the callable returns."""
        if self._read is None:
            assert self._value is not None
            return self._value
        try:
            value = self._read()
        except Exception as exc:  # the user's code: report it by type, never its text (may hold secrets)
            raise ConnectionLost(
                f"the callable given as {self.name} raised {type(exc).__name__}; retrying with backoff"
            ) from None
        value = self._checked(value)
        self._secrets.rotate(f"credential:{self.name}", value)
        self._value = value
        return value

    def _checked(self, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            got = "an empty string" if isinstance(value, str) else type(value).__name__
            raise ConfigurationError(
                f"{self.name} must be a non-empty string or a function returning one, got {got}"
                + (f"; {self._hint}" if self._hint else "")
            )
        return value

    def __repr__(self) -> str:
        return f"<CredentialSource {self.name} {'callable' if self.dynamic else 'fixed'}>"
