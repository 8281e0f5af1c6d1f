"""Dashly's Nginx Push Stream protocol, sans-I/O: URLs with the resume cursor in, envelopes and events out.

What the real module does and why each rule exists is in
protocols/dashly-pushstream.md; the rules this module enforces:

- the cursor is the newest `(time, tag)` over messages with `id > 0` (never the
  last message: replay is grouped per channel, so tags arrive out of order);
- `tag`/`time` go back as query args, percent-encoded with `%20`, never `+`
  (the module does not decode `+` and silently treats us as new);
- reserved ids -1/-2/-3 never move the cursor; -2 (channel deleted) is an event;
- long-poll bodies are concatenated JSON values, parsed as a stream;
- duplicates are dropped by `(channel, id)`; a jump in a channel's ids that is
  not filled within `gap_grace` seconds becomes an `rtsync.gap` event;
- live deliveries can overtake each other across nginx workers, so a
  WebSocket resumes one second before its cursor, and a long poll re-asks
  from the oldest cursor not yet confirmed when it has a reason to (a hole
  in a channel's ids, an idle `304`, or every `confirm_every` live answers);
  dedupe drops the repeats. One request per delivered batch otherwise.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, List, Mapping, Optional, Sequence, TypeVar, Union, cast
from urllib.parse import quote

from ...errors import ProtocolError, RequestRejected, RtsyncError
from ...credentials import CredentialSource
from ...policy import close_error
from ...sansio import (
    Connected,
    Fail,
    Handshake,
    HttpRequest,
    HttpResponse,
    Liveness,
    Output,
    PollingProtocol,
    Report,
    Rotate,
    WebSocketProtocol,
)
from .cursor import CHANNEL_DELETED, MAX_CHANNELS, Cursor, DashlyEvent, parse_tag, validate_channels
from .envelope import Poison, counter, format_http_date, iter_envelopes, shown
from .refusals import explain, header, http_failure
from .state import DashlyState

__all__ = [
    "CHANNEL_DELETED",
    "MAX_CHANNELS",
    "Cursor",
    "DashlyEvent",
    "DashlyState",
    "LongPollProtocol",
    "ShortPollProtocol",
    "WebSocketStream",
    "format_http_date",
    "iter_envelopes",
    "parse_tag",
    "validate_channels",
]


_F = TypeVar("_F", bound=Callable[..., List[Output]])


def _guarded(what: str) -> Callable[[_F], _F]:
    """Last resort for a protocol entry point: only RtsyncErrors leave it; any other exception
    (a bug, or input no check foresaw) becomes one Report and the link goes on."""

    def wrap(method: _F) -> _F:
        @functools.wraps(method)
        def guarded(self: Any, *args: Any) -> List[Output]:
            try:
                return method(self, *args)
            except RtsyncError:
                raise
            except Exception as exc:
                return [_unhandled(what, exc, args[0] if args else None)]

        return cast(_F, guarded)

    return wrap


def _unhandled(what: str, exc: Exception, first: Any) -> Report:
    """The Report of `_guarded`: what failed, and the start of the input it failed on."""
    if isinstance(first, HttpResponse):
        first = first.body.decode("utf-8", "replace")
    detail = f": {shown(first)}" if isinstance(first, str) else ""
    return Report(ProtocolError(f"skipped a Dashly {what} that could not be handled ({type(exc).__name__}){detail}"))


class _Base:
    """URL building shared by the three transports."""

    mode = ""

    def __init__(self, base_url: str, token: Union[str, CredentialSource], state: DashlyState) -> None:
        self.base_url = base_url.rstrip("/")
        self._source = token if isinstance(token, CredentialSource) else None
        self.token = token.current or "" if isinstance(token, CredentialSource) else token
        self.state = state
        #: which connection of a client this is (a client splits long channel lists over several)
        self.shard = 0

    def refresh_token(self) -> None:
        """Resolve the auth token again (a callable token is called before each connection attempt)."""
        if self._source is not None:
            self.token = self._source.get()

    def set_channels(self, channels: Sequence[str]) -> List[Output]:
        """Change the channel list; the next connection (or request) uses it, resuming from the cursor."""
        self.state.set_channels(channels)
        return []

    def url(self, cursor: Optional[Cursor], mode: str = "") -> str:
        path = "/".join(quote(ch, safe="") for ch in self.state.channels)
        query = f"auth_token={quote(self.token, safe='')}"
        if cursor is not None:
            query += "&" + cursor.query()
        return f"{self.base_url}/{mode or self.mode}/{path}?{query}"

    def _detail(self) -> Mapping[str, Any]:
        return {"connection": self.shard, "channels": len(self.state.channels)}


class WebSocketStream(_Base, WebSocketProtocol):
    """Dashly over WebSocket. Liveness: any frame; after `keepalive` s of silence we send an
    empty-payload PING (the server PONGs it), and `keepalive + pong_timeout` s of silence is stale."""

    mode = "websocket"

    def __init__(
        self, base_url: str, token: Union[str, CredentialSource], state: DashlyState, *,
        keepalive: float = 20.0, pong_timeout: float = 10.0, step_back: int = 1,
    ) -> None:
        super().__init__(base_url, token, state)
        self.liveness = Liveness("Dashly", interval=keepalive, timeout=pong_timeout)
        self.step_back = step_back
        self._opened_before = False  # `resumed` is only ever true on a later link
        self._rotate = False  # the channel list changed: replace the link (make-before-break)
        self._asked: Optional[List[str]] = None  # the channels of the last handshake

    def set_channels(self, channels: Sequence[str]) -> List[Output]:
        self.state.set_channels(channels)
        self._rotate = True  # asked for at the next tick, on the link thread
        return []

    def handshake(self) -> Handshake:
        cursor = self.state.cursor
        if cursor is not None and self.step_back:
            cursor = cursor.stepped_back(self.step_back)
        self._asked = list(self.state.channels)
        self.state.asking()
        return Handshake(self.url(cursor))

    @_guarded("link opening")
    def opened(self, now: float) -> List[Output]:
        self.liveness.opened(now)
        self.state.new_link()
        # changed while this link was opening: replace it at once
        self._rotate = self._asked is not None and self._asked != self.state.channels
        resumed = self.state.cursor is not None and self._opened_before
        self._opened_before = True
        return [Connected(resumed=resumed, detail=self._detail())]

    def received(self, text: str, now: float) -> List[Output]:
        # `_guarded`, written out: on every frame its wrapper would cost a call, this try nothing
        try:
            self.liveness.heard(now)
            return self.state.accept(text, now)
        except RtsyncError:
            raise
        except Exception as exc:
            return [_unhandled("frame", exc, text)]

    def heard(self, now: float) -> None:
        self.liveness.heard(now)

    def closed(self, code: Optional[int], reason: str) -> RtsyncError:
        if code == 1008:
            try:
                detail = json.loads(reason)
                status = counter(detail.get("http_status", 400), "status")
                explain = detail.get("explain", "")
                if type(explain) is not str:
                    raise Poison("explain is not a string")
            except Exception:  # not the module's JSON reason: show it as it came
                status, explain = 400, shown(reason)
            return RequestRejected(
                f"Dashly closed the connection with 1008 (HTTP {status}: {explain}); "
                "fix the channel list, retrying would fail the same way",
                status=status,
            )
        return close_error("dashly", code, reason)

    def deadline(self) -> Optional[float]:
        if self._rotate:
            return 0.0
        due = self.liveness.deadline()
        gaps = self.state.gap_deadline()
        return due if gaps is None else min(due, gaps)

    @_guarded("timer")
    def tick(self, now: float) -> List[Output]:
        if self._rotate:
            self._rotate = False
            return [Rotate("the channel list changed")]
        return self.state.due_gaps(now) + self.liveness.tick(now)


class _Polling(_Base, PollingProtocol):
    timeout = 40.0

    def __init__(self, base_url: str, token: Union[str, CredentialSource], state: DashlyState) -> None:
        super().__init__(base_url, token, state)
        self._sent: Optional[Cursor] = None
        self._connected = False
        self._connected_before = False  # `resumed` is only ever true on a later connection
        self._step_back = False
        self._reasked = False  # a refused callable token was asked for a new value once

    def request(self) -> HttpRequest:
        self.state.asking()
        if not self._connected:
            self.refresh_token()  # a new "connection": a callable token is asked again
        self._sent = self.state.cursor
        if self._step_back and self._sent is not None:
            # After a failure, ask for the cursor's whole second again, as a WebSocket does:
            # a server that restarted meanwhile counts tags from 1 again within that second.
            self._sent = self._sent.stepped_back(1)
        return HttpRequest(self.url(self._sent), timeout=self.timeout)

    def lost(self) -> List[Output]:
        self._connected = False
        self._step_back = True
        return []

    @_guarded("response")
    def response(self, response: HttpResponse, now: float) -> List[Output]:
        out: List[Output] = []
        self.state.new_link()
        status = response.status
        dynamic = self._source is not None and self._source.dynamic
        if status in (401, 403) and dynamic and not self._reasked and not explain(response.headers):
            # A rotating token was refused between connections: ask the callable once more first.
            self._reasked, self._connected = True, False
            return []
        if status not in (200, 304):
            self._connected = False
            return [Fail(http_failure(status, response.headers))]
        self._reasked = False
        if not self._connected:
            self._connected = True
            out.append(Connected(resumed=self.state.cursor is not None and self._connected_before,
                                 detail=self._detail()))
            self._connected_before = True
        self._step_back = False
        if status == 200:
            text = response.body.decode("utf-8", "replace")
            events = self.state.accept(text, now)
            out.extend(events)
            newest = self._validators(response.headers)
            self.state.advance(newest)
            self._after_messages(sum(type(e) is DashlyEvent for e in events), newest)
        else:
            self._not_modified(response.headers)
        out.extend(self.state.due_gaps(now))
        return out

    def _validators(self, headers: Mapping[str, str]) -> Optional[Cursor]:
        modified, etag = header(headers, "Last-Modified"), header(headers, "Etag")
        if not modified:
            return None
        try:
            return Cursor.parse(modified, etag or 0)
        except (ValueError, TypeError):
            return None

    def _after_messages(self, new: int, newest: Optional[Cursor]) -> None:
        pass

    def _not_modified(self, headers: Mapping[str, str]) -> None:
        """Without a cursor, adopt the server's time: a timeout's `(now, 0)` validators, or the
        `Date` of a short poll's bare `304` (the server's clock, never ours)."""
        if self.state.cursor is not None:
            return
        cursor = self._validators(headers)
        date = header(headers, "Date")
        if cursor is None and date:
            try:
                cursor = Cursor.parse(date, 0)
            except ValueError:
                pass
        self.state.advance(cursor)


class LongPollProtocol(_Polling):
    """Dashly long polling: a 25 s hold; `304` means ask again at once. One request per batch.

    A live answer (one new message) can overtake a message stored just before
    it (two nginx workers deliver separately), so the cursor sent before the
    first live answer not yet confirmed is kept. The next request re-asks from it, once,
    when there is a reason to: a hole in a channel's ids (before it could
    become a gap), an idle `304` (a free moment), a reconnect, or
    `confirm_every` live answers since the last confirmation. Whatever the
    re-ask brings twice is dropped by the dedupe.

    A live answer whose `(time, tag)` directly follows the cursor sent (same
    second, the next tag) needs no confirming: the tag counts every publish of
    the server within its second, so no message lies between the two that it
    could have overtaken. On a steady stream that is nearly every answer, and
    the stream gets one request per batch.
    """

    mode = "longpoll"

    def __init__(
        self, base_url: str, token: Union[str, CredentialSource], state: DashlyState, *,
        confirm: bool = True, confirm_every: int = 16,
    ) -> None:
        super().__init__(base_url, token, state)
        self.confirm = confirm
        self.confirm_every = max(1, confirm_every)
        self._unconfirmed: Optional[Cursor] = None  # the cursor sent before the oldest unconfirmed answer
        self._answers = 0  # answers since then
        self._idle = False  # the last answer was a 304
        self._confirming = False  # the request in flight re-asks from `_unconfirmed`

    def request(self) -> HttpRequest:
        self.state.asking()
        if self.state.cursor is None:
            # A first long poll would hold until the next message, telling us nothing for 25 s;
            # one short poll answers at once (token checked) and its Date starts the cursor.
            if not self._connected:
                self.refresh_token()
            self._sent = None
            return HttpRequest(self.url(None, mode="shortpoll"), timeout=15.0)
        if self._unconfirmed is not None and self._confirm_due():
            if not self._connected:
                self.refresh_token()
            cursor, self._unconfirmed, self._answers = self._unconfirmed, None, 0
            if self._step_back:
                cursor = min(cursor, cursor.stepped_back(1))
            self._sent, self._confirming = cursor, True
            return HttpRequest(self.url(cursor), timeout=self.timeout)
        self._confirming = False
        return super().request()

    def _confirm_due(self) -> bool:
        return (self._idle or self._step_back or self._answers >= self.confirm_every
                or self.state.gap_deadline() is not None)

    def _after_messages(self, new: int, newest: Optional[Cursor]) -> None:
        # The module answers a waiting poll with the one message that woke it; more than one new
        # message is a read of the store, complete up to its newest (so is an answer of repeats
        # only). A re-ask that waited and was woken needs confirming like any live answer.
        self._idle = False
        sent = self._sent
        if self.confirm and new == 1 and sent is not None and not _follows(newest, sent):
            if self._unconfirmed is None:
                self._unconfirmed = sent
            self._answers += 1

    def _not_modified(self, headers: Mapping[str, str]) -> None:
        self._idle = True
        super()._not_modified(headers)


def _follows(newest: Optional[Cursor], sent: Cursor) -> bool:
    """Whether nothing can have been published between `sent` and `newest` (tags count within a second)."""
    return newest is not None and newest.epoch == sent.epoch and newest.tag == sent.tag + 1


class ShortPollProtocol(_Polling):
    """Dashly short polling every `interval` seconds.

    Without a cursor the server answers `304` forever; the first `304`'s
    `Date` (the server's clock, not ours) with tag 0 becomes the cursor.
    """

    mode = "shortpoll"

    def __init__(
        self, base_url: str, token: Union[str, CredentialSource], state: DashlyState, *, interval: float = 3.0,
    ) -> None:
        super().__init__(base_url, token, state)
        self.interval = interval
        self.timeout = 15.0

    def delay(self) -> float:
        return self.interval
