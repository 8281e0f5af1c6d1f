"""`DoshiiClient`: Doshii's App WebSocket v3 (heartbeat, pong tracking, bounded retry budget) and its device helpers."""

from __future__ import annotations

import base64
import dataclasses
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union
from urllib.parse import quote

from ... import __version__
from ...client import Client
from ...compat import renamed_arguments
from ...credentials import Credential, CredentialSource
from ...engine import Vendor
from ...errors import ConfigurationError, ProtocolError
from ...events import Event
from ...policy import Backoff, RetryBudget
from ...redact import Secrets
from ...sansio import Handshake
from ...events import register_views
from ...wire.network import Network
from .protocol import DoshiiProtocol
from .rest import DoshiiRest

register_views(__package__ + ".models")  # typed views: pydantic loads at the first `typed`

__all__ = ["DoshiiClient"]

ENVIRONMENTS = ("sandbox", "live")
URL_TEMPLATE = "wss://socket.{environment}.doshii.co/app/socket/v3"
REST_URL_TEMPLATE = "https://{environment}.doshii.co/partner/v3"
CHANNELS = ("Pay@Table", "Order ahead", "Reservations", "Loyalty", "PIP", "MAR", "Resources", "GiftCards")
#: What the heartbeat tells Doshii when no `app_version` is given: rtsync's own version, marked as such.
DEFAULT_APP_VERSION = f"rtsync/{__version__}"
#: update_device() keyword -> the device field Doshii names it
DEVICE_FIELDS = {"name": "name", "ref": "ref", "events": "events", "terminals": "terminals",
                 "channels": "channels", "location_ids": "locationIds"}


