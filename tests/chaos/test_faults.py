"""Hostile faults against DESIGN.md's threading contract and reconnect policy, through the public API only.

Each test pins one promise (named in its comment) that a hostile tester found broken before:
callbacks raising BaseException, stop() during a hanging connect, refused close codes, reconnect
storms, the `verify=` types, and slow consumers next to heartbeats.
"""

from __future__ import annotations

import json
import pathlib
import socket
import ssl
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import trustme
from aiohttp import WSMsgType, web

import rtsync
from rtsync.events import Event
from rtsync.testing._server import LocalServer
from rtsync.testing.dashly import DashlyServer
from rtsync.testing.doshii import DoshiiServer
from rtsync.testing.quickmeet import QuickMeetServer
from tests.conftest import rtsync_threads, started, wait_for

FAST = rtsync.Backoff(base=0.05, cap=0.2)
DOSHII_ID = "chaos-client-id"


def fast() -> rtsync.Backoff:
    """A fresh fast backoff per client (a Backoff holds its own failure count)."""
    return rtsync.Backoff(base=0.05, cap=0.2)


def lifecycle(got: List[Event], name: str) -> List[Event]:
    return [e for e in got if e.name == name]


# ---------------------------------------------------------------------------
# A small hostile WebSocket server: accepts every upgrade, then closes it.
# ---------------------------------------------------------------------------


class Slammer(LocalServer):
    """Accepts the WebSocket upgrade on any path (echoing the client's first subprotocol), counts it,
    optionally answers one Doshii heartbeat, then closes with `code`. Also serves just enough of
    Dialpad's REST API (`/api/v2/websockets[/id]`) to hand out `/events/...` URLs on itself."""

    def __init__(self, code: int = 1000, *, answer_first_ping: bool = False, ssl_context: Any = None) -> None:
        super().__init__(ssl_context=ssl_context)
        self.code = code
        self.answer_first_ping = answer_first_ping
        self.attempts: List[float] = []  # monotonic time of every accepted upgrade
        self._urls = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/v2/websockets", self._rest)
        app.router.add_route("*", "/api/v2/websockets/{id}", self._rest)
        app.router.add_get("/{tail:.*}", self._upgrade)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        self._urls += 1
        return web.json_response({"id": 7, "websocket_url": f"{self.ws_url}/events/url-{self._urls}"})

    async def _upgrade(self, request: web.Request) -> web.StreamResponse:
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        ws = web.WebSocketResponse(protocols=offered[:1], autoping=True)
        await ws.prepare(request)
        self.attempts.append(time.monotonic())
        if self.answer_first_ping:
            msg = await ws.receive(timeout=5)
            if msg.type == WSMsgType.TEXT:
                ping = (json.loads(msg.data).get("doshii") or {}).get("ping")
                if ping is not None:
                    await ws.send_str(json.dumps({"doshii": {"pong": ping, "version": "3.2.0"}}))
        await ws.close(code=self.code, message=b"chaos")
        return ws


# Clients built against a base ws(s):// URL (Dashly and Dialpad take the http(s) side of it).
def _http(ws_base: str) -> str:
    return "http" + ws_base[2:]


BUILDERS: Dict[str, Callable[..., rtsync.Client]] = {
    "doshii": lambda base, **kw: rtsync.DoshiiClient(DOSHII_ID, url=f"{base}/app/socket/v3", **kw),
    "voxsig": lambda base, **kw: rtsync.VoxsigClient("chaos-pubsub-token", account_id=1, user_id=7, url=f"{base}/cable", **kw),
    "quickmeet": lambda base, **kw: rtsync.QuickMeetClient(
        url=f"{base}/websocket", username="alice", password="alice-password", **kw),
    "dashly-websocket": lambda base, **kw: rtsync.DashlyClient("chaos-token", channels=["c.1"], transport="websocket", url=_http(base), **kw),
    "dashly-longpoll": lambda base, **kw: rtsync.DashlyClient("chaos-token", channels=["c.1"], transport="longpoll", url=_http(base), **kw),
    "dialpad": lambda base, **kw: rtsync.DialpadClient("chaos-key", url=_http(base), **kw),
}


