"""`DoshiiClient`: Doshii's App WebSocket v3 (heartbeat, pong tracking, bounded retry budget) and its device helpers."""

from __future__ import annotations

import base64
import collections
import dataclasses
import json
import threading
import time
from typing import Any, Deque, Dict, Iterable, List, Mapping, Optional, Union
from urllib.parse import quote, urlsplit

from ... import hs256
from ...errors import ConfigurationError, ProtocolError
from ...policy import Backoff, RetryBudget
from ...runtime import Client
from ...sansio import Handshake, HttpResponse
from ...policy import seconds, status_error
from ...wire.http import HttpClient
from . import models  # noqa: F401  (registers the typed views)
from .protocol import DoshiiProtocol

__all__ = ["DoshiiClient"]

ENVIRONMENTS = ("sandbox", "live")
URL_TEMPLATE = "wss://socket.{environment}.doshii.co/app/socket/v3"
REST_URL_TEMPLATE = "https://{environment}.doshii.co/partner/v3"
CHANNELS = ("Pay@Table", "Order ahead", "Reservations", "Loyalty", "PIP", "MAR", "Resources", "GiftCards")
#: update_device() keyword -> the device field Doshii names it
DEVICE_FIELDS = {"name": "name", "ref": "ref", "events": "events", "terminals": "terminals",
                 "channels": "channels", "location_ids": "locationIds"}
# Doshii honours a token for 10 minutes; re-signing every minute keeps a wide margin for clock
# skew and long calls while the redaction list stays short.
TOKEN_REUSE = 60.0
REST_HINTS = {
    400: "Doshii did not accept the request body",
    401: "check client_id and client_secret, and this machine's clock: a token is valid 10 minutes",
    403: "check client_id and client_secret, and that this app may use the endpoint",
    404: "no such device for this client id",
    409: "the version is stale: update with the version of the device's latest answer",
}


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

    provider = "doshii"

    def __init__(
        self,
        client_id: str,
        environment: str = "sandbox",
        device_id: Optional[str] = None,
        app_version: str = "rtsync",
        url: Optional[str] = None,
        *,
        client_secret: Optional[str] = None,
        rest_url: Optional[str] = None,
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
        rest = (rest_url or REST_URL_TEMPLATE.format(environment=environment)).rstrip("/")
        if not rest.startswith(("https://", "http://")):
            raise ConfigurationError(
                f"rest_url must be https://... (e.g. {REST_URL_TEMPLATE.format(environment='sandbox')}), "
                f"got {rest_url!r}")
        if client_secret is not None and (not isinstance(client_secret, str) or not client_secret.strip()):
            raise ConfigurationError("client_secret must be your Doshii client secret (a non-empty string)")
        auth = base64.b64encode(client_id.encode()).decode()
        self._secrets += [client_id, auth]  # the id is the credential; its base64 form too
        if client_secret:
            self._secrets.append(client_secret)
        self._client_id = client_id
        self._client_secret = client_secret
        self.rest_url = rest
        # Not the runtime's self._http: stop() cancels that one for good, and deleting a
        # device after stopping the socket is a normal thing to do.
        self._rest_http = HttpClient(verify=self.verify)
        self._token_lock = threading.Lock()
        self._token: Optional[str] = None
        self._token_made = 0.0
        self._tokens: Deque[str] = collections.deque()
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

    # -- the runtime hooks --------------------------------------------------
    def _handshake(self) -> Handshake:
        handshake = self.protocol.handshake()
        if not self.device_id:
            return handshake
        hint = (f"Doshii did not accept deviceId {self.device_id!r}: register the device "
                "(register_device) or leave device_id out")
        return dataclasses.replace(handshake, status_hints={**handshake.status_hints, 400: hint})

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
        return self._rest_object("POST", "/devices", body)

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
        return self._rest_object("PUT", f"/devices/{quote(doshii_id, safe='')}", body)

    def get_device(self, doshii_id: str) -> Dict[str, Any]:
        """`GET /devices/{doshii_id}`: the device as it is now (its current `version`, after a 409)."""
        return self._rest_object("GET", f"/devices/{quote(_device_id(doshii_id), safe='')}")

    def list_devices(self) -> List[Dict[str, Any]]:
        """`GET /devices`: every device of this client id."""
        devices = self._rest_json("GET", "/devices")
        if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
            raise ProtocolError("Doshii GET /devices answered with something that is not a list of devices")
        return devices

    def delete_device(self, doshii_id: str) -> Dict[str, Any]:
        """`DELETE /devices/{doshii_id}`; Doshii answers `{"message": ...}`."""
        return self._rest_object("DELETE", f"/devices/{quote(_device_id(doshii_id), safe='')}")

    def _bearer(self) -> str:
        if not self._client_secret:
            raise ConfigurationError(
                "the device helpers call Doshii's REST API, which needs your client secret: "
                "pass DoshiiClient(client_id, client_secret=...) (the socket itself does not use it)")
        with self._token_lock:
            now = time.monotonic()
            if self._token is None or now - self._token_made >= TOKEN_REUSE:
                token = hs256.sign({"clientId": self._client_id, "timestamp": int(time.time())},
                                   self._client_secret.encode("utf-8"))
                self._tokens.append(token)
                retired = self._tokens.popleft() if len(self._tokens) > 3 else None
                # Rebound rather than changed in place: the link thread may be redacting with it.
                self._secrets = [s for s in self._secrets if s != retired] + [token]
                self._token, self._token_made = token, now
            return self._token

    def _rest_object(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = self._rest_json(method, path, body)
        if not isinstance(result, dict):
            raise ProtocolError(f"Doshii {method} {path} answered with JSON that is not an object")
        return result

    def _rest_json(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        what = f"Doshii {method} {urlsplit(self.rest_url).path}{path}"
        response = self._rest_http.request(
            method, f"{self.rest_url}{path}", json=body, timeout=30.0, check=False, what=what,
            headers={"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"},
        )
        if response.status >= 400:
            raise self._rest_error(response, what)
        try:
            return json.loads(response.body or b"null")
        except ValueError:
            raise ProtocolError(f"{what} answered with something that is not JSON") from None

    def _rest_error(self, response: HttpResponse, what: str) -> Exception:
        said = _server_message(response.body)
        hint = "; ".join(h for h in (said, REST_HINTS.get(response.status, "")) if h)
        retry = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        return status_error(response.status, what, seconds(retry), self._redact(hint))


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


def _server_message(body: bytes) -> str:
    """What the server said about a failed call, shortened (a `message` or `error` field, else nothing)."""
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return ""
    if isinstance(data, dict):
        said = data.get("message") or data.get("error")
        if isinstance(said, dict):
            said = said.get("message")
        if isinstance(said, str):
            return said[:200]
    return ""

