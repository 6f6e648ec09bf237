"""The load generator's response reader: a response is complete at its last byte, however the bytes arrive."""

from __future__ import annotations

import pytest

from forgeline.serving.load_connections import ProtocolViolation, ResponseReader

CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\n")
LENGTH = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\n\r\n{\"busy\": 1}"
INTERIM = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"


@pytest.mark.parametrize("response, status", [(CHUNKED, 200), (LENGTH, 503), (INTERIM, 204)])
@pytest.mark.parametrize("piece", [1, 3, 7, 10_000])
def test_complete_exactly_at_the_last_byte(response: bytes, status: int, piece: int) -> None:
    reader = ResponseReader()
    pieces = [response[i:i + piece] for i in range(0, len(response), piece)]
    assert [reader.feed(p) for p in pieces] == [False] * (len(pieces) - 1) + [True]
    assert reader.status == status and reader.keep_alive


def test_connection_close_and_http_1_0_are_not_reused() -> None:
    closing = ResponseReader()
    assert closing.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert not closing.keep_alive
    old = ResponseReader()
    assert old.feed(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    assert not old.keep_alive


def test_a_body_without_length_lasts_until_the_connection_closes() -> None:
    reader = ResponseReader()
    assert not reader.feed(b"HTTP/1.0 200 OK\r\n\r\nsome")
    assert not reader.feed(b" more")
    assert reader.until_close and reader.status == 200 and not reader.keep_alive


@pytest.mark.parametrize("garbage", [b"SSH-2.0-OpenSSH_9\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n",
                                     b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n"])
def test_what_is_not_http_is_a_protocol_violation(garbage: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        ResponseReader().feed(garbage)