# ---------------------------------------------------------------------------
# 1. "Anything a callback raises, BaseException included, is logged and reported as rtsync.error;
#    delivery goes on." (Threading contract)
# ---------------------------------------------------------------------------


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be printed")

    def __repr__(self) -> str:
        raise RuntimeError("nor repr'd")


def raises_system_exit(event: Event) -> None:
    raise SystemExit(3)


def raises_keyboard_interrupt(event: Event) -> None:
    raise KeyboardInterrupt()


def raises_unprintable(event: Event) -> None:
    raise Unprintable()


@pytest.mark.parametrize("bad", [raises_system_exit, raises_keyboard_interrupt, raises_unprintable],
                         ids=["SystemExit", "KeyboardInterrupt", "unprintable"])
def test_callback_raising_base_exception_is_reported_and_delivery_goes_on(bad: Callable[[Event], None]) -> None:
    with DoshiiServer(client_ids={DOSHII_ID}) as server:
        c = rtsync.DoshiiClient(DOSHII_ID, url=server.url, backoff=fast(), ping_interval=0.5, ping_timeout=2.0)
        delivered: List[int] = []
        c.on("order_created", bad)  # registered first: the callbacks after it must still run
        c.on("order_created", lambda e: delivered.append(e.data["n"]))
        got = started(c)
        try:
            for n in range(6):
                server.publish("order_created", {"id": str(n), "n": n, "status": "pending"})
            assert wait_for(lambda: len(delivered) == 6, timeout=5), f"delivered only {delivered}"
            assert wait_for(lambda: len(lifecycle(got, "rtsync.error")) >= 6, timeout=5)
            assert c.running, "a callback's BaseException must not end the client"
            # A later event still goes through, after all those failures.
            server.publish("order_created", {"id": "late", "n": 99, "status": "pending"})
            assert wait_for(lambda: delivered[-1:] == [99], timeout=5)
        finally:
            t0 = time.monotonic()
            c.stop()
            took = time.monotonic() - t0
    assert took < 2.0, f"stop() took {took:.1f} s"
    assert rtsync_threads() == []
    assert delivered == [0, 1, 2, 3, 4, 5, 99]
    errors = lifecycle(got, "rtsync.error")
    assert len(errors) == 7
    for e in errors:
        assert isinstance(e.data["error"], str) and e.data["error"], e.data
        assert bad.__name__ in e.data["callback"], e.data
    assert not lifecycle(got, "rtsync.disconnected")


# ---------------------------------------------------------------------------
# 2. "stop() returns within about a second from any state, handshakes and TCP connects included,
#    and leaves no thread of ours running." (Threading contract)
# ---------------------------------------------------------------------------


@pytest.fixture
def self_signed() -> Iterator[Tuple[ssl.SSLContext, trustme.CA]]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    yield server_ctx, ca


class Hang:
    """A port on 127.0.0.1 where a client's connect, TLS handshake or HTTP upgrade never completes."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.fillers: List[socket.socket] = []
        self.accepted: List[socket.socket] = []
        if stage == "tcp-connect":
            # A full accept queue: Linux drops further SYNs, so a connect() hangs (retrying SYNs).
            self.listener.listen(0)
            for _ in range(4):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", self.port))
                self.fillers.append(s)
            time.sleep(0.2)
            probe = socket.create_connection  # prove the hang, or this test proves nothing
            try:
                probe(("127.0.0.1", self.port), timeout=0.5).close()
                hangs = False
            except OSError:
                hangs = True
            if not hangs:
                self.close()
                pytest.skip("this kernel completes connects beyond a full backlog")
        else:
            self.listener.listen(16)  # the kernel completes TCP; nobody ever says a word

    @property
    def base(self) -> str:
        return f"{'wss' if self.stage == 'tls-handshake' else 'ws'}://127.0.0.1:{self.port}"

    def client_is_waiting(self, timeout: float = 5.0) -> bool:
        """For the TLS and upgrade stages: the client's connection arrived and it sent its first bytes."""
        self.listener.settimeout(timeout)
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return False
        self.accepted.append(conn)
        conn.settimeout(timeout)
        try:
            first = conn.recv(4096)  # the ClientHello, or the upgrade / REST request; never answered
        except OSError:
            return False
        return bool(first)

    def close(self) -> None:
        for s in [*self.fillers, *self.accepted, self.listener]:
            try:
                s.close()
            except OSError:
                pass


