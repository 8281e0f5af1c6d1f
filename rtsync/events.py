"""The Event every callback receives, its lifecycle names, and the typed views of vendors' payloads."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Set,
    Tuple,
    Type,
    Union,
)

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CONNECTED",
    "DISCONNECTED",
    "ERROR",
    "GAP",
    "RECONNECTING",
    "Callback",
    "Event",
    "register_view",
]

log = logging.getLogger("rtsync.events")

# Lifecycle names: the "rtsync." prefix is one no vendor can produce.
CONNECTED = "rtsync.connected"
DISCONNECTED = "rtsync.disconnected"
RECONNECTING = "rtsync.reconnecting"
ERROR = "rtsync.error"
GAP = "rtsync.gap"

Callback = Callable[["Event"], Any]

# (provider, name glob) -> pydantic model giving a typed view of `Event.data`.
_VIEWS: List[Tuple[str, str, Type[BaseModel]]] = []


def register_view(provider: str, pattern: str, model: Type[BaseModel]) -> None:
    """Declare that `data` of `provider` events whose name matches `pattern` parses as `model`."""
    _VIEWS.append((provider, pattern, model))


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Event(BaseModel):
    """One decoded event, vendor or lifecycle.

    `name` is what `on()` matches first; `channel` is the vendor's channel or
    stream (None where the vendor has none); `data` is the decoded payload;
    `raw` is the frame as received. `typed` parses `data` with the vendor's
    pydantic model where one is registered, else returns None.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    channel: Optional[str] = None
    data: Any = None
    id: Optional[Union[int, str]] = None
    provider: str = "rtsync"
    received_at: datetime
    raw: Optional[str] = None

    @classmethod
    def make(
        cls,
        name: str,
        *,
        provider: str,
        data: Any = None,
        channel: Optional[str] = None,
        id: Optional[Union[int, str]] = None,
        raw: Optional[str] = None,
        received_at: Optional[datetime] = None,
        **extra: Any,
    ) -> "Event":
        """Build an event from already-decoded parts, skipping validation (the hot path).

        `extra` fills a subclass's own fields (e.g. DashlyEvent's `tag` and `time`).
        """
        values = {
            "name": name,
            "channel": channel,
            "data": data,
            "id": id,
            "provider": provider,
            "received_at": received_at or _now(),
            "raw": raw,
        }
        if extra:
            values.update(extra)
        return cls._build(values)

    @classmethod
    def _build(cls, values: Dict[str, Any]) -> "Event":
        # What model_construct does, minus its per-call bookkeeping: events are built by
        # our own decoders from already-checked values, at up to ~10^5 per second.
        obj = _new(cls)
        _set(obj, "__dict__", values)
        _set(obj, "__pydantic_fields_set__", _fields_set(cls))
        _set(obj, "__pydantic_extra__", None)
        _set(obj, "__pydantic_private__", None)
        return obj

    @property
    def typed(self) -> Optional[BaseModel]:
        """`data` parsed with the vendor's model (unknown fields kept), or None if none applies.

        Parsed on each access: keep the result if you use it more than once.
        """
        for provider, pattern, model in _VIEWS:
            if provider == self.provider and fnmatchcase(self.name, pattern):
                return model.model_validate(self.data)
        return None


_new = object.__new__
_set = object.__setattr__
_FIELDS_SETS: Dict[type, Set[str]] = {}


def _fields_set(cls: type) -> Set[str]:
    found = _FIELDS_SETS.get(cls)
    if found is None:
        found = _FIELDS_SETS[cls] = set(cls.model_fields)  # type: ignore[attr-defined]
    return found
