"""Dialpad's REST answers, hostile ones included, on recorded responses: objects, pages, cursors, 429 waits."""

from __future__ import annotations

import json
from typing import Any, List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtsync.errors import ConnectionLost, ProtocolError, RateLimited, RtsyncError
from rtsync.sansio import HttpResponse
from rtsync.vendors.dialpad import rest as rest_module
from rtsync.vendors.dialpad.rest import DialpadRest
from tests.hostile import HOSTILE, render

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Recorded:
    """Stands in for the HTTP client: answers each request with the next recorded response."""

    def __init__(self, rest: DialpadRest, answers: List[Any]) -> None:
        self.answers = list(answers)
        self.sent: List[str] = []
        rest.http.request = self.request  # type: ignore[method-assign]

    def request(self, method: str, url: str, **kw: Any) -> HttpResponse:
        self.sent.append(f"{method} {url} {kw['headers']['Authorization']}")
        answer = self.answers.pop(0)
        if isinstance(answer, RtsyncError):
            raise answer
        return HttpResponse(200, {}, answer if isinstance(answer, bytes) else json.dumps(answer).encode())


def rest(*answers: Any, key: str = "k") -> "tuple[DialpadRest, Recorded]":
    r = DialpadRest("https://dialpad.test", lambda: key)
    return r, Recorded(r, list(answers))


@SETTINGS
@given(body=st.one_of(HOSTILE.map(render), st.binary(max_size=40).map(lambda b: b.decode("latin-1"))))
def test_any_answer_is_an_object_or_a_protocol_error(body: str) -> None:
    r, _ = rest(body.encode("utf-8", "surrogatepass"))
    try:
        answer = r.call("GET", "websockets/1")
    except ProtocolError as exc:
        assert "not a JSON object" in str(exc)
    else:
        assert isinstance(answer, dict)


@SETTINGS
@given(pages=st.lists(st.one_of(
    HOSTILE, st.fixed_dictionaries({"items": st.lists(HOSTILE, max_size=3)},
                                   optional={"cursor": st.one_of(HOSTILE, st.sampled_from(["1", "2", "1"]))})),
    min_size=1, max_size=5))
def test_any_listing_gives_items_that_are_objects_or_one_protocol_error(pages: List[Any]) -> None:
    r, recorded = rest(*[render(p).encode("utf-8", "surrogatepass") for p in pages],
                       *[json.dumps({"items": []}).encode()] * 2)
    try:
        items = r.pages("subscriptions/call")
    except ProtocolError:
        pass
    else:
        assert all(isinstance(item, dict) for item in items)
    assert len(recorded.sent) <= len(pages) + 1  # never past what the server handed out, never a loop


def test_a_repeated_cursor_is_refused_instead_of_followed_forever() -> None:
    r, recorded = rest({"items": [{"id": 1}], "cursor": "a"}, {"items": [{"id": 2}], "cursor": "a"})
    with pytest.raises(ProtocolError, match="gave before"):
        r.pages("websockets")
    assert len(recorded.sent) == 2


def test_cursors_are_quoted_into_the_query() -> None:
    r, recorded = rest({"items": [{"id": 1}], "cursor": "a&apikey=x/y"}, {"items": [{"id": 2}]})
    assert r.pages("websockets") == [{"id": 1}, {"id": 2}]
    assert "?cursor=a%26apikey%3Dx%2Fy " in recorded.sent[1]


def test_429s_are_waited_out_within_the_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: List[Optional[float]] = []
    r, recorded = rest(RateLimited("limited", retry_after=2), RateLimited("limited"), {"id": 1})
    monkeypatch.setattr(r.http, "pause", lambda since, delay: waits.append(delay) or False)
    assert r.call("POST", "websockets", {}) == {"id": 1}
    assert waits == [2, 2.0]  # the server's word, then 1, 2, 4 ... s of our own (here the second try's)
    r, _ = rest(*[RateLimited("limited", retry_after=0)] * (rest_module.MAX_RETRIES + 1))
    monkeypatch.setattr(r.http, "pause", lambda since, delay: False)
    with pytest.raises(RateLimited):  # not forever, even when told to wait 0 s
        r.call("GET", "websockets/1")
    r, recorded = rest(RateLimited("limited", retry_after=30), RateLimited("limited", retry_after=31), {"id": 1})
    monkeypatch.setattr(r.http, "pause", lambda since, delay: False)
    with pytest.raises(RateLimited) as limited:  # 30 + 31 s would pass max_wait (60 s): said at once
        r.call("GET", "websockets/1")
    assert limited.value.retry_after == 31 and len(recorded.sent) == 2
    r, recorded = rest(RateLimited("limited", retry_after=1), {"id": 1})
    with pytest.raises(RateLimited):
        r.call("GET", "websockets/1", wait=False)  # the engine's refreshes: its policy waits instead


def test_an_interrupted_wait_sends_nothing_more_and_resume_serves_again() -> None:
    r, recorded = rest(RateLimited("limited", retry_after=50), {"id": 1}, {"id": 2})

    def interrupted_meanwhile(*args: Any, **kw: Any) -> HttpResponse:
        try:
            return Recorded.request(recorded, *args, **kw)  # the call is under way (here: refused) ...
        finally:
            r.interrupt()  # ... when stop() runs, before its wait has begun
            r.resume()

    r.http.request = interrupted_meanwhile  # type: ignore[method-assign]
    with pytest.raises(ConnectionLost, match="not sent again"):
        r.call("GET", "websockets/1")
    assert len(recorded.sent) == 1
    r.http.request = recorded.request  # type: ignore[method-assign]
    assert r.call("GET", "websockets/1") == {"id": 1}  # a call begun after the stop is served


def test_the_key_is_asked_for_each_request() -> None:
    keys = iter(["first", "second"])
    r = DialpadRest("https://dialpad.test", lambda: next(keys))
    recorded = Recorded(r, [{"id": 1}, {"id": 2}])
    r.call("GET", "websockets/1")
    r.call("GET", "websockets/2")
    assert [s.rsplit(" ", 1)[-1] for s in recorded.sent] == ["first", "second"]