@pytest.mark.parametrize("vendor", list(BUILDERS))
@pytest.mark.parametrize("stage", ["tcp-connect", "tls-handshake", "http-upgrade"])
def test_stop_during_a_hanging_connect_or_handshake(stage: str, vendor: str, self_signed) -> None:
    hang = Hang(stage)
    try:
        _, ca = self_signed
        verify = ssl.create_default_context()
        ca.configure_trust(verify)
        c = BUILDERS[vendor](hang.base, backoff=fast(), connect_timeout=30, verify=verify)
        got: List[Event] = []
        c.on("*", got.append)
        c.start()
        if stage == "tcp-connect":
            time.sleep(0.5)  # nothing to observe: the SYN is dropped; give the client time to be inside connect()
        else:
            assert hang.client_is_waiting(), "the client never reached the hanging step"
            time.sleep(0.2)
        assert c.running and not lifecycle(got, "rtsync.disconnected"), \
            f"the client should still be stuck in its first attempt, got {[e.name for e in got]}"
        t0 = time.monotonic()
        c.stop()
        took = time.monotonic() - t0
        left = rtsync_threads()
    finally:
        hang.close()
    assert took < 1.5, f"stop() took {took:.2f} s during a hanging {stage} ({vendor})"
    assert left == [], f"threads still alive right after stop(): {left}"
    assert not c.running


# ---------------------------------------------------------------------------
# 3. "refused credentials (HTTP 401/403, the vendor's auth close codes ...) -> final after one attempt";
#    1008 (policy violation: the request itself is refused) and 1003 (we sent something unacceptable)
#    are final too. (Reconnect policy)
# ---------------------------------------------------------------------------

AUTH = (rtsync.AuthenticationError,)
REFUSED = (rtsync.RequestRejected, rtsync.AuthenticationError)
# close code -> the final errors that are acceptable for it
CLOSE_TABLE = {
    1008: REFUSED,                       # policy violation: Doshii's own doc uses it for a bad `auth`
    4401: AUTH,                          # the 4000 + HTTP status convention: 401 Unauthorized
    4403: AUTH,                          # ... 403 Forbidden
    1003: (rtsync.RequestRejected,),     # "unsupported data": what we send will not be accepted next time either
}


@pytest.mark.parametrize("code", list(CLOSE_TABLE))
@pytest.mark.parametrize("vendor", ["voxsig", "quickmeet", "doshii"])
def test_a_refusing_close_code_is_final(vendor: str, code: int) -> None:
    with Slammer(code) as server:
        c = BUILDERS[vendor](server.ws_url, backoff=fast())
        got: List[Event] = []
        c.on("*", got.append)
        c.start()
        try:
            ended = wait_for(lambda: not c.running, timeout=3)
            attempts = len(server.attempts)
        finally:
            c.stop()
    reasons = [e.data.get("reason") for e in lifecycle(got, "rtsync.disconnected")]
    assert ended, (f"{vendor}: close {code} is retried like a network error: still running after 3 s, "
                   f"{attempts} attempts, last reason {reasons[-1:]}")
    assert attempts <= 2, (f"{vendor}: close {code} took {attempts} attempts before giving up "
                           f"({c.error!r}, reasons {reasons[:2]})")
    assert isinstance(c.error, CLOSE_TABLE[code]), f"{vendor}: close {code} ended with {c.error!r}"
    assert not c.error.retryable
    final = lifecycle(got, "rtsync.disconnected")
    assert final and final[-1].data["will_reconnect"] is False


