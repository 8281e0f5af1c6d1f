"""The buffered frame reader: lengths, fragmentation, masking, control frames, oversized and invalid frames."""

from __future__ import annotations

import os
import resource
import socket
import struct

import pytest

from rtsync.errors import ConnectionLost
from rtsync.sansio import Handshake
from rtsync.transport.websocket import (
    BINARY,
    CLOSE,
    PING,
    TEXT,
    WebSocketLink,
    close_details,
)


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True, mask: bytes = b"") -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
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


def reader(limit: int = 1 << 20) -> WebSocketLink:
    return WebSocketLink(Handshake("ws://unused"), max_message_size=limit)


def feed(link: WebSocketLink, data: bytes) -> list:
    link._buf += data  # noqa: SLF001 - the parser is tested without a socket
    return link._parse()  # noqa: SLF001


def test_lengths_7_16_64_bits_and_split_reads() -> None:
    link = reader()
    texts = ["a", "b" * 200, "c" * 70000]
    data = b"".join(frame(t.encode()) for t in texts)
    got = []
    for i in range(0, len(data), 999):  # arbitrary chunking, as TCP delivers
        got += feed(link, data[i:i + 999])
    assert got == [(TEXT, t) for t in texts]


def test_fragmented_message_with_interleaved_ping() -> None:
    link = reader()
    data = (frame(b"hel", fin=False) + frame(b"", opcode=PING) + frame(b"lo ", opcode=0, fin=False)
            + frame("wörld".encode(), opcode=0))
    assert feed(link, data) == [(PING, b""), (TEXT, "hello wörld")]


def test_masked_frames_are_unmasked() -> None:
    assert feed(reader(), frame(b"masked", mask=b"\x01\x02\x03\x04")) == [(TEXT, "masked")]


def test_binary_and_close_frames() -> None:
    got = feed(reader(), frame(b"\x00\x01", opcode=2) + frame(struct.pack("!H", 1008) + b'{"x":1}', opcode=8))
    assert got[0] == (BINARY, b"\x00\x01")
    assert got[1][0] == CLOSE and close_details(got[1][1]) == (1008, '{"x":1}')
    assert close_details(b"") == (None, "")


def test_oversized_frame_is_skipped_across_reads_and_the_next_frame_survives() -> None:
    link = reader(limit=100)
    big = frame(b"x" * 5000)
    got = feed(link, big[:1000])
    assert got == [(-1, "5000")]
    assert feed(link, big[1000:3000]) == []
    assert feed(link, big[3000:] + frame(b"next")) == [(TEXT, "next")]
    assert link.frame_error(-1, "5000", 100).args[0].startswith("skipped a 5000-byte frame")


def test_oversized_fragmented_message_is_reported() -> None:
    link = reader(limit=10)
    got = feed(link, frame(b"123456", fin=False) + frame(b"789012", opcode=0, fin=False)
               + frame(b"tail", opcode=0) + frame(b"ok"))
    assert got == [(-1, "12+"), (TEXT, "ok")]  # no piece of the dropped message leaks out


def test_invalid_utf8_text_is_reported_not_raised() -> None:
    (item,) = feed(reader(), frame(b"\xff\xfe"))
    assert item[0] == -2


def test_reads_wait_without_touching_the_sockets_timeout() -> None:
    # A zero timeout once made the socket non-blocking: BlockingIOError, read as a lost connection,
    # and writes from other threads inherited the reader's short timeouts.
    ours, theirs = socket.socketpair()
    try:
        ours.settimeout(5.0)
        link = reader()
        link._sock = ours  # noqa: SLF001 - a connected socket without a handshake
        assert link.recv(0) == [] and link.recv(0.01) == []
        assert ours.gettimeout() == 5.0
        theirs.sendall(frame(b"hello"))
        assert link.recv(1.0) == [(TEXT, "hello")]
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
        link = reader()
        link._sock = ours  # noqa: SLF001
        assert link.recv(0.01) == []
        theirs.sendall(frame(b"high"))
        assert link.recv(1.0) == [(TEXT, "high")]
        ours.close()
        theirs.close()
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
