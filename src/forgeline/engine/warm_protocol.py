"""Where the warm launcher listens and how a starter talks to it: one request and one reply, with descriptors.

Light on purpose: ``Pipeline.start()`` imports it before anything heavy. A launcher serves one forgeline, as
installed, on one interpreter: its socket's name is a digest of the interpreter, forgeline's folder, the
modification times of forgeline's source files and of the folders packages are installed in, and the variables
an interpreter reads as it starts, so a change to any of them makes the next start use a new launcher (the old
one exits once idle). The socket lives in a folder
only its user may enter (``$XDG_RUNTIME_DIR/forgeline``, else ``/tmp/forgeline-<uid>``).

A message is a 4-byte length with any descriptors attached (``socket.send_fds``), then that many bytes of
pickle: both ends run the same forgeline on the same interpreter.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import struct
import sys
from typing import TYPE_CHECKING, Any, NamedTuple

try:  # what hashlib.blake2b is, without hashlib loading OpenSSL on a start's path (a few ms)
    from _blake2 import blake2b
except ImportError:  # an interpreter built without it
    from hashlib import blake2b

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

ENABLED_ENV = "FORGELINE_WARM_LAUNCHER"
"""``0`` (or ``false``, ``no``, ``off``): ``pipeline.start()`` never uses a warm launcher and starts none."""
DIR_ENV = "FORGELINE_WARM_LAUNCHER_DIR"
"""The folder of the launchers' sockets (default: ``$XDG_RUNTIME_DIR/forgeline``, else ``/tmp/forgeline-<uid>``)."""
IDLE_ENV = "FORGELINE_WARM_LAUNCHER_IDLE_SECONDS"
"""How long a launcher waits for its next start before it exits (read by the process that starts it)."""
DEFAULT_IDLE_SECONDS = 900.0
READY = b"R"
"""What a new launcher writes on its ready descriptor once it listens."""
BUSY = b"B"
"""What it writes instead when another launcher holds the place's lock (it serves, or is about to)."""
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
"""Signals whose disposition a launcher's child takes from its requester: ignored there (``nohup``, a background
job), ignored here too; else the interpreter's default."""
READY_TIMEOUT_SECONDS = 120.0
"""How long a starter waits for a launcher it started to listen (its imports, on a loaded machine)."""
MAX_DESCRIPTORS = 8
START_UP_PREFIXES = ("PYTHON", "LC_", "LANG", "TMPDIR", "TEMP", "TMP")
"""Variables read as an interpreter starts: starters that differ in them are served by different launchers."""
IMPORT_TIME_NAMES = ("TYPER_USE_RICH", "TERMINAL_WIDTH", "_TYPER_FORCE_DISABLE_TERMINAL", "GITHUB_ACTIONS",
                     "FORCE_COLOR", "PY_COLORS")
"""Variables the command line's libraries (Typer) read once, when imported: likewise part of a launcher's key."""
_LENGTH = struct.Struct("!I")
_FALSE = frozenset({"0", "false", "no", "off"})


class LauncherPlace(NamedTuple):
    """The files of the launcher that serves this forgeline: its socket, its lock, its log and its pid."""

    folder: str
    key: str

    @classmethod
    def of_socket(cls, socket_path: str) -> LauncherPlace:
        """The place whose socket is ``socket_path``."""
        folder, name = os.path.split(socket_path)
        return cls(folder, name.removeprefix("w-").removesuffix(".sock"))

    @property
    def socket(self) -> str:
        """Where it listens."""
        return self._file("sock")

    @property
    def lock(self) -> str:
        """Held by the launcher while it runs: one launcher per place."""
        return self._file("lock")

    @property
    def log(self) -> str:
        """Where a launcher writes what went wrong outside any execution."""
        return self._file("log")

    @property
    def pid_file(self) -> str:
        """The running launcher's process id."""
        return self._file("pid")

    def _file(self, kind: str) -> str:
        return os.path.join(self.folder, f"w-{self.key}.{kind}")


def warm_launcher_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether FORGELINE_WARM_LAUNCHER allows a warm launcher (it does unless set to 0, false, no or off)."""
    value = (os.environ if environ is None else environ).get(ENABLED_ENV, "1")
    return value.strip().lower() not in _FALSE


def idle_seconds(environ: Mapping[str, str] | None = None) -> float:
    """FORGELINE_WARM_LAUNCHER_IDLE_SECONDS, or the default when unset; ValueError naming it when not a number."""
    value = (os.environ if environ is None else environ).get(IDLE_ENV, "").strip()
    if not value:
        return DEFAULT_IDLE_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{IDLE_ENV} must be a number of seconds, not {value!r}") from None
    if not seconds > 0:
        raise ValueError(f"{IDLE_ENV} must be more than 0 seconds, not {value!r}")
    return seconds


def launcher_place() -> LauncherPlace | None:
    """The place of this forgeline's launcher; None where there can be none (no Unix sockets, an unsafe folder)."""
    if not hasattr(socket, "AF_UNIX") or not hasattr(socket, "send_fds") or not hasattr(os, "getuid"):
        return None
    folder = launcher_folder()
    return None if folder is None else LauncherPlace(folder, launcher_key())


