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
  WebSocket resumes one second before its cursor and a long poll re-asks
  once with its previous cursor after a live answer; dedupe drops the repeats.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, TypeVar, cast
from urllib.parse import quote

from ...errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionLost,
    ProtocolError,
    RequestRejected,
    RtsyncError,
)
from ...events import GAP, Event
from ...policy import close_error, seconds, status_error
from ...sansio import (
    BoundedSet,
    Connected,
    Fail,
    Handshake,
    HttpRequest,
    HttpResponse,
    Liveness,
    Output,
    PollingProtocol,
    Report,
    WebSocketProtocol,
)
from .envelope import (
    Poison,
    counter,
    epoch_of,
    format_http_date,
    iter_envelopes,
    message_id,
    read_fields,
    salvage_key,
    shown,
)

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
    "validate_channels",
]

PROVIDER = "dashly"
MAX_CHANNELS = 50
MAX_CHANNEL_LENGTH = 200
CHANNEL_DELETED = "dashly.channel_deleted"

# Characters encodeURIComponent leaves alone: pushstream.js refuses any other.
_CHANNEL_RE = re.compile(r"^[A-Za-z0-9_.!~*'()-]+$")
_BACKTRACK_RE = re.compile(r"\.b\d+$")
_DELETED_CHANNEL_RE = re.compile(r'"channel"\s*:\s*"([^"]*)"')
from ...sansio import loads as _loads  # noqa: E402 - json, or orjson with the `fast` extra
#: a poison message's own (time, tag) moves the cursor only this far past the newest good one
_SALVAGE_SLACK = 3600


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


def validate_channels(channels: Sequence[str]) -> List[str]:
    """Check a channel list the way the server and pushstream.js would, with errors that say what to fix."""
    if isinstance(channels, str):
        channels = [channels]
    channels = list(channels)
    if not channels:
        raise ConfigurationError("at least one channel is needed, e.g. channels=['conversation_reply.100']")
    if len(channels) > MAX_CHANNELS:
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


# What a delivered id is remembered with: (epoch, tag, digest of the text, link generation).
# None: restored from a checkpoint, known by id only.
_Print = Optional[Tuple[int, int, int, int]]


class _Channel:
    __slots__ = ("high", "high_key", "high_exact", "seen", "carried", "missing", "floor")

    def __init__(self) -> None:
        self.floor = 0  # ids at or below this were delivered before (restored from a checkpoint)
        self.high = 0
        self.high_key: Optional[Tuple[int, int]] = None  # (epoch, tag) of the highest id
        self.high_exact = True  # False: high_key is only an upper bound (restored)
        self.seen: Dict[int, _Print] = {}
        # ids kept from before a restart only because their id and (time, tag) are above the
        # restart's first message: a restart within the same second (tags from 1 again) gives
        # the old life's ids that too, so another text under such an id is this life's message
        # (it replaces the old one), not one more restart
        self.carried: Set[int] = set()
        self.missing: Dict[int, float] = {}  # id -> when we noticed it was missing


