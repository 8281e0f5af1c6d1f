"""CredentialSource: fixed values, callables resolved per attempt, redaction and clear errors."""

import pytest

from rtsync.credentials import CredentialSource
from rtsync.errors import ConfigurationError, ConnectionLost
from rtsync.redact import Secrets


def test_fixed_value_is_checked_at_construction_and_redacted():
    secrets = Secrets()
    source = CredentialSource("auth_token", "tok-fixed-123", secrets)
    assert source.get() == "tok-fixed-123" and not source.dynamic
    assert secrets.redact("x tok-fixed-123 y") == "x *** y"
    with pytest.raises(ConfigurationError, match="auth_token must be a non-empty string"):
        CredentialSource("auth_token", "  ", Secrets())


def test_callable_is_called_on_each_get_and_every_value_is_redacted():
    values = iter(["rot-aaaa-1", "rot-bbbb-2"])
    secrets = Secrets()
    source = CredentialSource("api_key", lambda: next(values), secrets)
    assert source.dynamic and source.current is None
    assert source.get() == "rot-aaaa-1"
    assert source.get() == "rot-bbbb-2" and source.current == "rot-bbbb-2"
    assert secrets.redact("rot-aaaa-1 rot-bbbb-2") == "*** ***"


def test_callable_that_raises_is_transient_and_hides_its_message():
    def vault() -> str:
        raise RuntimeError("vault said: token=leaked-secret")

    with pytest.raises(ConnectionLost) as info:
        CredentialSource("api_key", vault, Secrets()).get()
    assert "RuntimeError" in str(info.value) and "leaked-secret" not in str(info.value)
    assert info.value.__cause__ is None


def test_callable_returning_a_non_string_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="got NoneType"):
        CredentialSource("api_key", lambda: None, Secrets()).get()  # type: ignore[arg-type,return-value]