def launcher_folder() -> str | None:
    """The folder of this user's launcher sockets, made when missing; None unless only this user may use it."""
    uid = os.getuid()
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    folder = os.environ.get(DIR_ENV) or (
        os.path.join(runtime_dir, "forgeline") if runtime_dir and os.path.isdir(runtime_dir)
        else os.path.join(os.environ.get("TMPDIR") or "/tmp", f"forgeline-{uid}"))
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        info = os.lstat(folder)
    except OSError:
        return None
    private = info.st_uid == uid and (info.st_mode & 0o077) == 0 and os.path.isdir(folder)
    return folder if private and not os.path.islink(folder) else None


def launcher_key() -> str:
    """A digest of what a launcher must share with its starters: interpreter, forgeline's code, installed packages,
    and the environment variables an interpreter reads as it starts (paths, encodings, hash seed, temporary folder)
    or the command line's libraries read when imported (colours, width)."""
    import forgeline

    package = os.path.dirname(os.path.abspath(forgeline.__file__))
    digest = blake2b(digest_size=8)
    digest.update(f"{sys.executable}\0{sys.version}\0{package}\0{code_stamp(package)}".encode())
    for name in sorted(os.environ):
        if name.startswith(START_UP_PREFIXES) or name in IMPORT_TIME_NAMES:
            digest.update(f"\0{name}={os.environ[name]}".encode())
    for folder in sys.path:
        if folder.endswith("-packages"):
            try:
                digest.update(f"\0{folder}:{os.stat(folder).st_mtime_ns}".encode())
            except OSError:
                continue
    return digest.hexdigest()


def code_stamp(folder: str) -> str:
    """A digest of the Python files under ``folder``: their paths and modification times."""
    digest = blake2b(digest_size=8)
    pending = [folder]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except OSError:
            continue
        with entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    digest.update(f"{entry.path}\0{entry.stat().st_mtime_ns}\0".encode())
    return digest.hexdigest()


def connect(place: LauncherPlace) -> socket.socket | None:
    """A connection to the launcher listening at ``place``; None when none does."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(place.socket)
    except OSError:
        connection.close()
        return None
    return connection


def start_launcher(place: LauncherPlace, wait: bool = True) -> socket.socket | None:
    """Start a launcher at ``place`` in a session of its own; once it listens, a connection to it (``wait``).

    None when it does not come up, or at once when not waiting (the next request will find it). ValueError
    naming FORGELINE_WARM_LAUNCHER_IDLE_SECONDS when it is not a number of seconds.
    """
    import subprocess

    idle = idle_seconds()
    read_fd, write_fd = os.pipe()
    try:
        with open(place.log, "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "forgeline.engine.warm_launcher", place.socket, str(write_fd), f"{idle:g}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(write_fd,), start_new_session=True,
                cwd="/",
            )
    except OSError:
        os.close(read_fd)
        return None
    finally:
        os.close(write_fd)
    if not wait:
        os.close(read_fd)
        return None
    try:
        ready, _, _ = select.select([read_fd], [], [], READY_TIMEOUT_SECONDS)
        news = os.read(read_fd, 1) if ready else b""
    finally:
        os.close(read_fd)
    return connect(place) if news == READY else None


def requester_state(stdio: tuple[int, ...]) -> dict[str, Any]:
    """What a launcher's child takes on to act as this process (see ``warm_launcher.take_on``)."""
    return {"stdio": list(stdio), "environ": dict(os.environ), "cwd": os.getcwd(), "umask": _umask(),
            "argv": list(sys.argv), "path": list(sys.path),
            "ignored_signals": [signum for signum in SIGNALS if signal.getsignal(signum) is signal.SIG_IGN]}


def send_message(connection: socket.socket, message: Any, descriptors: Sequence[int] = ()) -> None:
    """Send one pickled message with ``descriptors`` attached (duplicated into the receiver)."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    socket.send_fds(connection, [_LENGTH.pack(len(payload))], list(descriptors))
    connection.sendall(payload)


def receive_message(connection: socket.socket) -> tuple[Any, list[int]]:
    """The next message and the descriptors that came with it; EOFError when the other end closed first."""
    header, descriptors, _flags, _address = socket.recv_fds(connection, _LENGTH.size, MAX_DESCRIPTORS)
    if not header:
        for fd in descriptors:
            os.close(fd)
        raise EOFError("the other end closed the connection")
    header += _exactly(connection, _LENGTH.size - len(header))
    (length,) = _LENGTH.unpack(header)
    return pickle.loads(_exactly(connection, length)), descriptors


def _exactly(connection: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = connection.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other end closed the connection mid-message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
