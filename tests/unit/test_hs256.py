"""HS256 compact JWS: interoperable with PyJWT both ways, HS256 only, and silent about short keys."""

from __future__ import annotations

import warnings

import jwt
import pytest

from rtsync import hs256


def test_round_trip_and_pyjwt_both_ways() -> None:
    key = b"k" * 40
    token = hs256.sign({"clientId": "c", "timestamp": 1}, key)
    assert jwt.decode(token, key, algorithms=["HS256"]) == {"clientId": "c", "timestamp": 1}
    assert hs256.verify(jwt.encode({"a": [1, 2]}, key, algorithm="HS256"), key) == {"a": [1, 2]}


def test_short_keys_raise_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hs256.verify(hs256.sign({"x": 1}, b"short"), b"short") == {"x": 1}


@pytest.mark.parametrize("token,why", [
    (jwt.encode({"a": 1}, None, algorithm="none"), "'none', not HS256"),
    (jwt.encode({"a": 1}, "k" * 64, algorithm="HS512"), "'HS512', not HS256"),
    (jwt.encode({"a": 1}, "other-key-of-at-least-thirty-two-bytes", algorithm="HS256"), "bad signature"),
    ("bm90IGpzb24.e30.c2ln", "malformed"),
    ("no-dots-at-all", "malformed"),
    (hs256.sign([1, 2], b"k" * 40), "not a JSON object"),  # type: ignore[arg-type]
])
def test_what_is_refused_and_why(token: str, why: str) -> None:
    with pytest.raises(hs256.BadToken, match=why) as refused:
        hs256.verify(token, b"k" * 40)
    assert "k" * 40 not in str(refused.value)
