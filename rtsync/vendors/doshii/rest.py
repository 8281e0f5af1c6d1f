"""Doshii's partner REST API: Bearer JWTs signed with the client secret, JSON in and out, errors mapped once.

Usable before `start()` and after `stop()`: it has its own HTTP client, not
the engine's (which `stop()` cancels).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

from ... import hs256
from ...credentials import CredentialSource
from ...errors import ConfigurationError, ProtocolError, RtsyncError
from ...policy import seconds, status_error
from ...redact import Secrets
from ...sansio import HttpResponse
from ...wire import Verify
from ...wire.http import HttpClient
from ...wire.network import Network

__all__ = ["DoshiiRest", "path_under"]

# Doshii honours a token for 10 minutes; re-signing every minute keeps a wide margin for clock
# skew and long calls while the redaction list stays short.
TOKEN_REUSE = 60.0
REST_HINTS = {
    400: "Doshii did not accept the request body",
    401: "check client_id and client_secret, and this machine's clock: a token is valid 10 minutes",
    403: "this client id may not use the device API",
    404: "no such resource for this client id (or not at the doshii-location-id given)",
    409: "the version is stale: update with the version of the device's latest answer",
}


class DoshiiRest:
    """Calls on `rest_url` with a fresh Bearer JWT; returns decoded JSON or raises an RtsyncError."""

    def __init__(self, rest_url: str, client_id: CredentialSource, client_secret: Optional[CredentialSource],
                 secrets: Secrets, verify: Verify = True, network: Optional[Network] = None) -> None:
        self.rest_url = rest_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._secrets = secrets
        self._http = HttpClient(verify=verify, network=network)
        self._token_lock = threading.Lock()
        self._token: Optional[str] = None
        self._token_made = 0.0

    def _bearer(self) -> str:
        if self._client_secret is None:
            raise ConfigurationError(
                "fetch() and the device helpers call Doshii's REST API, which needs your client secret: "
                "pass DoshiiClient(client_id, client_secret=...) (the socket itself does not use it)")
        with self._token_lock:
            now = time.monotonic()
            if self._token is None or now - self._token_made >= TOKEN_REUSE:
                # Callables are read here, once per token: a rotated secret signs the next token.
                token = hs256.sign({"clientId": self._client_id.get(), "timestamp": int(time.time())},
                                   self._client_secret.get().encode("utf-8"))
                self._secrets.rotate("bearer", token)
                self._token, self._token_made = token, now
            return self._token

    def fetch(self, uri: str, location_id: Optional[str]) -> Dict[str, Any]:
        """GET an event's `uri`, which must lie under `rest_url`: our signed token goes nowhere else."""
        path = path_under(self.rest_url, uri)
        if path is None:
            raise ProtocolError(
                f"the event's uri {self._secrets.redact(uri)[:120]!r} is not under rest_url {self.rest_url!r}; "
                "rtsync sends its signed token only there (pass rest_url= if Doshii moved its API)")
        headers = {"doshii-location-id": location_id} if location_id else {}
        return self.object("GET", path, headers=headers)

    def object(self, method: str, path: str, body: Optional[Dict[str, Any]] = None,
               headers: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        """A call whose answer must be a JSON object."""
        result = self.json(method, path, body, headers)
        if not isinstance(result, dict):
            raise ProtocolError(f"Doshii {method} {path} answered with JSON that is not an object")
        return result

    def json(self, method: str, path: str, body: Optional[Dict[str, Any]] = None,
             headers: Optional[Dict[str, str]] = None) -> Any:
        what = f"Doshii {method} {urlsplit(self.rest_url).path}{path.split('?', 1)[0]}"
        response = self._http.request(
            method, f"{self.rest_url}{path}", json=body, timeout=30.0, check=False, what=what,
            headers={"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json", **(headers or {})},
        )
        if response.status >= 400:
            raise self._error(response, what)
        try:
            return json.loads(response.body or b"null")
        except ValueError:
            raise ProtocolError(f"{what} answered with something that is not JSON") from None

    def _error(self, response: HttpResponse, what: str) -> RtsyncError:
        said = _server_message(response.body)
        hint = "; ".join(h for h in (said, REST_HINTS.get(response.status, "")) if h)
        retry = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        return status_error(response.status, what, seconds(retry), self._secrets.redact(hint))


def path_under(rest_url: str, uri: str) -> Optional[str]:
    """`uri`'s path and query after `rest_url` (same scheme, host and port; no `..`, no fragment), else None."""
    base, target = urlsplit(rest_url), urlsplit(uri)
    prefix = base.path.rstrip("/")
    if (target.scheme, target.netloc.lower()) != (base.scheme, base.netloc.lower()) or target.fragment \
            or "@" in target.netloc or not (target.path == prefix or target.path.startswith(prefix + "/")) \
            or ".." in target.path.split("/") or any(c in uri for c in "\r\n\t \\"):
        return None
    return uri[len(f"{target.scheme}://{target.netloc}{prefix}"):]


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