# ---------------------------------------------------------------------------
# 4. "Backoff resets only after a connection proved itself (stayed up, or delivered), so a server
#    that accepts and closes at once cannot cause a storm." (Reconnect policy)
# ---------------------------------------------------------------------------

WINDOW = 3.0
# With Backoff(base=0.05, cap=0.4) and full jitter a growing backoff averages ~0.2 s per wait after the
# fourth failure: ~17 attempts in 3 s. A client that resets on every upgrade (or on every
# rtsync.connected) waits at most 0.05 s: 60 or more. 30 separates the two with a wide margin.
STORM = 30


@pytest.mark.parametrize("vendor,code,answer_first_ping", [
    ("doshii", 1000, False),
    ("doshii", 1001, False),
    ("doshii", 1000, True),   # the first heartbeat is answered (rtsync.connected fires), then the close
    ("dialpad", 1000, False),
    ("dialpad", 1001, False),
], ids=["doshii-1000", "doshii-1001", "doshii-pong-then-1000", "dialpad-1000", "dialpad-1001"])
def test_accept_and_close_at_once_causes_no_storm(vendor: str, code: int, answer_first_ping: bool) -> None:
    with Slammer(code, answer_first_ping=answer_first_ping) as server:
        # Doshii's default retry budget (20 reconnects in 10 min) would end a storm by giving up; a
        # large one lets the count show the storm itself.
        extra = {"retry_budget": rtsync.RetryBudget(attempts=1000, window=60)} if vendor == "doshii" else {}
        c = BUILDERS[vendor](server.ws_url, backoff=rtsync.Backoff(base=0.05, cap=0.4), **extra)
        got: List[Event] = []
        c.on("*", got.append)
        c.start()
        try:
            assert wait_for(lambda: bool(server.attempts), timeout=5), "the client never connected"
            first = server.attempts[0]
            time.sleep(max(0.0, first + WINDOW - time.monotonic()))
            attempts = sum(1 for t in list(server.attempts) if t - first < WINDOW)
            running = c.running
        finally:
            c.stop()
    delays = [e.data["delay"] for e in lifecycle(got, "rtsync.reconnecting")]
    assert running, f"a server closing with {code} is not a reason to give up: {c.error!r}"
    assert attempts >= 4, f"only {attempts} attempts in {WINDOW:g} s: the test did not exercise the loop"
    assert attempts < STORM, (f"{vendor}: {attempts} connections in {WINDOW:g} s to a server that closes with "
                              f"{code} at once: the backoff resets on every upgrade (delays {delays[:12]})")
    assert max(delays) > 0.05, f"the backoff never grew past its base: {delays[:12]}"


# ---------------------------------------------------------------------------
# 5. `verify` is "True, False, a CA bundle path, or an ssl.SSLContext", on the WebSocket and the HTTP
#    side alike; anything else is a ConfigurationError saying so. (Constructor conventions)
# ---------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path: pathlib.Path, self_signed) -> Tuple[ssl.SSLContext, pathlib.Path]:
    server_ctx, ca = self_signed
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server_ctx, ca_file


def _verify(kind: str, ca_file: pathlib.Path) -> Any:
    return ssl.create_default_context(cafile=str(ca_file)) if kind == "context" else pathlib.Path(ca_file)


@pytest.mark.parametrize("kind", ["context", "path"])
@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_verify_context_or_path_on_dashly(tls, kind: str, transport: str) -> None:
    server_ctx, ca_file = tls
    with DashlyServer(tokens={"tok"}, ssl_context=server_ctx, longpoll_timeout=1) as server:
        assert server.url.startswith("https://")
        c = rtsync.DashlyClient("tok", channels=["c.1"], transport=transport, url=server.url, backoff=fast(), verify=_verify(kind, ca_file))
        got = started(c)
        try:
            server.publish("c.1", {"secure": kind})
            assert wait_for(lambda: any(e.name == "c.1" for e in got), timeout=5)
        finally:
            c.stop()
    assert c.error is None
    assert not lifecycle(got, "rtsync.error")


