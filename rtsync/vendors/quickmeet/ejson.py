"""Meteor's EJSON both ways: dates, binary, NaN/Infinity, escapes and custom types over plain JSON.

Wire forms (reference section 8), each recognised only when the object has
exactly those keys (`{"$date": 1, "x": 2}` is a plain object):

- `{"$date": ms}` <-> an aware UTC `datetime`. A naive `datetime` sent by us
  is taken as UTC (as `datetime.utcnow()` returns), never as local time: pass
  an aware one to be explicit.
- `{"$binary": "<base64>"}` <-> `bytes` (also `bytearray`/`memoryview` out);
- `{"$InfNaN": 0 | 1 | -1}` <-> `nan`, `inf`, `-inf`;
- `{"$escape": {...}}` -> a plain dict whose keys look like EJSON's; a dict we
  send that already has an EJSON form's keys (`{"$date": ms}`, `{"$escape":
  {...}}`) is taken as EJSON and sent as it is, as rtsync always did;
- `{"$type": name, "$value": ...}` <-> `CustomType(name, value)`, passed through
  untouched both ways (its value is whatever JSON the server sent);
- `{"$regexp": src, "$flags": f}` stays a plain dict (no Python equivalent).
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Dict

from ...errors import ProtocolError

__all__ = ["EPOCH", "MILLISECOND", "CustomType", "date_of_ms", "decode_ejson", "encode_date", "encode_ejson"]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MILLISECOND = timedelta(milliseconds=1)  # EPOCH + MILLISECOND * ms: see date_of_ms


@dataclass(frozen=True)
class CustomType:
    """An EJSON user type (`{"$type": name, "$value": value}`), kept as the server sent it."""

    name: str
    value: Any


def decode_ejson(value: Any) -> Any:
    """EJSON (already parsed JSON) to Python values.

    Raises `ProtocolError` for a special form whose value has the wrong type (a `$date`
    that is not a finite number of milliseconds in `datetime`'s range, `$binary` that is
    not base64, `$InfNaN` other than 0/1/-1) and for values nested too deeply.
    """
    try:
        return _decode(value)
    except RecursionError:
        raise ProtocolError("an EJSON value nested too deeply to decode") from None


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            key = next(iter(value))
            if key == "$date":
                return _date(value[key])
            if key == "$binary":
                return _binary(value[key])
            if key == "$InfNaN":
                return _inf_nan(value[key])
            if key == "$escape" and isinstance(value[key], dict):
                return {k: _decode(v) for k, v in value[key].items()}
        elif len(value) == 2 and "$type" in value and "$value" in value and isinstance(value["$type"], str):
            return CustomType(value["$type"], value["$value"])
        return {k: _decode(v) if isinstance(v, (dict, list)) else v for k, v in value.items()}
    if isinstance(value, list):  # scalars are copied as they are, without a call each (the hot path)
        return [_decode(v) if isinstance(v, (dict, list)) else v for v in value]
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text[:40] + "..." if len(text) > 40 else text


def date_of_ms(ms: int) -> datetime:
    """Whole milliseconds since the epoch as an aware UTC datetime; OverflowError out of range.

    The same value as `EPOCH + timedelta(milliseconds=ms)`, in a third of the time (building a
    timedelta from arguments is the slow part; multiplying one is not)."""
    return EPOCH + MILLISECOND * ms


def _date(ms: Any) -> datetime:
    if type(ms) is int:
        try:
            return date_of_ms(ms)
        except (OverflowError, OSError, ValueError):
            pass
    elif isinstance(ms, (int, float)) and not isinstance(ms, bool) and math.isfinite(ms):
        try:  # exact for whole milliseconds (`fromtimestamp(ms / 1000)` is off by one for some)
            return EPOCH + timedelta(milliseconds=ms)
        except (OverflowError, OSError, ValueError):
            pass
    raise ProtocolError(f"an EJSON date is not a number of milliseconds in range: {{'$date': {_shown(ms)}}}")


def _binary(text: Any) -> bytes:
    if isinstance(text, str):
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            pass
    raise ProtocolError(f"an EJSON binary is not base64 text: {{'$binary': {_shown(text)}}}")


def _inf_nan(sign: Any) -> float:
    if not isinstance(sign, bool) and sign in (0, 1, -1):
        return math.nan if sign == 0 else math.copysign(math.inf, sign)
    raise ProtocolError(f"an EJSON $InfNaN is not 0, 1 or -1: {{'$InfNaN': {_shown(sign)}}}")


def encode_date(ms: int) -> Dict[str, int]:
    return {"$date": ms}


def encode_ejson(value: Any) -> Any:
    """Python values to EJSON, ready for `json.dumps` (which then never meets NaN, bytes or datetimes).

    Raises `TypeError` naming the first value JSON cannot hold (a set, an object ...).
    """
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$InfNaN": 0 if math.isnan(value) else (1 if value > 0 else -1)}
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        delta = moment - EPOCH
        return {"$date": (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$binary": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, CustomType):
        return {"$type": value.name, "$value": value.value}
    if isinstance(value, dict):
        if _looks_special(value):
            return value  # already EJSON (`encode_date(ms)`, `{"$escape": ...}`): sent as it is
        return {_key(k): encode_ejson(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_ejson(v) for v in value]
    raise TypeError(f"cannot send a {type(value).__name__} as EJSON (use str, numbers, bool, None, "
                    "datetime, bytes, lists and dicts with str keys)")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"EJSON object keys are strings, not {type(key).__name__}")
    return key


def _looks_special(obj: Dict[Any, Any]) -> bool:
    keys = set(obj)
    return (len(keys) == 1 and keys <= {"$date", "$binary", "$InfNaN", "$escape"}) or keys == {"$type", "$value"}