class DashlyState:
    """What survives reconnects: the cursor, per-channel dedupe windows and pending gaps.

    `accept()` is shared by every transport: it turns one body (one frame or
    one HTTP response) into events, keeping the cursor and dedupe up to date.

    Channel resets. A channel's ids restart at 1 when it is deleted, garbage
    collected (no stored message, no subscriber, 30 s idle) or the server
    restarts; a restart also restarts the per-second tag, so a new message can
    carry the very `(id, time, tag)` of one delivered before. The module hands
    out id and tag together under one lock, so within one life of a channel a
    higher id always has a newer `(time, tag)`, and a repeat is the same stored
    text. Hence a message is a repeat only if its `(channel, id)` was delivered
    with the same time, tag and text; a known id with another time, tag or text,
    or an id below the highest one whose `(time, tag)` is not older than the
    highest one's, proves the channel restarted. Then the ids of the old life
    still missing are reported as `rtsync.gap` at once (they can no longer be
    fetched), and the new life starts from this message, keeping what is
    provably part of it (what came on its link or response, in id and tag order
    with it). A higher id with a newer `(time, tag)` from another link is only
    presumed part of it: after a restart within the same second the old life's
    higher ids look exactly so, and the new life's own message under such an id
    replaces it without being taken for one more restart (which would report
    the new life's ids still in grace, or already delivered, as lost). A repeat
    of a delivered message is remembered as seen on its latest link, so a
    repeat in the same response as the new life's ids stays in that life. A
    restart whose first message is not newer than the
    cursor (the server's tags count from 1 again) pulls the cursor back to its
    second, so the next resume asks for the whole new life; polling also
    asks for its cursor's whole second again after any failure.
    """

    #: ids remembered per channel for dedupe; older repeats are dropped by id alone.
    window = 2048

    def __init__(self, channels: Sequence[str], *, gap_grace: float = 2.0) -> None:
        self.channels = list(channels)
        self.gap_grace = gap_grace
        self._max: Optional[Tuple[int, int]] = None  # newest (epoch, tag) over ids > 0
        self._max_time = ""
        self._channels: Dict[str, _Channel] = {}
        self.generation = 0  # one per link (WebSocket) or response (polling): a life can only end between
        self.resets = 0
        self._poisoned: BoundedSet[int] = BoundedSet(256)  # digests of messages reported as undecodable

    def new_link(self) -> None:
        """A new link or response begins: a channel can only have restarted before it."""
        self.generation += 1

    @property
    def cursor(self) -> Optional[Cursor]:
        return None if self._max is None else Cursor(self._max[0], self._max[1], self._max_time)

    def advance(self, cursor: Optional[Cursor]) -> None:
        if cursor is not None and (self._max is None or (cursor.epoch, cursor.tag) > self._max):
            self._max, self._max_time = (cursor.epoch, cursor.tag), cursor.time

    # -- persistence (FileCheckpoint) -------------------------------------
    def snapshot(self) -> Dict[str, Any]:
        cursor = self.cursor
        return {
            "cursor": cursor.to_json() if cursor else None,
            "channels": {
                name: sorted(ch.seen)[-256:] for name, ch in self._channels.items() if ch.seen
            },
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        if data.get("cursor"):
            self.advance(Cursor.from_json(data["cursor"]))
        for name, ids in (data.get("channels") or {}).items():
            ch = self._channel(name)
            ch.seen.update((int(i), None) for i in ids)
            ch.high = max(ch.seen, default=0)
            ch.floor = min(ch.seen, default=1) - 1
            ch.high_key, ch.high_exact = self._max, False

    def _channel(self, name: str) -> _Channel:
        ch = self._channels.get(name)
        if ch is None:
            ch = self._channels[name] = _Channel()
        return ch

    # -- decoding ----------------------------------------------------------
    def accept(self, text: str, now: float) -> List[Output]:
        """Events (and Reports) for one frame or body; each message is decoded on its own."""
        out: List[Output] = []
        try:
            envelope = _loads(text)  # a WebSocket frame is exactly one envelope: the fast path
        except (ValueError, RecursionError):
            envelope = None
        if type(envelope) is dict:
            self._contained(envelope, text, now, out)
            return out
        for envelope, raw in iter_envelopes(text):
            if type(envelope) is dict:
                self._contained(envelope, raw, now, out)
            elif envelope is None:
                out.extend(self._unparsed(raw))
            else:
                report = self._poison(raw, f"a JSON {type(envelope).__name__}, not a message object")
                out.extend([report] if report else [])
        return out

    def _contained(self, envelope: Dict[str, Any], raw: str, now: float, out: List[Output]) -> None:
        try:
            self._one(envelope, raw, now, out)
        except Poison as exc:
            report = self._poison(raw, str(exc), envelope)
        except Exception as exc:  # last resort: one message, one report, the rest of the body goes on
            report = self._poison(raw, f"{type(exc).__name__} while decoding", envelope)
        else:
            return
        if report is not None:
            out.append(report)

    def _poison(self, raw: str, why: str, envelope: Optional[Dict[str, Any]] = None) -> Optional[Report]:
        """The one Report for a message we cannot accept; the cursor moves past it if its place is known."""
        key = None
        if envelope is not None and type(envelope.get("time")) is str:
            try:
                epoch = epoch_of(envelope["time"])
                if epoch is not None:
                    key = (epoch, counter(envelope.get("tag"), "tag"), envelope["time"])
            except Poison:
                pass
        if key is None and envelope is None:
            key = salvage_key(raw)
        if key is not None and self._max is not None and 0 < key[0] <= self._max[0] + _SALVAGE_SLACK:
            self.advance(Cursor(*key))
        if not self._poisoned.add(hash(raw.strip())):
            return None  # replayed by a resume or a confirming poll: reported once already
        return Report(ProtocolError(f"skipped a Dashly message ({why}): {shown(raw)}"))

    def _one(self, envelope: Dict[str, Any], raw: str, now: float, out: List[Output]) -> None:
        msg_id = message_id(envelope)
        if msg_id <= 0:
            out.extend(self._reserved(msg_id, envelope, raw))
            return
        msg_id, channel, epoch, tag, time_text = read_fields(envelope)
        key = (epoch, tag)
        if not self._fresh(channel, msg_id, key, hash(raw.strip()), now, out):
            return
        if self._max is None or key > self._max:
            self._max, self._max_time = key, time_text
        out.append(DashlyEvent._build({
            "name": channel, "channel": channel, "data": envelope.get("message"), "id": msg_id,
            "provider": PROVIDER, "received_at": None, "raw": raw, "tag": tag, "time": time_text,
        }))

    def _fresh(
        self, name: str, msg_id: int, key: Tuple[int, int], digest: int, now: float, out: List[Output]
    ) -> bool:
        """Dedupe by (channel, id, what was delivered under it) and track gaps; False means drop."""
        ch = self._channels.get(name) or self._channel(name)
        mark = (key[0], key[1], digest, self.generation)
        if msg_id in ch.seen:
            known = ch.seen[msg_id]
            if known is None:
                if ch.high_key is None or key <= ch.high_key:
                    return False  # restored from a checkpoint: a repeat by id
                ch = self._restarted(name, ch, msg_id, key, now, out)
            elif known[:3] == mark[:3]:
                if known[3] != mark[3]:
                    ch.seen[msg_id] = mark  # seen on this link too: it belongs to the life this link sees
                return False  # the same stored message again
            elif msg_id in ch.carried and self._fits(ch, msg_id, key):
                # The id was only presumed to be this life's (a same-second restart gives the old
                # life's higher ids higher tags too): this is this life's message under it.
                ch.carried.discard(msg_id)
                ch.missing.pop(msg_id, None)
            else:
                ch = self._restarted(name, ch, msg_id, key, now, out)
        elif msg_id < ch.high and ch.high_key is not None and (
            key > ch.high_key or (key == ch.high_key and ch.high_exact)
        ):
            ch = self._restarted(name, ch, msg_id, key, now, out)
        elif msg_id < ch.high:
            if msg_id <= max(ch.floor, ch.high - self.window):
                return False  # older than our window: certainly delivered before
            ch.missing.pop(msg_id, None)  # a late arrival filling a hole
        if msg_id > ch.high:
            if ch.high and msg_id > ch.high + 1:
                for missing in range(ch.high + 1, min(msg_id, ch.high + self.window)):
                    ch.missing[missing] = now
            ch.high, ch.high_key, ch.high_exact = msg_id, key, True
        ch.seen[msg_id] = mark
        if len(ch.seen) > 2 * self.window:
            floor = ch.high - self.window
            ch.seen = {i: m for i, m in ch.seen.items() if i > floor}
            ch.carried = {i for i in ch.carried if i > floor}
        return True

    def _restarted(
        self, name: str, old: _Channel, msg_id: int, key: Tuple[int, int], now: float, out: List[Output]
    ) -> _Channel:
        """Channel `name` started a new life at `msg_id`: report what the old one still owed, keep
        what provably belongs to the new one (same link and in id/tag order with this message, or
        newer by both), and expect the new life's lower ids."""
        self.resets += 1
        if self._max is not None and key <= self._max:
            # A new life not newer than the cursor: the server restarted within the cursor's
            # second and counts tags from 1 again. Resume from the start of that second.
            self._max, self._max_time = (key[0], 0), format_http_date(key[0])
        if old.missing:
            late = sorted(old.missing)
            out.append(_gap(name, late, "the channel restarted (server restart, or deleted or expired "
                                        "on the server) before these messages were received"))
        ch = self._channels[name] = _Channel()
        # The message this one contradicts is of an older life, and so is everything that came on
        # its link or response (a life can only end between them). What came on this message's
        # own is of the new life; a higher id with a newer (time, tag) from another link is only
        # presumed to be (carried): a restart within the same second makes the old life's look so.
        replaced = old.seen.get(msg_id)
        old_generation = None if replaced is None or msg_id in old.carried else replaced[3]
        for i, m in old.seen.items():
            if m is None or i == msg_id or m[3] == old_generation:
                continue
            mkey = (m[0], m[1])
            if m[3] == self.generation:
                keep = (i < msg_id and mkey < key) or (i > msg_id and mkey > key)
                carried = False
            else:
                keep = i > msg_id and mkey > key
                carried = True
            if keep:
                ch.seen[i] = m
                if carried:
                    ch.carried.add(i)
                if i > ch.high:
                    ch.high, ch.high_key = i, mkey
        for i in range(1, min(max(msg_id, ch.high), self.window)):
            if i not in ch.seen and i != msg_id:
                ch.missing[i] = now
        return ch

    @staticmethod
    def _fits(ch: _Channel, msg_id: int, key: Tuple[int, int]) -> bool:
        """Whether `msg_id` at `key` keeps id and (time, tag) order with the channel's ids known to
        be of its present life (not carried, not restored)."""
        for i, m in ch.seen.items():
            if m is None or i == msg_id or i in ch.carried:
                continue
            mkey = (m[0], m[1])
            if (i < msg_id and mkey >= key) or (i > msg_id and mkey <= key):
                return False
        return True

    def due_gaps(self, now: float, force: bool = False) -> List[Output]:
        """`rtsync.gap` events for ids still missing `gap_grace` seconds after we noticed them."""
        out: List[Output] = []
        for name, ch in self._channels.items():
            if not ch.missing:
                continue
            late = sorted(i for i, t in ch.missing.items() if force or now - t >= self.gap_grace)
            if not late:
                continue
            for i in late:
                del ch.missing[i]
            out.append(_gap(name, late, "message ids skipped and not recovered by resume "
                                        "(expired from the server's store, or lost in transit)"))
        return out

    def gap_deadline(self) -> Optional[float]:
        earliest = min((t for ch in self._channels.values() for t in ch.missing.values()), default=None)
        return None if earliest is None else earliest + self.gap_grace

    def _reserved(self, msg_id: int, envelope: Mapping[str, Any], raw: str) -> List[Output]:
        if msg_id == -2:
            channel = envelope.get("channel", "")
            if type(channel) is not str:
                raise Poison("channel of a channel-deleted message is not a string")
            return self._deleted(channel, envelope.get("message"), raw)
        return []  # -1 ping (streaming only), -3 long-poll timeout, 0: liveness only

    def _unparsed(self, raw: str) -> List[Output]:
        compact = raw.replace(" ", "")
        if compact.startswith('{"id":-2'):
            found = _DELETED_CHANNEL_RE.search(raw)
            return self._deleted(found.group(1) if found else "", None, raw)
        if compact.startswith(('{"id":-1', '{"id":-3', '{"id":"-1"', '{"id":"-3"')):
            return []
        report = self._poison(raw, "not valid JSON, or nested too deep")
        return [report] if report else []

    def _deleted(self, channel: str, message: Any, raw: str) -> List[Output]:
        self._channels.pop(channel, None)  # its ids restart at 1 if it comes back
        return [Event.make(CHANNEL_DELETED, provider=PROVIDER, channel=channel, data=message, raw=raw)]


def _gap(channel: str, ids: List[int], reason: str) -> Event:
    return Event.make(GAP, provider=PROVIDER, channel=channel,
                      data={"channel": channel, "missing": len(ids), "missing_ids": ids, "reason": reason})


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
                first = args[0] if args else None
                if isinstance(first, HttpResponse):
                    first = first.body.decode("utf-8", "replace")
                detail = f": {shown(first)}" if isinstance(first, str) else ""
                return [Report(ProtocolError(
                    f"skipped a Dashly {what} that could not be handled ({type(exc).__name__}){detail}"))]

        return cast(_F, guarded)

    return wrap


def _explain(headers: Mapping[str, str]) -> str:
    for key, value in headers.items():
        if key.lower() == "x-nginx-pushstream-explain":
            return f": {value}"
    return ""


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    name = name.lower()
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def http_failure(status: int, headers: Mapping[str, str]) -> RtsyncError:
    """Classify a non-2xx/304 answer: 401/403 auth (final), other 4xx final, the rest transient."""
    explain = _explain(headers)
    if status in (401, 403) and not explain:
        return AuthenticationError(
            f"Dashly refused the auth_token (HTTP {status}). Check the token; rtsync will not retry."
        )
    if status == 429:  # nginx's limit_req in front of the module: wait, as the policy does everywhere
        return status_error(status, f"Dashly (HTTP 429{explain})", seconds(_header(headers, "retry-after")))
    if 400 <= status < 500 and status != 408:
        return RequestRejected(f"Dashly rejected the subscription (HTTP {status}{explain})", status=status)
    return ConnectionLost(f"Dashly answered HTTP {status}{explain}")


class _Base:
    """URL building shared by the three transports."""

    mode = ""

    def __init__(self, base_url: str, token: str, state: DashlyState) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.state = state

    def url(self, cursor: Optional[Cursor], mode: str = "") -> str:
        path = "/".join(quote(ch, safe="") for ch in self.state.channels)
        query = f"auth_token={quote(self.token, safe='')}"
        if cursor is not None:
            query += "&" + cursor.query()
        return f"{self.base_url}/{mode or self.mode}/{path}?{query}"


class WebSocketStream(_Base, WebSocketProtocol):
    """Dashly over WebSocket. Liveness: any frame; after `keepalive` s of silence we send an
    empty-payload PING (the server PONGs it), and `keepalive + pong_timeout` s of silence is stale."""

    mode = "websocket"

    def __init__(
        self, base_url: str, token: str, state: DashlyState, *,
        keepalive: float = 20.0, pong_timeout: float = 10.0, step_back: int = 1,
    ) -> None:
        super().__init__(base_url, token, state)
        self.liveness = Liveness("Dashly", interval=keepalive, timeout=pong_timeout)
        self.step_back = step_back
        self._opened_before = False  # `resumed` is only ever true on a later link

    def handshake(self) -> Handshake:
        cursor = self.state.cursor
        if cursor is not None and self.step_back:
            cursor = cursor.stepped_back(self.step_back)
        return Handshake(self.url(cursor))

    @_guarded("link opening")
    def opened(self, now: float) -> List[Output]:
        self.liveness.opened(now)
        self.state.new_link()
        resumed = self.state.cursor is not None and self._opened_before
        self._opened_before = True
        return [Connected(resumed=resumed)]

    @_guarded("frame")
    def received(self, text: str, now: float) -> List[Output]:
        self.liveness.heard(now)
        return self.state.accept(text, now)

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
        due = self.liveness.deadline()
        gaps = self.state.gap_deadline()
        return due if gaps is None else min(due, gaps)

    @_guarded("timer")
    def tick(self, now: float) -> List[Output]:
        return self.state.due_gaps(now) + self.liveness.tick(now)


class _Polling(_Base, PollingProtocol):
    timeout = 40.0

    def __init__(self, base_url: str, token: str, state: DashlyState) -> None:
        super().__init__(base_url, token, state)
        self._sent: Optional[Cursor] = None
        self._connected = False
        self._connected_before = False  # `resumed` is only ever true on a later connection
        self._step_back = False

    def request(self) -> HttpRequest:
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
        if status not in (200, 304):
            self._connected = False
            return [Fail(http_failure(status, response.headers))]
        if not self._connected:
            self._connected = True
            out.append(Connected(resumed=self.state.cursor is not None and self._connected_before))
            self._connected_before = True
        self._step_back = False
        if status == 200:
            text = response.body.decode("utf-8", "replace")
            out.extend(self.state.accept(text, now))
            self.state.advance(self._validators(response.headers))
            self._after_messages()
        else:
            self._not_modified(response.headers)
        out.extend(self.state.due_gaps(now))
        return out

    def _validators(self, headers: Mapping[str, str]) -> Optional[Cursor]:
        modified, etag = _header(headers, "Last-Modified"), _header(headers, "Etag")
        if not modified:
            return None
        try:
            return Cursor.parse(modified, etag or 0)
        except (ValueError, TypeError):
            return None

    def _after_messages(self) -> None:
        pass

    def _not_modified(self, headers: Mapping[str, str]) -> None:
        """Without a cursor, adopt the server's time: a timeout's `(now, 0)` validators, or the
        `Date` of a short poll's bare `304` (the server's clock, never ours)."""
        if self.state.cursor is not None:
            return
        cursor = self._validators(headers)
        date = _header(headers, "Date")
        if cursor is None and date:
            try:
                cursor = Cursor.parse(date, 0)
            except ValueError:
                pass
        self.state.advance(cursor)


class LongPollProtocol(_Polling):
    """Dashly long polling: a 25 s hold; `304` means ask again at once.

    After a live answer, the next request repeats the previous cursor once:
    a message published just before the one we got may still be in flight
    inside the server (two nginx workers), but it is already stored.
    """

    mode = "longpoll"

    def __init__(self, base_url: str, token: str, state: DashlyState, *, confirm: bool = True) -> None:
        super().__init__(base_url, token, state)
        self.confirm = confirm
        self._confirming: Optional[Cursor] = None

    def request(self) -> HttpRequest:
        if self._confirming is not None:
            cursor, self._confirming = self._confirming, None
            self._sent = None
            return HttpRequest(self.url(cursor), timeout=self.timeout)
        if self.state.cursor is None:
            # A first long poll would hold until the next message, telling us nothing for 25 s;
            # one short poll answers at once (token checked) and its Date starts the cursor.
            self._sent = None
            return HttpRequest(self.url(None, mode="shortpoll"), timeout=15.0)
        return super().request()

    def _after_messages(self) -> None:
        if self.confirm and self._sent is not None:
            self._confirming = self._sent


class ShortPollProtocol(_Polling):
    """Dashly short polling every `interval` seconds.

    Without a cursor the server answers `304` forever; the first `304`'s
    `Date` (the server's clock, not ours) with tag 0 becomes the cursor.
    """

    mode = "shortpoll"

    def __init__(self, base_url: str, token: str, state: DashlyState, *, interval: float = 3.0) -> None:
        super().__init__(base_url, token, state)
        self.interval = interval
        self.timeout = 15.0

    def delay(self) -> float:
        return self.interval
