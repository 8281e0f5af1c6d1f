"""Dashly's resume cursor, its event type and the channel-list rules the server enforces."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence
from urllib.parse import quote

from ...errors import ConfigurationError
from ...events import Event
from .envelope import epoch_of, format_http_date

__all__ = ["CHANNEL_DELETED", "MAX_CHANNELS", "PING", "MAX_CHANNEL_LENGTH", "PROVIDER", "Cursor", "DashlyEvent",
           "parse_tag", "validate_channels"]

PROVIDER = "dashly"
MAX_CHANNELS = 50
MAX_CHANNEL_LENGTH = 200
CHANNEL_DELETED = "dashly.channel_deleted"
#: what a message of the `ping` channel ("for connection integrity monitoring") is named: liveness,
#: not content, so `on("conversation_*")`-style patterns never see it
PING = "dashly.ping"

# Characters encodeURIComponent leaves alone: pushstream.js refuses any other.
_CHANNEL_RE = re.compile(r"^[A-Za-z0-9_.!~*'()-]+$")
_BACKTRACK_RE = re.compile(r"\.b\d+$")


class DashlyEvent(Event):
    """A Dashly message: `name` and `channel` are its channel, `data` its `message`;
    `tag` and `time` are the server's resume cursor for it."""

    tag: int = 0
    time: str = ""


@dataclass(frozen=True, order=True)
class Cursor:
    """A resume point: strictly after second `epoch` (HTTP-date `time`) and `tag` within it."""

    epoch: int
    tag: int
    time: str = field(compare=False)

    @classmethod
    def of(cls, epoch: int, tag: int, time: str) -> "Cursor":
        """`Cursor(epoch, tag, time)` in a third of the time, for parts already checked (the
        after-callback hook makes one per event): the frozen `__init__` sets each field by a call."""
        cursor = _new(cls)
        fields = cursor.__dict__
        fields["epoch"], fields["tag"], fields["time"] = epoch, tag, time
        return cursor

    def query(self) -> str:
        # quote(), not urlencode(): the module decodes %20 but not "+" (silent loss).
        return f"tag={self.tag}&time={quote(self.time, safe='')}"

    def to_json(self) -> Dict[str, Any]:
        return {"time": self.time, "tag": self.tag}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Cursor":
        return cls.parse(str(data["time"]), data.get("tag", 0))

    @classmethod
    def parse(cls, time_text: str, tag: Any) -> "Cursor":
        """Build a cursor from an HTTP-date and a tag (`21`, `"21"` or an ETag `W/21`)."""
        epoch = _epoch(time_text)
        if epoch is None:
            raise ValueError(f"not an HTTP-date: {time_text!r}")
        return cls(epoch, parse_tag(tag), time_text)

    def stepped_back(self, seconds: int) -> "Cursor":
        epoch = max(0, self.epoch - seconds)
        return Cursor(epoch, 0, format_http_date(epoch))


def parse_tag(value: Any) -> int:
    text = str(value).strip()
    if text.startswith("W/"):
        text = text[2:]
    return abs(int(text.strip('"') or 0))


_epoch = epoch_of
_new = object.__new__


def validate_channels(channels: Sequence[str], limit: Optional[int] = MAX_CHANNELS) -> List[str]:
    """Check a channel list the way the server and pushstream.js would, with errors that say what to fix.

    `limit`: channels one connection may carry (None: a client splits longer lists itself)."""
    if isinstance(channels, str):
        channels = [channels]
    channels = list(channels)
    if not channels:
        raise ConfigurationError("at least one channel is needed, e.g. channels=['conversation_reply.100']")
    if limit is not None and len(channels) > limit:
        raise ConfigurationError(
            f"{len(channels)} channels given; Dashly allows at most {MAX_CHANNELS} per connection. "
            "Split them across several clients."
        )
    for ch in channels:
        if not isinstance(ch, str) or not _CHANNEL_RE.match(ch):
            raise ConfigurationError(
                f"invalid channel name {ch!r}: use letters, digits and _ . - ! ~ * ' ( ) only "
                "(e.g. 'conversation_reply.100')"
            )
        if ch == "ALL" or "*" in ch:
            raise ConfigurationError(f"channel {ch!r} is reserved by the server and cannot be subscribed to")
        if len(ch) > MAX_CHANNEL_LENGTH:
            raise ConfigurationError(f"channel {ch[:20]!r}... is longer than {MAX_CHANNEL_LENGTH} characters")
        if _BACKTRACK_RE.search(ch):
            raise ConfigurationError(
                f"channel {ch!r} ends like a backtrack suffix (.b<N>) and would be misread by the server"
            )
    if len(set(channels)) != len(channels):
        raise ConfigurationError("the channel list has duplicates")
    return channels

