"""The wire layer: framing (websockets' rules, our assembly and fast path) and the link's reads on a socket."""

from __future__ import annotations

import os
import resource
import socket
import struct
import threading
import time
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtsync.errors import ConnectionLost, FrameTooLarge
from rtsync.sansio import Handshake
from rtsync.wire import Closed, FrameReader, Heard, Skipped, WebSocketLink, WebSocketProtocolError

PING, PONG, CLOSE = 0x9, 0xA, 0x8


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True, mask: bytes = b"", rsv: int = 0) -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + payload


def close(code: int, reason: bytes = b"") -> bytes:
    return frame(struct.pack("!H", code) + reason, opcode=CLOSE)


def sent(reader: FrameReader) -> bytes:
    """What the reader queued for the server, unmasked (frames a client sends are masked)."""
    data, out = reader.outgoing(), b""
    while data:
        length = data[1] & 0x7F
        key, body = data[2:6], data[6:6 + length]
        out += bytes([data[0], length]) + bytes(b ^ key[i % 4] for i, b in enumerate(body))
        data = data[6 + length:]
    return out


def feed(reader: FrameReader, data: bytes) -> List[object]:
    """Everything the bytes give, as the link reads it: frames held back come on the next calls."""
    out: List[object] = list(reader.feed(data))
    while reader.buffered or reader.failed:
        more = reader.feed(b"")
        if not more:
            break
        out += more
    return out


def test_lengths_7_16_64_bits_and_split_reads() -> None:
    reader = FrameReader(1 << 20)
    texts = ["a", "b" * 200, "c" * 70000]
    data = b"".join(frame(t.encode()) for t in texts)
    got: List[object] = []
    for i in range(0, len(data), 999):  # arbitrary chunking, as TCP delivers
        got += feed(reader, data[i:i + 999])
    assert got == texts


def test_fragmented_message_with_interleaved_ping_is_answered_and_assembled() -> None:
    reader = FrameReader(1 << 20)
    data = (frame(b"hel", fin=False) + frame(b"p!", opcode=PING) + frame(b"lo ", opcode=0, fin=False)
            + frame("wörld".encode(), opcode=0))
    assert feed(reader, data) == [Heard(), "hello wörld"]
    assert sent(reader) == bytes([0x80 | PONG, 2]) + b"p!"


def test_binary_messages_and_the_servers_close_is_echoed() -> None:
    reader = FrameReader(1 << 20)
    got = feed(reader, frame(b"\x00\x01", opcode=2) + close(1008, b'{"x":1}') + frame(b"after"))
    assert got == [b"\x00\x01", Closed(1008, '{"x":1}')]
    assert sent(reader)[:4] == bytes([0x80 | CLOSE, 9]) + struct.pack("!H", 1008)
    assert reader.feed(frame(b"ignored") + frame(b"", opcode=PING)) == []  # nothing after the close
    assert reader.outgoing() == b""


def test_empty_close_has_no_code() -> None:
    assert FrameReader(100).feed(frame(b"", opcode=CLOSE)) == [Closed(None, "")]


@pytest.mark.parametrize("data, why", [
    (frame(b"x", mask=b"\x01\x02\x03\x04"), "masking"),
    (frame(b"x", rsv=4), "reserved bits"),
    (frame(b"x", opcode=3), "opcode"),
    (frame(b"x", opcode=0xB), "opcode"),
    (frame(b"x", opcode=0), "continuation"),
    (frame(b"a", fin=False) + frame(b"b"), "continuation"),
    (frame(b"p", opcode=PING, fin=False), "fragmented control"),
    (frame(b"p" * 126, opcode=PING), "control frame too long"),
    (frame(b"\x03", opcode=CLOSE), "close frame too short"),
    (close(999), "close code"),
    (close(1000, b"\xff"), "utf"),
    (frame(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), "utf-8"),
    (frame(b"ok \xf4", fin=False) + frame(b"\x90\x80\x80", opcode=0), "utf-8"),
])
def test_protocol_violations_fail_the_link_with_a_close_frame(data: bytes, why: str) -> None:
    reader = FrameReader(1 << 20)
    with pytest.raises(WebSocketProtocolError, match="broke the WebSocket protocol"):
        feed(reader, data)
    out = sent(reader)
    assert out[0] == 0x80 | CLOSE and struct.unpack("!H", out[2:4])[0] in (1002, 1007)
    with pytest.raises(WebSocketProtocolError):  # and it stays failed
        reader.feed(frame(b"more"))


def test_messages_before_a_violation_are_returned_first() -> None:
    reader = FrameReader(1 << 20)
    assert reader.feed(frame(b"good") + frame(b"x", rsv=2) + frame(b"never")) == ["good"]
    assert reader.outgoing() == b""  # not failed yet: "good" can still be answered
    with pytest.raises(WebSocketProtocolError):
        reader.feed(b"")