class DoshiiClient(Client):
    """Listen to Doshii app events (`order_created`, `transaction_updated`, ...).

        client = rtsync.DoshiiClient(client_id, environment="sandbox", app_version="myapp/1.4")
        client.on("order_*", lambda e: print(e.name, e.data["status"], e.data["uri"]))
        client.run_forever()

    `event.name` is the event, `event.data` its (thin) payload and `event.id`
    its `id`; `event.typed` gives a pydantic view (`id`, `status`,
    `location_id`, `uri`, ...). `client.fetch(event)` returns the full
    resource behind it (GET `uri` with the REST auth below and the
    `doshii-location-id` header); it needs `client_secret`.

    `client_id` and `client_secret` may also be zero-argument callables
    returning the value: the id is read before every connection attempt, and
    both whenever a REST token is signed (at most once a minute).

    The heartbeat `{"doshii":{"ping":<ms>,"version":app_version}}` goes out on
    open and every `ping_interval` (30 s, as Doshii asks). `app_version` is
    your app's version as Doshii records it: pass yours (`"myapp/1.4"`).
    Without it rtsync sends `DEFAULT_APP_VERSION`, `"rtsync/<rtsync's
    version>"`, which says honestly that the app is built on rtsync and
    which rtsync, not which version of your app. No pong within
    `ping_timeout` (60 s: two beats) is a stale link and we reconnect. Server
    pings are answered. `rtsync.connected` fires at the first pong.

    Doshii asks apps to retry "a certain number of times within a given
    period": by default at most 20 reconnects in any 10 minutes (backoff 1-30 s
    with full jitter between them), then the client stops with a
    ConnectionLost saying so; pass `retry_budget=` to change it. A refused
    client id (HTTP 401/403) is final at once. Doshii replays nothing:
    `rtsync.connected` with `reconnect=True` means re-query the REST API.

    `url` overrides the environment's URL (e.g. the SDK's
    `wss://sandbox-socket.doshii.co/app/socket`); `auth` and `deviceId` are added.

    Devices: with `client_secret`, `register_device()`, `update_device()`,
    `get_device()`, `list_devices()` and `delete_device()` call Doshii's REST API (`rest_url`, by default
    `https://<environment>.doshii.co/partner/v3`) with a Bearer JWT (HS256 over
    `clientId` and `timestamp`, signed with the secret). A socket opened with
    `device_id=<doshiiId>` gets only the events that device's criteria let
    through (its `events`, `location_ids`, `terminals` and `channels`), so
    register first, then start a client with that `device_id`:

        admin = rtsync.DoshiiClient(client_id, client_secret=secret)
        device = admin.register_device("Till 1", "till-1", events=["order_created"], location_ids=["L1"])
        client = rtsync.DoshiiClient(client_id, device_id=device["doshiiId"])

    A REST 401/403 is AuthenticationError, 404, 409 (stale `version`) and
    other 4xx RequestRejected with its `status`, 429 RateLimited with
    `retry_after`, 5xx and network errors ConnectionLost; the helpers never
    retry on their own (a POST sent twice would register two devices). An
    HTTP 400 at the upgrade (a server that refuses an unknown deviceId) is a
    final RequestRejected.
    """

    @renamed_arguments(1, ("environment", "device_id", "app_version", "url"),
                       {"heartbeat_interval": "ping_interval", "pong_timeout": "ping_timeout"})
    def __init__(
        self,
        client_id: Credential,
        *,
        environment: str = "sandbox",
        device_id: Optional[str] = None,
        app_version: Optional[str] = None,
        url: Optional[str] = None,
        client_secret: Optional[Credential] = None,
        rest_url: Optional[str] = None,
        ping_interval: float = 30.0,
        ping_timeout: float = 60.0,
        backoff: Optional[Backoff] = None,
        retry_budget: Optional[RetryBudget] = None,
        **options: Any,
    ) -> None:
        secrets = Secrets()
        self._client_id = CredentialSource("client_id", client_id, secrets, hint="your Doshii client id")
        if app_version is None:
            app_version = DEFAULT_APP_VERSION
        if not isinstance(app_version, str) or not app_version.strip():
            raise ConfigurationError(f"app_version must be your app's version as a non-empty string, e.g. 'myapp/1.4'"
                                     f" (leave it out to send {DEFAULT_APP_VERSION!r})")
        if url is None and environment not in ENVIRONMENTS:
            raise ConfigurationError(f"environment must be 'sandbox' or 'live', got {environment!r}")
        if ping_interval <= 0 or ping_timeout <= 0:
            raise ConfigurationError("ping_interval and ping_timeout must be positive")
        rest = (rest_url or REST_URL_TEMPLATE.format(environment=environment)).rstrip("/")
        if not rest.startswith(("https://", "http://")):
            raise ConfigurationError(
                f"rest_url must be https://... (e.g. {REST_URL_TEMPLATE.format(environment='sandbox')}), "
                f"got {rest_url!r}")
        secret = None if client_secret is None else CredentialSource(
            "client_secret", client_secret, secrets, hint="your Doshii client secret")
        self.rest_url = rest
        self.rest = DoshiiRest(rest, self._client_id, secret, secrets, network=Network.from_options(options))
        base = url or URL_TEMPLATE.format(environment=environment)
        if not base.startswith(("wss://", "ws://")):
            raise ConfigurationError(f"url must be a wss:// (or ws://) URL, got {base!r}")
        self._base_url = base
        self._secrets = secrets
        self.environment = environment
        self.device_id = device_id
        self.protocol = DoshiiProtocol(
            self._socket_url(self._client_id.current), app_version, lambda: int(time.time() * 1000),
            heartbeat_interval=ping_interval, pong_timeout=ping_timeout,
        )
        super().__init__(
            Vendor("doshii", self.protocol, secrets, prepare=self._prepare),
            backoff=backoff or Backoff(base=1.0, cap=30.0),
            retry_budget=retry_budget or RetryBudget(attempts=20, window=600.0),
            **options,
        )

    def __repr__(self) -> str:
        return f"<DoshiiClient {self.environment} device_id={self.device_id!r} {self.state.value}>"

    def _socket_url(self, client_id: Optional[str]) -> str:
        if client_id is None:  # a callable's, known at the first connection attempt
            return self._base_url
        auth = base64.b64encode(client_id.encode()).decode()
        self._secrets.rotate("auth", auth)  # the id is the credential; its base64 form too
        query = f"auth={quote(auth, safe='')}"  # base64 has + / =: percent-encode them
        if self.device_id:
            query += f"&deviceId={quote(self.device_id, safe='')}"
        return f"{self._base_url}{'&' if '?' in self._base_url else '?'}{query}"

    def _prepare(self) -> Handshake:
        if self._client_id.dynamic:
            self.protocol.url = self._socket_url(self._client_id.get())
        handshake = self.protocol.handshake()
        if not self.device_id:
            return handshake
        hint = (f"Doshii did not accept deviceId {self.device_id!r}: register the device "
                "(register_device) or leave device_id out")
        return dataclasses.replace(handshake, status_hints={**handshake.status_hints, 400: hint})

    # -- resources (REST) ---------------------------------------------------
    def fetch(self, event: Union[Event, Mapping[str, Any]], *, location_id: Optional[str] = None) -> Dict[str, Any]:
        """The full resource behind a thin event: GET its `uri` with the REST auth, as a dict.

            @client.on("order_*")
            def on_order(event):
                order = client.fetch(event)   # the whole order: items, consumer, transactions ...

        `event` is an Event (or its `data`, e.g. a webhook body). The `doshii-location-id`
        header Doshii wants on location-scoped resources is the payload's `locationId`, or
        `location_id=`. Needs `client_secret`. The signed token goes to `rest_url` only: an
        `uri` elsewhere is refused (ProtocolError). Errors as for the device helpers: 401/403
        AuthenticationError, 404 RequestRejected (status 404: gone, or another location's),
        429 RateLimited, 5xx and network ConnectionLost; nothing is retried for you.
        """
        data = event.data if isinstance(event, Event) else event
        name = event.name if isinstance(event, Event) else "this payload"
        uri = data.get("uri") if isinstance(data, Mapping) else None
        if not isinstance(uri, str) or not uri:
            raise ConfigurationError(f"{name} carries no `uri` to fetch (its data: {_keys(data)}); "
                                     "query the REST API for it instead")
        if location_id is None:
            found = data.get("locationId") if isinstance(data, Mapping) else None
            location_id = found if isinstance(found, str) and found else None
        return self.rest.fetch(uri, location_id)

    # -- devices (REST) -----------------------------------------------------
    def register_device(
        self,
        name: str,
        ref: str,
        *,
        events: Iterable[str] = (),
        terminals: Iterable[str] = (),
        channels: Iterable[str] = (),
        location_ids: Iterable[str] = (),
    ) -> Dict[str, Any]:
        """`POST /devices`: a device whose criteria filter the events of sockets opened with its id.

        An empty list puts no restriction on that field. The answer is the
        device with `doshiiId` (the `device_id` to connect with), `version`
        (needed by `update_device`), `createdAt` and `updatedAt`.
        """
        body = _device_body({"name": name, "ref": ref, "events": events, "terminals": terminals,
                             "channels": channels, "location_ids": location_ids})
        return self.rest.object("POST", "/devices", body)

    def update_device(self, doshii_id: str, version: Union[str, int], **fields: Any) -> Dict[str, Any]:
        """`PUT /devices/{doshii_id}`: change `name`, `ref`, `events`, `terminals`, `channels` or `location_ids`.

        `version` is the one of the device's latest answer; a stale one is a
        RequestRejected with status 409. Returns the device with its new `version`.
        """
        unknown = sorted(set(fields) - set(DEVICE_FIELDS))
        if unknown:
            raise ConfigurationError(f"update_device() takes {', '.join(DEVICE_FIELDS)}; not {', '.join(unknown)}")
        if not isinstance(version, (str, int)) or isinstance(version, bool) or version == "":
            raise ConfigurationError("version must be the device's current version, from its latest answer")
        body = {"doshiiId": _device_id(doshii_id), "version": version, **_device_body(fields)}
        return self.rest.object("PUT", f"/devices/{quote(doshii_id, safe='')}", body)

    def get_device(self, doshii_id: str) -> Dict[str, Any]:
        """`GET /devices/{doshii_id}`: the device as it is now (its current `version`, after a 409)."""
        return self.rest.object("GET", f"/devices/{quote(_device_id(doshii_id), safe='')}")

    def list_devices(self) -> List[Dict[str, Any]]:
        """`GET /devices`: every device of this client id."""
        devices = self.rest.json("GET", "/devices")
        if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
            raise ProtocolError("Doshii GET /devices answered with something that is not a list of devices")
        return devices

    def delete_device(self, doshii_id: str) -> Dict[str, Any]:
        """`DELETE /devices/{doshii_id}`; Doshii answers `{"message": ...}`."""
        return self.rest.object("DELETE", f"/devices/{quote(_device_id(doshii_id), safe='')}")


