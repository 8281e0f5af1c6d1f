"""The Event every callback receives, its lifecycle names, and the typed views of vendors' payloads."""

from __future__ import annotations

import logging
from datetime import datetime
from fnmatch import fnmatchcase
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Iterable,
    List,
    Optional,
    Set,
    Tuple,
    Type,
    TypeVar,
    Union,
)

if TYPE_CHECKING:  # pydantic is imported when a typed view is first asked for, not by `import rtsync`
    from pydantic import BaseModel

__all__ = [
    "CONNECTED",
    "DISCONNECTED",
    "ERROR",
    "GAP",
    "RECONNECTING",
    "Callback",
    "Event",
    "register_view",
    "register_views",
    "stamp",
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
_VIEWS: List[Tuple[str, str, "Type[BaseModel]"]] = []
# Modules that register views when imported, imported at the first `typed` (they load pydantic).
_PENDING: List[str] = []


def register_view(provider: str, pattern: str, model: "Type[BaseModel]") -> None:
    """Declare that `data` of `provider` events whose name matches `pattern` parses as `model`."""
    _VIEWS.append((provider, pattern, model))


def register_views(module: str) -> None:
    """Import `module` (whose import calls `register_view`) when a typed view is first needed."""
    _PENDING.append(module)


def _load_views() -> None:
    import importlib

    while _PENDING:
        importlib.import_module(_PENDING.pop(0))


class Event:
    """One decoded event, vendor or lifecycle; frozen.

    `name` is what `on()` matches first; `channel` is the vendor's channel or
    stream (None where the vendor has none); `data` is the decoded payload;
    `raw` is the frame as received; `received_at` is when the engine queued it
    (UTC). `typed` parses `data` with the vendor's pydantic model where one is
    registered, else returns None.

    A plain object rather than a pydantic model: our decoders build up to
    ~10^5 per second from already-checked values, so nothing here validates;
    pydantic comes in with `typed`. Subclasses add fields as annotated class
    attributes with defaults (see `DashlyEvent`).
    """

    name: str
    channel: Optional[str]
    data: Any
    id: Optional[Union[int, str]]
    provider: str
    #: set by the engine when it queues the event; None only on an event straight from a protocol
    received_at: datetime
    raw: Optional[str]

    def __init__(
        self,
        name: str,
        *,
        provider: str = "rtsync",
        data: Any = None,
        channel: Optional[str] = None,
        id: Optional[Union[int, str]] = None,
        raw: Optional[str] = None,
        received_at: Optional[datetime] = None,
        **extra: Any,
    ) -> None:
        unknown = set(extra) - _declared(type(self))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        _set(self, "__dict__", {
            "name": name, "channel": channel, "data": data, "id": id, "provider": provider,
            "received_at": received_at, "raw": raw, **extra,
        })

    @classmethod
    def make(
        cls: Type[_E],
        name: str,
        *,
        provider: str,
        data: Any = None,
        channel: Optional[str] = None,
        id: Optional[Union[int, str]] = None,
        raw: Optional[str] = None,
        received_at: Optional[datetime] = None,
        **extra: Any,
    ) -> _E:
        """Build an event from already-decoded parts, unchecked (the hot path).

        `received_at` stays unset (None) unless given: reading the clock is the engine's
        job, not a decoder's. `extra` fills a subclass's own fields (e.g. DashlyEvent's
        `tag` and `time`).
        """
        values = {
            "name": name,
            "channel": channel,
            "data": data,
            "id": id,
            "provider": provider,
            "received_at": received_at,
            "raw": raw,
        }
        if extra:
            values.update(extra)
        obj = _new(cls)
        _set(obj, "__dict__", values)
        return obj

    @property
    def typed(self) -> Optional[BaseModel]:
        """`data` parsed with the vendor's model (unknown fields kept), or None if none applies.

        Parsed on each access: keep the result if you use it more than once.
        """
        if _PENDING:
            _load_views()
        for provider, pattern, model in _VIEWS:
            if provider == self.provider and fnmatchcase(self.name, pattern):
                return model.model_validate(self.data)
        return None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), self.name, self.channel, self.id, self.provider, self.raw))

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self.__dict__.items())
        return f"{type(self).__name__}({fields})"


_E = TypeVar("_E", bound=Event)


def stamp(events: Iterable[Event], when: datetime) -> None:
    """Set `received_at` to `when` on the events that have none (the engine, as it queues them)."""
    for event in events:
        values = event.__dict__
        if values["received_at"] is None:
            values["received_at"] = when


_new = object.__new__
_set = object.__setattr__


def _declared(cls: type) -> Set[str]:
    """The fields a class declares (annotations along its MRO), for `__init__`'s check of extras."""
    return {name for klass in cls.__mro__ for name in vars(klass).get("__annotations__", {})}