def test_a_close_may_interrupt_a_fragmented_message() -> None:
    reader = FrameReader(1 << 20)
    assert feed(reader, frame(b"frag1", fin=False) + close(1000) + frame(b"frag2", opcode=0)) == [Closed(1000)]
    assert struct.unpack("!H", sent(reader)[2:4])[0] == 1000


def test_invalid_utf8_fails_fast_on_the_first_bad_fragment() -> None:
    reader = FrameReader(1 << 20)
    with pytest.raises(WebSocketProtocolError):
        reader.feed(frame(b"\xff", fin=False))  # the rest never needs to arrive
    assert struct.unpack("!H", sent(reader)[2:4])[0] == 1007


def test_oversized_message_is_skipped_across_reads_without_buffering_and_the_next_survives() -> None:
    reader = FrameReader(100)
    big = frame(b"x" * 5000)
    (skipped,) = reader.feed(big[:1000])
    assert isinstance(skipped, Skipped) and isinstance(skipped.error, FrameTooLarge)
    assert "5000-byte message" in str(skipped.error)
    assert len(reader._buf) == 0  # noqa: SLF001 - nothing of it is held
    assert reader.feed(big[1000:3000]) == []
    assert reader.feed(big[3000:] + frame(b"next")) == ["next"]


def test_oversized_fragmented_message_is_reported_once_and_nothing_leaks() -> None:
    reader = FrameReader(10)
    got = feed(reader, frame(b"123456", fin=False) + frame(b"789012", opcode=0, fin=False)
                      + frame(b"x" * 300, opcode=0, fin=False) + frame(b"tail", opcode=0) + frame(b"ok"))
    assert [type(g) for g in got] == [Skipped, str] and got[1] == "ok"


def test_fragment_assembly_is_linear() -> None:
    # 4 MiB in 64-byte fragments: 65,536 frames. Quadratic assembly took ~80 s here.
    reader = FrameReader(8 << 20)
    piece = b"y" * 64
    n = (4 << 20) // 64
    data = frame(piece, fin=False) + frame(piece, opcode=0, fin=False) * (n - 2) + frame(piece, opcode=0)
    (message,) = reader.feed(data)
    assert len(message) == 4 << 20


# -- the fast path gives what the library gives -------------------------------------------------
_frames = st.one_of(
    st.builds(lambda t: frame(t.encode()), st.text(max_size=300)),
    st.builds(lambda b: frame(b, opcode=2), st.binary(max_size=300)),
    st.builds(lambda b: frame(b), st.binary(max_size=20)),  # often invalid UTF-8
    st.builds(lambda b: frame(b, opcode=PING), st.binary(max_size=125)),
    st.builds(lambda t: frame(t.encode(), fin=False) + frame(b"!", opcode=0), st.text(max_size=50)),
    st.builds(lambda c: close(c), st.sampled_from([1000, 1001, 1008, 3000, 4401])),
)


def _run(reader: FrameReader, data: bytes, cut: int) -> List[object]:
    out: List[object] = []
    try:
        for i in range(0, len(data), cut):
            out += feed(reader, data[i:i + cut])
        reader.feed(b"")
    except WebSocketProtocolError:
        out.append("failed")
    return [("skipped", str(m.error)) if isinstance(m, Skipped) else m for m in out]  # exceptions: by text


class _SlowReader(FrameReader):
    """The same reader with the fast path switched off: every frame goes through websockets."""

    def feed(self, data: bytes) -> List[object]:  # type: ignore[override]
        self._open = True  # noqa: SLF001 - the fast path only runs when no message is open
        try:
            return super().feed(data)  # type: ignore[return-value]
        finally:
            self._open = False  # noqa: SLF001


@settings(max_examples=300, deadline=None)
@given(st.lists(_frames, max_size=12), st.integers(1, 64), st.sampled_from([1 << 20, 1000, 100, 0]))
def test_fast_path_matches_the_library(frames: List[bytes], cut: int, limit: int) -> None:
    data = b"".join(frames)
    fast, slow = FrameReader(limit), _SlowReader(limit)
    assert _run(fast, data, cut) == _run(slow, data, cut)
    assert len(fast.outgoing()) == len(slow.outgoing())  # the same pongs and closes (masks differ)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=70_000)), max_size=8),
       st.lists(st.integers(1, 80_000), max_size=12), st.integers(0, 3))
def test_messages_come_whole_however_the_reads_cut_them(
    messages: List[object], cuts: List[int], with_ping: int
) -> None:
    """Every byte counted once: frames cut from the read, tails kept, a begun frame completed first."""
    data = b"".join(frame(m.encode(), 0x1) if isinstance(m, str) else frame(m, 0x2) for m in messages)
    if with_ping:
        data = frame(b"p", opcode=PING) + data
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    reader, out = FrameReader(1 << 20), []
    for lo, hi in zip(points, points[1:]):
        out += feed(reader, memoryview(bytearray(data))[lo:hi])  # as the link passes its read buffer
    got = [m for m in out if not isinstance(m, Heard)]
    assert got == messages and not reader.buffered