@pytest.mark.parametrize("kind", ["context", "path"])
def test_verify_context_or_path_on_doshii_socket_and_rest(tls, kind: str) -> None:
    server_ctx, ca_file = tls
    server = DoshiiServer(client_ids={DOSHII_ID}, client_secrets={DOSHII_ID: "chaos-secret-of-at-least-32-bytes!!"})
    server.ssl_context = server_ctx  # before start(): the socket and the REST API are served over TLS
    with server:
        assert server.url.startswith("wss://") and server.rest_url.startswith("https://")
        c = rtsync.DoshiiClient(DOSHII_ID, url=server.url, rest_url=server.rest_url,
                                client_secret="chaos-secret-of-at-least-32-bytes!!", backoff=fast(), verify=_verify(kind, ca_file))
        assert c.list_devices() == []  # REST over HTTPS with the same verify
        got = started(c)
        try:
            server.publish("order_created", {"id": "1", "status": "pending"})
            assert wait_for(lambda: any(e.name == "order_created" for e in got), timeout=5)
            device = c.register_device("Till", "till-1")
            assert c.get_device(device["doshiiId"])["ref"] == "till-1"
        finally:
            c.stop()
    assert c.error is None


@pytest.mark.parametrize("vendor", ["dashly-websocket", "dashly-longpoll", "doshii", "quickmeet", "dialpad"])
@pytest.mark.parametrize("scheme", ["ws", "wss"])
@pytest.mark.parametrize("wrong", [42, b"/etc/ssl/ca.pem", ["ca.pem"]], ids=["int", "bytes", "list"])
def test_verify_of_a_wrong_type_is_a_configuration_error(vendor: str, scheme: str, wrong: Any) -> None:
    base = f"{scheme}://127.0.0.1:9"  # never reached: the error must come first
    try:
        c = BUILDERS[vendor](base, backoff=fast(), verify=wrong)
    except rtsync.ConfigurationError as exc:
        error: Optional[BaseException] = exc
    else:
        try:
            c.start()
            assert wait_for(lambda: not c.running, timeout=3), \
                f"verify={wrong!r} was accepted and the client keeps retrying"
        except rtsync.ConfigurationError as exc:
            error = exc
        else:
            error = c.error
        finally:
            c.stop()
    assert isinstance(error, rtsync.ConfigurationError), f"verify={wrong!r}: got {error!r}"
    text = str(error)
    assert "internal error" not in text
    for word in ("True", "False", "path", "SSLContext"):
        assert word in text, f"the message should say what verify accepts ({word!r} missing): {text}"


# ---------------------------------------------------------------------------
# 6. "A slow callback never causes a loss that is not reported, nor a false 'stale link' verdict;
#    control traffic (pings, pongs, heartbeats) keeps flowing." (Threading contract)
# ---------------------------------------------------------------------------

SLOW_EVENTS = 300  # x 20 ms per callback: 6 s of lag, six times the dead-link timeouts below
SLOW = 0.02


def test_slow_consumer_doshii_heartbeat_keeps_the_link() -> None:
    with DoshiiServer(client_ids={DOSHII_ID}) as server:
        c = rtsync.DoshiiClient(DOSHII_ID, url=server.url, backoff=fast(), queue_size=20, ping_interval=0.2, ping_timeout=1.0)
        seen: List[int] = []

        def slow(e: Event) -> None:
            time.sleep(SLOW)
            seen.append(e.data["n"])

        c.on("order_created", slow)
        got = started(c)
        try:
            for n in range(SLOW_EVENTS):
                server.publish("order_created", {"id": str(n), "n": n, "status": "pending"})
            pings_while_lagging = len(server.pings)
            assert wait_for(lambda: len(seen) >= SLOW_EVENTS, timeout=SLOW_EVENTS * SLOW + 4), \
                f"{len(seen)} of {SLOW_EVENTS} delivered"
            pings_after = len(server.pings)
        finally:
            c.stop()
    assert seen == list(range(SLOW_EVENTS)), "every event exactly once, in order"
    dropped = lifecycle(got, "rtsync.disconnected")
    assert not dropped, f"a slow callback caused a disconnect: {[e.data.get('reason') for e in dropped]}"
    assert not lifecycle(got, "rtsync.gap")
    # The heartbeat went on while the callbacks lagged (about one per 0.2 s of the ~6 s).
    assert pings_after - pings_while_lagging >= 10, (pings_while_lagging, pings_after)


