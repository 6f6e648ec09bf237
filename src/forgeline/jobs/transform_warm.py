"""Batch transform on warm workers: ask this user's transform server to run the workers, start it when it is not up.

A transform job is a new process whose workers would each import the model's framework (scikit-learn: most of a
second) before their first record. The warm server (``transform_server.py``) is one process per user and Python
environment that has imported it already: it forks a host per job, and the host forks the workers, so a job's
workers start in milliseconds. The job process sends the server its standard output and error (the workers print
there), its folder, environment and ``sys.path`` with the work, and waits for the answer; the host ends with
everything under it as soon as that connection closes, so a stopped or killed job leaves no worker running.

The server is found by a socket named after what it would run: the interpreter, ``sys.path`` and the modules
of forgeline a worker runs (their modification times too, so changed code never runs on an old server).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import struct
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forgeline.jobs import process_tree
from forgeline.jobs.transform_chunks import Predictor, TransformSettings, WorkerLostError

HEADER = struct.Struct("!Q")
"""Length of a pickled request or answer that follows."""
ACCEPTED = b"A"
"""The host's first byte to its job: the work is taken (an end of the connection before it: try another server)."""
START_SECONDS = 60.0
"""How long a job waits for a server it started to listen before it runs its workers itself."""
SERVED_MODULES = ("transform", "transform_chunks", "transform_worker", "transform_server", "transform_warm")
"""forgeline's modules a warm worker runs (besides the inference loader): a change to one needs a new server."""


def server_address(search_path: list[str] | None = None) -> Path:
    """The socket of the server for this interpreter, ``sys.path`` and forgeline's code, in a folder of this user."""
    from forgeline.inference import handlers, loader

    folder = Path(os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp") / f"forgeline-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise PermissionError(f"{folder} must belong to this user alone (mode 700)")
    here = Path(__file__).parent
    code = [here / f"{name}.py" for name in SERVED_MODULES] + [Path(loader.__file__), Path(handlers.__file__)]
    identity = [sys.executable, *(search_path if search_path is not None else sys.path)]
    identity += [f"{path}:{path.stat().st_mtime_ns}" for path in code]
    data = "\0".join(identity).encode()
    digest = f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"  # a name, not a secret: no hashlib to import
    return folder / f"transform-{digest}.sock"


def transform_on_server(source: Path, target: Path, factory: Callable[[], Predictor],
                        settings: TransformSettings) -> dict[str, int] | None:
    """Transform on the warm server's workers: records per file, or None when no server could be reached.

    Raises what the transform raised there (RecordError, ModelLoadError, ...), WorkerLostError if its host died.
    """
    address = server_address()
    work = pickle.dumps((str(source), str(target), factory, settings))
    request = pickle.dumps({"cwd": os.getcwd(), "env": dict(os.environ), "sys_path": list(sys.path), "work": work})
    for _ in range(2):  # a server that was just ending its idle time: once more, with a new one
        channel = connect(address, settings.warm_seconds)
        if channel is None:
            return None
        with channel:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()  # what this process printed comes before what the workers print
            try:
                socket.send_fds(channel, [HEADER.pack(len(request))], [1, 2])
                channel.sendall(request)
                accepted = channel.recv(1)
            except OSError:
                accepted = b""
            if accepted != ACCEPTED:
                continue
            answer = receive(channel)
        if answer is None:
            raise WorkerLostError("the transform workers' host died before it answered (out of memory, or killed "
                                  "by a signal)")
        if isinstance(answer, BaseException):
            raise answer
        counts: dict[str, int] = answer
        return counts
    return None


def connect(address: Path, warm_seconds: float) -> socket.socket | None:
    """A connection to the server at ``address``, started if nobody listens there; None if it does not come up."""
    channel = _connected(address)
    if channel is not None:
        return channel
    start_server(address, warm_seconds)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        channel = _connected(address)
        if channel is not None:
            return channel
        time.sleep(0.005)
    return None


def _connected(address: Path) -> socket.socket | None:
    channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        channel.connect(str(address))
    except OSError:
        channel.close()
        return None
    return channel


def start_server(address: Path, warm_seconds: float) -> None:
    """Start the server for ``address`` in a session of its own; it detaches, so this returns in milliseconds."""
    command = [sys.executable, "-m", "forgeline.jobs.transform_server",
               process_tree.SHARED_SERVER_ARGUMENT.decode(), str(address), str(warm_seconds)]
    import subprocess

    env = {**os.environ, "FORGELINE_TRANSFORM_SYS_PATH": os.pathsep.join(sys.path)}
    subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, start_new_session=True, cwd="/", check=False)


def receive(channel: socket.socket) -> Any | None:
    """One length-prefixed pickled message; None if the connection ended first."""
    header = _exactly(channel, HEADER.size)
    if header is None:
        return None
    payload = _exactly(channel, HEADER.unpack(header)[0])
    return None if payload is None else pickle.loads(payload)


def _exactly(channel: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        try:
            chunk = channel.recv(min(size - len(data), 1 << 20))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def send(channel: socket.socket, message: Any) -> None:
    """One length-prefixed pickled message."""
    payload = pickle.dumps(message)
    channel.sendall(HEADER.pack(len(payload)) + payload)