def test_a_read_of_many_messages_is_returned_in_batches_of_256() -> None:
    # Callbacks get the first events of a big read while the rest are decoded, and a batch's
    # objects die young instead of waiting for thousands of others.
    reader = FrameReader(1 << 20)
    texts = [f"m{i}" for i in range(1000)]
    data = b"".join(frame(t.encode()) for t in texts)
    tail = frame(b"last")
    batches = [reader.feed(data + tail[:3])]
    while reader.more and batches[-1]:  # as the link calls it: until a call gives nothing
        batches.append(reader.feed(b""))
    assert [len(b) for b in batches] == [256, 256, 256, 232, 0]
    assert sum(batches, []) == texts and reader.buffered  # the begun frame waits for its bytes
    assert reader.feed(tail[3:]) == ["last"] and not reader.more and not reader.buffered


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=200, max_size=900), st.lists(st.integers(1, 20_000), max_size=6))
def test_batches_lose_and_repeat_nothing_however_the_reads_cut_them(messages: List[str], cuts: List[int]) -> None:
    data = b"".join(frame(m.encode()) for m in messages)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    reader, out = FrameReader(1 << 20), []
    for lo, hi in zip(points, points[1:]):
        out += feed(reader, data[lo:hi])
    assert out == messages and not reader.buffered


# -- the link's reads on a real socket ----------------------------------------------------------
def _link_on(sock: socket.socket) -> WebSocketLink:
    link = WebSocketLink(Handshake("ws://unused"))
    link._sock = sock  # noqa: SLF001 - a connected socket without a handshake
    return link


def test_reads_wait_without_touching_the_sockets_timeout() -> None:
    # A zero timeout once made the socket non-blocking: BlockingIOError, read as a lost connection,
    # and writes from other threads inherited the reader's short timeouts.
    ours, theirs = socket.socketpair()
    try:
        ours.settimeout(5.0)
        link = _link_on(ours)
        assert link.recv(0) == [] and link.recv(0.01) == []
        assert ours.gettimeout() == 5.0
        theirs.sendall(frame(b"hello") + frame(b"", opcode=PING))
        assert link.recv(1.0) == ["hello"]
        assert link.recv(0) == [Heard()]  # held back behind the message, then answered
        assert theirs.recv(100)[:2] == bytes([0x80 | PONG, 0x80])  # answered, masked
        theirs.close()
        with pytest.raises(ConnectionLost):
            link.recv(1.0)
    finally:
        ours.close()


def test_reads_work_on_descriptors_above_1023() -> None:
    # select() cannot watch them; a long-running app easily holds that many files and sockets.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        ours, theirs = socket.socketpair()
        assert ours.fileno() > 1023
        link = _link_on(ours)
        assert link.recv(0.01) == []
        theirs.sendall(frame(b"high"))
        assert link.recv(1.0) == ["high"]
        ours.close()
        theirs.close()
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_wake_ends_a_long_wait_at_once_and_loses_no_data() -> None:
    # An idle reader sleeps until its next deadline; a user thread that sets a sooner one wakes it.
    ours, theirs = socket.socketpair()
    try:
        link = _link_on(ours)
        link._make_waker()  # noqa: SLF001 - connect() makes it
        got: List[object] = []
        reader = threading.Thread(target=lambda: got.append(link.recv(None)))
        reader.start()
        link.wake()
        reader.join(30)
        assert not reader.is_alive() and got == [[]]
        link.wake()  # before the read: that read returns at once, the next one reads
        link.wake()
        assert link.recv(None) == []
        theirs.sendall(frame(b"after"))
        assert link.recv(None) == ["after"]
        link.abort()
        link.wake()  # after abort: harmless
        with pytest.raises(ConnectionLost):
            link.recv(None)
    finally:
        ours.close()
        theirs.close()


def test_abort_ends_a_waiting_read_before_its_descriptors_can_be_reused() -> None:
    # Closed under a waiting poll, the numbers could go to another connection of the process and
    # the poll would wait on that one (stop() then timed out): abort wakes the read, then closes.
    ours, theirs = socket.socketpair()
    try:
        link = _link_on(ours)
        link._make_waker()  # noqa: SLF001 - connect() makes it
        numbers = {ours.fileno(), *(end.fileno() for end in link._waker or ())}  # noqa: SLF001
        ended: List[str] = []

        def read() -> None:
            try:
                link.recv(None)  # no deadline: only abort() can end it
            except ConnectionLost:
                ended.append("lost")

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.2)
        link.abort()
        reused = [socket.socket() for _ in range(4)]  # the freed numbers go to new sockets at once
        try:
            assert numbers & {s.fileno() for s in reused}
            reader.join(5)
            assert not reader.is_alive() and ended == ["lost"]
        finally:
            for s in reused:
                s.close()
    finally:
        ours.close()
        theirs.close()
