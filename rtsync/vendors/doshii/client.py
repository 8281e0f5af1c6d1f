"""`DoshiiClient`: Doshii's App WebSocket v3 with its heartbeat, pong tracking and a bounded retry budget."""

from __future__ import annotations

import base64
import time
from typing import Any, Optional
from urllib.parse import quote

from ...errors import ConfigurationError
from ...policy import Backoff, RetryBudget
from ...runtime import Client
from . import models  # noqa: F401  (registers the typed views)
from .protocol import DoshiiProtocol

__all__ = ["DoshiiClient"]

ENVIRONMENTS = ("sandbox", "live")
URL_TEMPLATE = "wss://socket.{environment}.doshii.co/app/socket/v3"


class DoshiiClient(Client):
    """Listen to Doshii app events (`order_created`, `transaction_updated`, ...).

        client = rtsync.DoshiiClient(client_id, environment="sandbox", app_version="myapp/1.4")
        client.on("order_*", lambda e: print(e.name, e.data["status"], e.data["uri"]))
        client.run_forever()

    `event.name` is the event, `event.data` its (thin) payload and `event.id`
    its `id`; `event.typed` gives a pydantic view (`id`, `status`,
    `location_id`, `uri`, ...). Fetch the full resource from `uri`.

    The heartbeat `{"doshii":{"ping":<ms>,"version":app_version}}` goes out on
    open and every `heartbeat_interval` (30 s, as Doshii asks); no pong within
    `pong_timeout` (60 s: two beats) is a stale link and we reconnect. Server
    pings are answered. `rtsync.connected` fires at the first pong.

    Doshii asks apps to retry "a certain number of times within a given
    period": by default at most 20 reconnects in any 10 minutes (backoff 1-30 s
    with full jitter between them), then the client stops with a
    ConnectionLost saying so; pass `retry_budget=` to change it. A refused
    client id (HTTP 401/403) is final at once. Doshii replays nothing:
    `rtsync.connected` with `reconnect=True` means re-query the REST API.

    `url` overrides the environment's URL (e.g. the SDK's
    `wss://sandbox-socket.doshii.co/app/socket`); `auth` and `deviceId` are added.
    """

    provider = "doshii"

    def __init__(
        self,
        client_id: str,
        environment: str = "sandbox",
        device_id: Optional[str] = None,
        app_version: str = "rtsync",
        url: Optional[str] = None,
        *,
        heartbeat_interval: float = 30.0,
        pong_timeout: float = 60.0,
        backoff: Optional[Backoff] = None,
        retry_budget: Optional[RetryBudget] = None,
        **options: Any,
    ) -> None:
        if not isinstance(client_id, str) or not client_id.strip():
            raise ConfigurationError("client_id must be your Doshii client id (a non-empty string)")
        if url is None and environment not in ENVIRONMENTS:
            raise ConfigurationError(f"environment must be 'sandbox' or 'live', got {environment!r}")
        if heartbeat_interval <= 0 or pong_timeout <= 0:
            raise ConfigurationError("heartbeat_interval and pong_timeout must be positive")
        super().__init__(
            backoff=backoff or Backoff(base=1.0, cap=30.0),
            retry_budget=retry_budget or RetryBudget(attempts=20, window=600.0),
            **options,
        )
        auth = base64.b64encode(client_id.encode()).decode()
        self._secrets += [client_id, auth]  # the id is the credential; its base64 form too
        base = url or URL_TEMPLATE.format(environment=environment)
        if not base.startswith(("wss://", "ws://")):
            raise ConfigurationError(f"url must be a wss:// (or ws://) URL, got {base!r}")
        query = f"auth={quote(auth, safe='')}"  # base64 has + / =: percent-encode them
        if device_id:
            query += f"&deviceId={quote(device_id, safe='')}"
        self.environment = environment
        self.device_id = device_id
        self.protocol: DoshiiProtocol = DoshiiProtocol(
            f"{base}{'&' if '?' in base else '?'}{query}", app_version, lambda: int(time.time() * 1000),
            heartbeat_interval=heartbeat_interval, pong_timeout=pong_timeout,
        )

    def __repr__(self) -> str:
        return f"<DoshiiClient {self.environment} device_id={self.device_id!r} " \
               f"{'running' if self.running else 'stopped'}>"
