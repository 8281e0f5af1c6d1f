"""The local Doshii server's REST side: the resources behind its thin events, and the device registry's checks."""

from __future__ import annotations

import datetime
import threading
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from aiohttp import web

__all__ = ["LIST_FIELDS", "Resources", "device_fields", "device_matches", "error", "now"]


CHANNELS = ("Pay@Table", "Order ahead", "Reservations", "Loyalty", "PIP", "MAR", "Resources", "GiftCards")
LIST_FIELDS = ("events", "terminals", "channels", "locationIds")


def device_matches(device: Mapping[str, Any], name: str, payload: Any) -> bool:
    """Whether a device's criteria let event `name` with `payload` through (the fields matched are [assumed])."""
    fields = payload if isinstance(payload, dict) else {}
    for key, value in (("events", name), ("locationIds", fields.get("locationId")),
                       ("terminals", fields.get("posTerminalId")), ("channels", fields.get("channel"))):
        wanted = device.get(key) or []
        if wanted and value not in wanted:
            return False
    return True


class Resources:
    """Full resources by path under `/partner/v3`, each optionally tied to a location.

    What the real API answers is partly [assumed]: a location-scoped resource
    asked for without the `doshii-location-id` header is 400, with another
    location's id 404 (it is not that location's), an unknown path 404; all
    as `{"message": ...}`. Authentication (401) is the server's, checked first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: Dict[str, Tuple[Optional[str], Dict[str, Any]]] = {}
        self.requests: List[Tuple[str, Optional[str]]] = []  # (path, doshii-location-id) of every GET

    def add(self, path: str, body: Dict[str, Any], location_id: Optional[str] = None) -> None:
        with self._lock:
            self._items["/" + path.lstrip("/")] = (location_id, dict(body))

    def remove(self, path: str) -> None:
        with self._lock:
            self._items.pop("/" + path.lstrip("/"), None)

    def answer(self, request: web.Request, path: str) -> web.Response:
        location = request.headers.get("doshii-location-id")
        self.requests.append((path, location))
        with self._lock:
            found = self._items.get(path)
        if found is None:
            return error(404, f"Resource not found: {path}")
        wanted, body = found
        if wanted is not None and not location:
            return error(400, "The doshii-location-id header is required for this resource")
        if wanted is not None and location != wanted:
            return error(404, "Resource not found at this location")
        return web.json_response(body)


def error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def device_fields(body: Mapping[str, Any], required: Iterable[str]) -> Union[Dict[str, Any], web.Response]:
    """The device fields of a request body, checked, or the 400 to answer."""
    for key in required:
        if key not in body:
            return error(400, f"{key} is required")
    fields: Dict[str, Any] = {}
    for key in ("name", "ref"):
        if key in body:
            if not isinstance(body[key], str) or not body[key]:
                return error(400, f"{key} must be a non-empty string")
            fields[key] = body[key]
    for key in LIST_FIELDS:
        if key in body:
            value = body[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return error(400, f"{key} must be an array of strings")
            if key == "channels" and any(v not in CHANNELS for v in value):
                return error(400, f"channels must be among {', '.join(CHANNELS)}")
            fields[key] = list(value)
    return fields
