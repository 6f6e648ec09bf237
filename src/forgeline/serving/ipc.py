"""Frames between the server and its workers: a 4-byte length, then a pickle (one frame per batch)."""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

HEADER = struct.Struct("!I")


def encode_frame(message: Any) -> bytes:
    """The bytes of one frame carrying ``message``."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def send_frame(sock: socket.socket, message: Any) -> None:
    """Write one frame (blocking)."""
    sock.sendall(encode_frame(message))


def recv_frame(sock: socket.socket) -> Any | None:
    """Read one frame (blocking); None when the other side has closed the connection."""
    header = _read_exactly(sock, HEADER.size)
    if header is None:
        return None
    payload = _read_exactly(sock, HEADER.unpack(header)[0])
    return None if payload is None else pickle.loads(payload)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)
