"""DESIGN's constructor conventions, pinned for all five clients (names users' code relies on)."""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable, Dict, Tuple

import pytest

import rtsync

# client, its credentials (positional), keywords it needs beside them
CLIENTS: Dict[str, Tuple[Callable[..., rtsync.Client], Tuple[Any, ...], Dict[str, Any]]] = {
    "dashly": (rtsync.DashlyClient, ("token",), {"channels": ["c.1"]}),
    "voxsig": (rtsync.VoxsigClient, ("pubsub-token",), {"account_id": 1, "user_id": 7}),
    "quickmeet": (rtsync.QuickMeetClient, ("ann", "secret-pw"), {"url": "wss://chat.example/websocket"}),
    "dialpad": (rtsync.DialpadClient, ("api-key",), {}),
    "doshii": (rtsync.DoshiiClient, ("client-id",), {}),
}
SHARED = {"queue_size": 5, "backoff": rtsync.Backoff(), "retry_budget": rtsync.RetryBudget(3, 60),
          "connect_timeout": 2.0, "max_message_size": 1 << 20, "verify": False}


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_credentials_positional_everything_else_keyword_only(name: str) -> None:
    cls, credentials, _ = CLIENTS[name]
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # type: ignore[misc]
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert len(positional) == len(credentials), positional
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params[len(credentials):])
    names = {p.name for p in params}
    assert "url" in names
    assert "ping_timeout" in names and ("ping_interval" in names or name == "voxsig")  # Voxsig's server pings


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_shared_options_are_accepted_by_every_client(name: str) -> None:
    cls, credentials, needed = CLIENTS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the current spellings warn about nothing
        client = cls(*credentials, **needed, **SHARED, ping_timeout=9.0)
    assert client.state is rtsync.State.STOPPED and client.verify is False


@pytest.mark.parametrize("call, new", [
    (lambda: rtsync.DashlyClient("t", ["c.1"], "longpoll", keepalive=5), "channels"),
    (lambda: rtsync.VoxsigClient("t", 1, 7, stale_after=3), "account_id"),
    (lambda: rtsync.QuickMeetClient("wss://chat.example/websocket", "ann", "pw", ping_after=5), "url="),
    (lambda: rtsync.DialpadClient("k", base_url="https://dialpad.example", keepalive=5), "url="),
    (lambda: rtsync.DoshiiClient("id", "live", heartbeat_interval=5, pong_timeout=9), "environment"),
])
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pytest.warns records them all; only one is checked
def test_old_spellings_still_work_with_a_deprecation_warning(call: Callable[[], rtsync.Client], new: str) -> None:
    with pytest.warns(DeprecationWarning, match=new):
        client = call()
    assert client.state is rtsync.State.STOPPED


def test_old_and_new_names_together_are_an_error() -> None:
    with pytest.raises(TypeError, match="old name"):
        rtsync.DoshiiClient("id", ping_interval=5, heartbeat_interval=5)
    with pytest.raises(TypeError, match="positional"):
        rtsync.DoshiiClient("id", "live", None, "app", None, "one too many")


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_the_secret_credential_may_be_a_callable_that_is_not_called_until_a_connection(name: str) -> None:
    cls, credentials, needed = CLIENTS[name]
    calls = []

    def vault() -> str:
        calls.append(1)
        return "from-the-vault"

    # the secret is the last positional credential (QuickMeet's username before it is not a secret)
    client = cls(*credentials[:-1], vault, **needed)
    assert client.state is rtsync.State.STOPPED and calls == []
    assert "from-the-vault" not in repr(client)


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_network_options_are_accepted_by_every_client(name: str) -> None:
    cls, credentials, needed = CLIENTS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = cls(*credentials, **needed, proxy="socks5h://user:pw@proxy.internal:1080",
                     headers={"X-Request-Source": "conventions"})
    assert "pw@" not in repr(client)
    with pytest.raises(rtsync.ConfigurationError, match="proxy"):
        cls(*credentials, **needed, proxy="ftp://proxy.internal")
