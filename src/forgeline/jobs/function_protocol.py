"""The private pipe between forgeline and a warm function worker: length-prefixed pickled messages.

A request is a dict with keys `function` ((name, file, module)), `arguments` (pickled (args, kwargs)),
`job_dir`, `log_path`, `working_dir`, `env`, `return_uri`, `artifact_root` and `storage_options`. A reply is
`{"ok": True, "properties": {...}}` or `{"ok": False, "failure_kind": <FailureKind value>, "reason": str}`.
Both hold only builtin types, so either side can unpickle them without importing user code.
"""

from __future__ import annotations

import os
import pickle
import struct
from typing import Any

_HEADER = struct.Struct("!Q")
_CHUNK = 1 << 20


def write_message(fd: int, message: Any) -> None:
    """Send one message; raises BrokenPipeError when the other side is gone."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    _write_all(fd, _HEADER.pack(len(data)) + data)


def read_message(fd: int) -> Any | None:
    """Receive one message, or None at EOF (the other side closed its end or died)."""
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    body = _read_exactly(fd, size)
    return None if body is None else pickle.loads(body)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, _CHUNK))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
