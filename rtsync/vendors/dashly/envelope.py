"""Dashly envelopes from untrusted text: concatenated JSON split per message, every field checked.

The push stream module pastes the published body into its template without
escaping, so whatever a publisher sends becomes part of the envelope: deep
nesting, `1e999`, duplicate keys that override `id` or `tag`, strings where
numbers belong. Each message is decoded on its own; one that cannot be
accepted raises `Poison` with a short reason, and nothing else escapes.
"""

from __future__ import annotations

import json
import re
from email.utils import formatdate, parsedate_to_datetime
from typing import Any, Dict, Iterator, Optional, Tuple

from ...sansio import shallow

__all__ = ["Fields", "Poison", "epoch_of", "format_http_date", "iter_envelopes", "read_fields", "salvage_key", "shown"]

#: ids and tags are nginx `ngx_int_t` counters; anything wider is not from the module.
MAX_COUNTER = 2**63 - 1
_INT_TEXT = re.compile(r"-?\d{1,19}")
_ENVELOPE_START = re.compile(r'\{\s*"id"\s*:')
_WS = re.compile(r"\s*")
# Strings (escapes included) and brackets: enough to find where a top-level value ends
# without recursion, so a body nested too deep for json still has known edges.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
# The template ends `"tag":"T","time":"D"}`: the last match in a piece is the envelope's own.
_TAG_TEXT = re.compile(r'"tag"\s*:\s*"?(?:W/)?(\d{1,19})"?')
_TIME_TEXT = re.compile(r'"time"\s*:\s*"([^"\\]{1,64})"')

Fields = Tuple[int, str, int, int, str]  # id, channel, epoch, tag, time text


class Poison(Exception):
    """A message that cannot be accepted; `str()` says why (never leaves this package)."""


def shown(raw: str, limit: int = 100) -> str:
    """`raw` for an error message: repr'd, cut to about `limit` characters, with its length."""
    text = repr(raw[:limit])
    if len(text) > limit + 2:
        text = text[:limit] + "..."
    return text if len(raw) <= limit else f"{text}... ({len(raw)} chars)"


def format_http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


#: HTTP-date text -> epoch (None: not a date), as `epoch_of` found it; the same dict object for good
EPOCHS: Dict[str, Optional[int]] = {}


def epoch_of(text: str) -> Optional[int]:
    """Seconds since the epoch for an HTTP-date, or None; cached because one value serves a second."""
    found = EPOCHS.get(text, -1)
    if found != -1:
        return found
    try:
        value: Optional[int] = int(parsedate_to_datetime(text).timestamp())
    except Exception:  # TypeError, ValueError, IndexError, OverflowError: all "not a date"
        value = None
    if len(EPOCHS) > 1024:
        EPOCHS.clear()
    EPOCHS[text] = value
    return value


def counter(value: Any, what: str, low: int = 0) -> int:
    """An id or tag: a JSON integer or a string holding one (a tag may be an ETag `W/"5"`)."""
    if type(value) is int:
        number = value
    elif type(value) is str and value.isdigit() and value.isascii() and len(value) < 19:
        number = int(value)  # the template's own shape ("tag":"3"): no regex needed
    elif type(value) is str:
        text = value.strip()
        if text.startswith("W/"):
            text = text[2:]
        text = text.strip('"')
        if not _INT_TEXT.fullmatch(text):
            raise Poison(f"{what} is not an integer")
        number = int(text)
    else:
        raise Poison(f"{what} is {_kind(value)}, not an integer")
    if not low <= number <= MAX_COUNTER:
        raise Poison(f"{what} {number if abs(number) < 10**30 else '(huge)'} is out of range")
    return number


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "not finite" if value != value or value in (float("inf"), float("-inf")) else "a fraction"
    names: Dict[type, str] = {dict: "an object", list: "an array", str: "a string"}
    return names.get(type(value), type(value).__name__)


def read_fields(envelope: Dict[str, Any], msg_id: int) -> Fields:
    """The checked `(id, channel, epoch, tag, time)` of a message with `id > 0`; Poison otherwise.

    `msg_id`: what `message_id()` read, positive (a counter is read once).
    """
    channel = envelope.get("channel")
    if type(channel) is not str:
        raise Poison(f"channel is {_kind(channel)}, not a string")
    time_text = envelope.get("time")
    if type(time_text) is not str:
        raise Poison(f"time is {_kind(time_text)}, not an HTTP-date")
    epoch = epoch_of(time_text)
    if epoch is None:
        raise Poison("time is not an HTTP-date")
    if "tag" not in envelope:
        raise Poison("tag is missing")
    return msg_id, channel, epoch, counter(envelope["tag"], "tag"), time_text


def message_id(envelope: Dict[str, Any]) -> int:
    """The id, allowing the module's reserved ids -1, -2, -3; Poison if absent or not an integer."""
    if "id" not in envelope:
        raise Poison("id is missing")
    return counter(envelope["id"], "id", -3)


def salvage_key(raw: str) -> Optional[Tuple[int, int, str]]:
    """`(epoch, tag, time)` read from the text of a message that could not be decoded, if it has one.

    The template puts `tag` and `time` after the pasted body, so their last matches are the
    envelope's own: the cursor can then move past a poison message instead of fetching it again.
    """
    tags, times = _TAG_TEXT.findall(raw[-256:]), _TIME_TEXT.findall(raw[-256:])
    if not tags or not times:
        return None
    epoch = epoch_of(times[-1])
    if epoch is None or int(tags[-1]) > MAX_COUNTER:
        return None
    return epoch, int(tags[-1]), times[-1]


def _value_end(text: str, pos: int) -> Optional[int]:
    """Where the JSON-like value starting at `pos` ends (brackets balanced outside strings), or None."""
    depth = 0
    for match in _TOKEN.finditer(text, pos):
        if depth == 0 and match.start() != pos:
            return None  # something else (a number, a bare word) comes first
        token = match.group()
        if token in "{[":
            depth += 1
        elif token in "}]":
            depth -= 1
            if depth <= 0:
                return match.end()
        if depth == 0:  # a bare string or number at the top level: not an envelope
            return None
    return None


def iter_envelopes(text: str) -> Iterator[Tuple[Any, str]]:
    """Yield `(value or None, raw piece)` for each JSON value in a concatenated body.

    A piece that does not parse (the module's reserved messages are invalid JSON
    under Dashly's template; a body can be nested too deep) is yielded with None,
    cut where its brackets close, or else at the next envelope.
    """
    decoder = json.JSONDecoder()
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    end = len(text)
    while pos < end:
        try:
            value, stop = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            stop = _value_end(text, pos) or 0
            if stop <= pos:
                nxt = _ENVELOPE_START.search(text, pos + 1)
                stop = nxt.start() if nxt else end
            yield None, text[pos:stop]
        else:
            try:
                yield shallow(value, text[pos:stop]), text[pos:stop]
            except RecursionError:  # deeper than every Python's json allows: the same verdict on each
                yield None, text[pos:stop]
        pos = _WS.match(text, stop).end()  # type: ignore[union-attr]
