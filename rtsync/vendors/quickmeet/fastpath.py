"""The common live room message decoded without the general EJSON walk; anything else is left to the general path.

A Rocket.Chat message's only EJSON forms are, almost always, the `$date`s of
its own `ts`, `_updatedAt` and `editedAt`. When the frame's text proves there
is no other string starting with `$` anywhere (every key or value that does
shows as `"$` in the text, unless its `$` is escaped as `\\u0024`), the message
decodes to a shallow copy with those dates converted: the same value
`decode_ejson` builds, without visiting the rest (`md` trees, `u`, `urls` ...).
Every doubt (another `$`, an escape, a date of another type, deep nesting, an
ill-typed `_id`) answers None, and the caller takes the general path, which
also words any report.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

from .ejson import date_of_ms, decode_ejson

__all__ = ["plain_message", "plain_result"]

#: Top-level fields that carry a message's dates (others fall back to the general walk).
_DATE_FIELDS = ("ts", "_updatedAt", "editedAt")
#: Beyond this many brackets the general walk may meet the interpreter's recursion limit
#: (a ProtocolError there); its verdict is then the one given, so such frames go to it.
_MAX_BRACKETS = 300


def plain_message(args: List[Any], text: str) -> Optional[Tuple[Dict[str, Any], str, int, int]]:
    """(`decode_ejson(args[0])`, its `_id`, its `ts` and its version's time in ms), or None.

    `args[0]` is a dict (the caller checked); `text` is the frame it was parsed from.
    A result means the message passes `message_problem` and that `args[1:]` decode to
    themselves (no `$` anywhere else in the frame)."""
    message = args[0]
    ident = message.get("_id")
    if type(ident) is not str:
        return None
    dollars = text.count('"$')
    if dollars > len(_DATE_FIELDS) or "\\u0024" in text or (
            len(text) > 2 * _MAX_BRACKETS and text.count("{") + text.count("[") >= _MAX_BRACKETS):
        return None
    data = dict(message)
    found = 0
    ts_ms = updated_ms = 0
    for key in _DATE_FIELDS:
        value = message.get(key)
        if value is None:
            if key == "ts":
                return None  # a message without a time: the general path knows what to do
            continue
        ms = _ms(value)
        if ms is None:
            return None
        try:
            when: datetime = date_of_ms(ms)
        except (OverflowError, OSError, ValueError):
            return None  # out of datetime's range: the general path reports it
        data[key] = when
        found += 1
        if key == "ts":
            ts_ms = ms
        elif key == "_updatedAt":
            updated_ms = ms
    if found != dollars:
        return None  # some other `$` string in the frame: only the walk can tell what it is
    return data, ident, ts_ms, updated_ms or ts_ms


def _ms(value: Any) -> Optional[int]:
    """The milliseconds of `{"$date": <int>}`, else None (a float, bool or plain number is the walk's)."""
    if type(value) is not dict or len(value) != 1:
        return None
    ms = value.get("$date")
    return ms if type(ms) is int else None


def plain_result(result: Any, text: str) -> Any:
    """`decode_ejson(result)` (ProtocolError included), skipping the walk when `text`, the frame it came
    in, has no string starting with `$` and nests too little for the walk to fail: it is `result` itself."""
    if '"$' in text or "\\u0024" in text or (
            len(text) > 2 * _MAX_BRACKETS and text.count("{") + text.count("[") >= _MAX_BRACKETS):
        return decode_ejson(result)
    return result