def test_slow_consumer_quickmeet_still_answers_server_pings() -> None:
    # The server pings after 0.5 s of inbound silence and closes 0.5 s later without a pong.
    with QuickMeetServer(ping_interval=0.5, ping_timeout=0.5) as server:
        c = rtsync.QuickMeetClient(url=server.url, username="alice", password="alice-password", backoff=fast(), queue_size=20, ping_interval=0.6, ping_timeout=1.0, handshake_timeout=2.0)
        seen: List[str] = []

        def slow(e: Event) -> None:
            time.sleep(SLOW)
            seen.append(e.data[0]["msg"])

        c.on("stream-room-messages", slow)
        got = started(c)
        try:
            c.subscribe_room_messages("GENERAL")
            for n in range(SLOW_EVENTS):
                server.publish("GENERAL", f"m{n}")
            assert wait_for(lambda: len(seen) >= SLOW_EVENTS, timeout=SLOW_EVENTS * SLOW + 4), \
                f"{len(seen)} of {SLOW_EVENTS} delivered"
            time.sleep(0.3)
            closes = list(server.closes)
        finally:
            c.stop()
    assert seen == [f"m{n}" for n in range(SLOW_EVENTS)], "every message exactly once, in order"
    assert closes == [], f"the server gave up on a client whose callbacks lagged: {closes}"
    dropped = lifecycle(got, "rtsync.disconnected")
    assert not dropped, f"a slow callback caused a disconnect: {[e.data.get('reason') for e in dropped]}"
    assert not lifecycle(got, "rtsync.gap")


# ---------------------------------------------------------------------------
# 2b. "stop() returns within about a second from any state": here, while the link thread is in its
#     closing handshake, waiting for a server that sent its close frame but keeps TCP open.
# ---------------------------------------------------------------------------


class CloseAndHold:
    """A raw WebSocket server on 127.0.0.1: completes the upgrade, sends close 1000, never ends TCP."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.held: List[socket.socket] = []
        self.closing = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="chaos-close-and-hold", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import base64
        import hashlib

        while not self._done.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.held.append(conn)
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
            key = next((line.split(":", 1)[1].strip() for line in request.decode("latin-1").split("\r\n")
                        if line.lower().startswith("sec-websocket-key:")), "")
            accept = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B65").encode()).digest()).decode()
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
            conn.sendall(bytes((0x88, 2)) + (1000).to_bytes(2, "big"))  # close 1000, then silence
            self.closing.set()

    def close(self) -> None:
        self._done.set()
        self._thread.join(2)
        for s in [*self.held, self.listener]:
            try:
                s.close()
            except OSError:
                pass


@pytest.mark.parametrize("vendor", ["doshii", "voxsig", "quickmeet"])
def test_stop_during_the_closing_handshake(vendor: str) -> None:
    server = CloseAndHold()
    try:
        c = BUILDERS[vendor](f"ws://127.0.0.1:{server.port}", backoff=rtsync.Backoff(base=5, cap=5))
        c.start()
        assert server.closing.wait(5), "the client never connected"
        time.sleep(0.1)  # the link thread now waits (up to 0.5 s) for the server to end TCP
        t0 = time.monotonic()
        c.stop()  # must neither raise nor hang
        took = time.monotonic() - t0
        left = rtsync_threads()
    finally:
        server.close()
    assert took < 1.5, f"stop() took {took:.2f} s"
    assert left == []