def _keys(data: Any) -> str:
    return ", ".join(sorted(map(str, data))) or "none" if isinstance(data, Mapping) else type(data).__name__


def _names(field: str, values: Any) -> List[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigurationError(f"{field} must be a list of strings, e.g. {field}=[...]; got {values!r}")
    names = list(values)
    if not all(isinstance(v, str) and v for v in names):
        raise ConfigurationError(f"{field} must hold non-empty strings only; got {names!r}")
    if field == "channels":
        wrong = [v for v in names if v not in CHANNELS]
        if wrong:
            raise ConfigurationError(
                f"channels must be among {', '.join(repr(c) for c in CHANNELS)}; not {', '.join(map(repr, wrong))}")
    return names


def _device_body(fields: Mapping[str, Any]) -> Dict[str, Any]:
    body: Dict[str, Any] = {}
    for key, value in fields.items():
        if key in ("name", "ref"):
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"the device's {key} must be a non-empty string; got {value!r}")
            body[key] = value
        else:
            body[DEVICE_FIELDS[key]] = _names(key, value)
    return body


def _device_id(doshii_id: Any) -> str:
    if not isinstance(doshii_id, str) or not doshii_id:
        raise ConfigurationError(f"doshii_id must be the device's doshiiId (a string); got {doshii_id!r}")
    return doshii_id
