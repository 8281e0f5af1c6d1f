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

from typing import Any, Dict, List, Optional, Tuple

from ...jsontext import more_brackets_than
from .ejson import EPOCH, MILLISECOND, decode_ejson

__all__ = ["plain_message", "plain_result"]

#: Top-level fields that carry a message's dates (others fall back to the general walk).
_DATE_FIELDS = ("ts", "_updatedAt", "editedAt")
_LATER_DATES = _DATE_FIELDS[1:]
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
    ts = message.get("ts")
    if type(ident) is not str or type(ts) is not dict or len(ts) != 1:
        return None
    ts_ms = ts.get("$date")
    if type(ts_ms) is not int:
        return None
    if ("\\" in text or len(text) > 2 * _MAX_BRACKETS) and _escaped_or_deep(text):
        return None  # (no call for most frames: they hold no backslash and are short)
    data = dict(message)
    try:  # date_of_ms(), written out
        data["ts"] = EPOCH + MILLISECOND * ts_ms
        updated_ms = 0
        found = 1
        for key in _LATER_DATES:
            value = message.get(key)
            if value is None:
                continue
            ms = value.get("$date") if type(value) is dict and len(value) == 1 else None
            if type(ms) is not int:
                return None  # a plain number, a float, another form: the walk's
            data[key] = EPOCH + MILLISECOND * ms
            found += 1
            if key == "_updatedAt":
                updated_ms = ms
    except (OverflowError, OSError, ValueError):
        return None  # out of datetime's range: the general path reports it
    # Each date converted spells one `"$`; another is a form (or a string) only the walk can judge.
    # Counting `$` alone is cheaper, and settles it unless some text holds a `$`.
    if text.count("$") != found and text.count('"$') != found:
        return None
    return data, ident, ts_ms, updated_ms or ts_ms


def plain_result(result: Any, text: str) -> Any:
    """`decode_ejson(result)` (ProtocolError included), skipping the walk when `text`, the frame it came
    in, has no string starting with `$` and nests too little for the walk to fail: it is `result` itself."""
    if "$" in text and '"$' in text or _escaped_or_deep(text):
        return decode_ejson(result)
    return result


def _escaped_or_deep(text: str) -> bool:
    """A `$` spelled `\\u0024` (the text cannot prove where `$` strings are), or so many brackets that
    the walk may fail on depth. One-character tests first: they are a tenth of the cost."""
    return "\\" in text and "\\u0024" in text or (
        len(text) > 2 * _MAX_BRACKETS and more_brackets_than(text, _MAX_BRACKETS - 1))
