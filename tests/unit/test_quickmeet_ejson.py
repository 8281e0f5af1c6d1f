"""Meteor EJSON both ways (reference section 8): property round trips and every special form's bad values."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtsync.errors import ProtocolError
from rtsync.vendors.quickmeet.ejson import CustomType, decode_ejson, encode_date, encode_ejson

KEYS = st.text(max_size=8).filter(lambda k: not k.startswith("$"))
DATES = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.just(timezone.utc)).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**53), max_value=2**53), st.text(max_size=20),
    st.floats(allow_nan=True, allow_infinity=True), st.binary(max_size=40), DATES,
    st.builds(CustomType, st.text(min_size=1, max_size=8), st.integers() | st.text(max_size=8)),
)
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=20)


def same(a: Any, b: Any, ordered: bool = False) -> bool:
    """Equality that checks types (True is not 1) and where NaN equals NaN (EJSON carries it;
    Python's == does not); `ordered` also compares the order of every dict's keys."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, ordered) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        keys_match = list(a) == list(b) if ordered else a.keys() == b.keys()
        return keys_match and all(same(a[k], b[k], ordered) for k in a)
    return type(a) is type(b) and a == b


@given(VALUES)
def test_every_value_survives_the_wire(value: Any) -> None:
    text = json.dumps(encode_ejson(value), allow_nan=False)  # strict JSON: no NaN, bytes or datetimes left
    assert same(decode_ejson(json.loads(text)), value)


@given(st.integers(min_value=-62135596800000 + 86400000, max_value=253402300799000 - 86400000))
def test_dates_round_trip_to_the_millisecond(ms: int) -> None:
    decoded = decode_ejson({"$date": ms})
    assert decoded.tzinfo is not None and encode_ejson(decoded) == {"$date": ms}


def test_the_wire_forms() -> None:
    assert encode_ejson(b"Hello") == {"$binary": "SGVsbG8="} and decode_ejson({"$binary": "SGVsbG8="}) == b"Hello"
    assert encode_ejson([math.inf, -math.inf]) == [{"$InfNaN": 1}, {"$InfNaN": -1}]
    assert math.isnan(decode_ejson({"$InfNaN": 0}))
    assert encode_ejson(CustomType("money", {"cents": 5})) == {"$type": "money", "$value": {"cents": 5}}
    assert decode_ejson({"$type": "money", "$value": 5}) == CustomType("money", 5)
    assert decode_ejson({"$escape": {"$date": 5}}) == {"$date": 5}  # literal keys, one level
    assert decode_ejson({"$regexp": "a+", "$flags": "i"}) == {"$regexp": "a+", "$flags": "i"}  # no Python form
    assert decode_ejson({"$date": 1, "x": 2}) == {"$date": 1, "x": 2}  # exactly those keys, or plain


def test_naive_datetimes_are_utc_and_already_encoded_dicts_go_as_they_are() -> None:
    aware = datetime(2023, 10, 4, 12, 0, 0, 123000, tzinfo=timezone.utc)
    assert encode_ejson(aware.replace(tzinfo=None)) == encode_ejson(aware) == {"$date": 1696420800123}
    plus_two = aware.astimezone(timezone(timedelta(hours=2)))
    assert encode_ejson(plus_two) == {"$date": 1696420800123}  # the instant, not the wall clock
    assert encode_ejson(encode_date(5)) == {"$date": 5}  # rtsync's own EJSON helpers keep working
    assert encode_ejson({"$escape": {"$date": 5}}) == {"$escape": {"$date": 5}}


@pytest.mark.parametrize("bad, what", [
    ({"$date": "2023-10-04"}, "date"), ({"$date": float("nan")}, "date"), ({"$date": 1e20}, "date"),
    ({"$date": True}, "date"), ({"$binary": "not base64!"}, "binary"), ({"$binary": 5}, "binary"),
    ({"$binary": "é"}, "binary"), ({"$InfNaN": 2}, "InfNaN"), ({"$InfNaN": True}, "InfNaN"),
    ({"$InfNaN": "1"}, "InfNaN"),
])
def test_bad_special_forms_are_protocol_errors_naming_the_form(bad: Any, what: str) -> None:
    with pytest.raises(ProtocolError, match=what):
        decode_ejson({"outer": [bad]})


def test_what_json_cannot_carry_is_a_type_error_in_the_caller() -> None:
    with pytest.raises(TypeError, match="set"):
        encode_ejson({"a": {1}})
    with pytest.raises(TypeError, match="keys are strings"):
        encode_ejson({1: "a"})


def test_deep_nesting_is_a_protocol_error_not_a_crash() -> None:
    value: Any = 1
    for _ in range(5000):
        value = [value]
    with pytest.raises(ProtocolError, match="nested too deeply"):
        decode_ejson(value)
