"""The supervisor of a script job: runs the script, relays its output, and records how it ended in the job directory.

On Linux the supervisor launcher (``supervisor_launcher.py``) forks it ahead of its job, with the script's process
forked ahead as well (:class:`WaitingScript`), and calls :func:`supervise` when the job comes; elsewhere it runs as
``python -S supervisor.py <exit-status-file> <log-file> -- <command>...``: standard library only, so it costs tens
of milliseconds, not a full interpreter's imports. It leads the job's process group and outlives an orchestrator
that dies: its output then goes straight into the log file instead of the orchestrator's pipes, so the script never
meets a broken pipe, and the exit status it writes lets a resumed orchestrator adopt the finished job instead of
running it again. The script dies with its supervisor (parent-death signal), so killing the supervisor alone never
leaves a script running unseen.
"""

from __future__ import annotations

import marshal
import os
import select
import signal
import sys
import time

if __package__:
    from forgeline.jobs import process_tree, script_runner
else:  # run by path under -S, as jobs are: the sibling files, without importing forgeline
    import process_tree  # type: ignore[no-redef]
    import script_runner  # type: ignore[no-redef]

PR_SET_PDEATHSIG = 1
SCRIPT_VARIABLES = {"PYTHONUNBUFFERED": "1"}
"""What every script's environment adds to forgeline's own (its output reaches the log as it prints)."""
CHUNK_BYTES = 64 * 1024
EXIT_CHECK_SECONDS = 0.05
"""How often the supervisor looks whether the script ended while something else still holds its pipes."""
SUPERVISOR_PID_FILE = ".forgeline-supervisor.pid"
LINGERING_PIPE_SECONDS = 2.0
"""How long to keep relaying after the script exited while a child it left behind holds its pipes."""
DRAIN_ROUNDS = 1024
"""At most this many reads (of up to 64 KiB per pipe) when draining what a job left in its pipes."""
LEFTOVER_GRACE_SECONDS = 2.0
"""How long processes the script left running get between SIGTERM and SIGKILL once it has exited."""


class Relay:
    """Copies the script's pipes to this process's stdout and stderr, or to the log file once nobody reads those.

    One thread (this one) polls both pipes: starting relay threads would cost more than the rest of the start.
    """

    def __init__(self, targets: dict[int, int], log_path: str) -> None:
        self._targets = dict(targets)  # script pipe -> where it goes (1, 2; -1: the log file)
        self._log_path = log_path
        self._poller = select.poll()
        for source in self._targets:
            self._poller.register(source, select.POLLIN)

    @property
    def open(self) -> bool:
        """Whether some pipe may still deliver output."""
        return bool(self._targets)

    def pump(self, timeout_seconds: float) -> bool:
        """Copy what arrives within ``timeout_seconds`` (a pipe at its end is closed); whether any was ready."""
        ready = self._poller.poll(max(0, int(timeout_seconds * 1000)))
        for source, _ in ready:
            try:
                chunk = os.read(source, CHUNK_BYTES)
            except OSError:
                chunk = b""
            if chunk:
                self._write(source, chunk)
            else:
                self._poller.unregister(source)
                os.close(source)
                del self._targets[source]
        return bool(ready)

    def drain(self) -> None:
        """Copy what is already written to the pipes, without waiting for more (bounded: a writer may remain)."""
        for _ in range(DRAIN_ROUNDS):
            if not (self._targets and self.pump(0)):
                return

    def _write(self, source: int, chunk: bytes) -> None:
        target = self._targets[source]
        try:
            if target >= 0:
                while chunk:
                    chunk = chunk[os.write(target, chunk):]
                return
        except OSError:  # the orchestrator is gone: from now on the log file itself is the reader
            self._targets = {fd: -1 for fd in self._targets}
        with open(self._log_path, "ab") as log:
            log.write(chunk)


def prepare_script_process() -> None:
    """In the script's process before exec: default signal handling, and SIGKILL when the supervisor dies."""
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(number, signal.SIG_DFL)
    process_tree.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # best effort: other systems keep the old behaviour


def become_script_process(stdout_fd: int, stderr_fd: int) -> None:
    """In a forked child before exec: stdin from /dev/null, output to the given pipes, prepare_script_process()."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)  # a script run in this process (script_runner.py) holds nothing but its three streams
    os.dup2(stdout_fd, 1)
    os.dup2(stderr_fd, 2)
    prepare_script_process()


def relay_stop(signum: int, frame: object) -> None:
    """Pass a stop (SIGTERM) on to the processes below the supervisor that left its process group."""
    process_tree.signal_all(process_tree.outside_own_group(process_tree.descendants(os.getpid())), signal.SIGTERM)


def note(log_path: str, text: str) -> None:
    """One line of forgeline's own in the job's output (the log file itself once nobody reads the pipe)."""
    try:
        os.write(1, text.encode())
    except OSError:
        with open(log_path, "ab") as log:
            log.write(text.encode())


def write_exit_status(path: str, exit_code: int) -> None:
    """Record the script's exit code (negative: the signal that killed it) atomically, as one line of text.

    No fsync: the file must outlive the orchestrator, not the machine. After a crash of the machine a file
    that came out empty reads as no exit status, and the job runs again, which is what such a crash needs.
    """
    temporary = f"{path}.tmp"
    write_file(temporary, f"{exit_code}\n")
    os.replace(temporary, path)


def write_file(path: str, text: str) -> None:
    """Write a small file with plain system calls (no file object: this runs on every job's critical path)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)


def start_script(command: list[str], stdout_fd: int, stderr_fd: int, env: dict[str, str] | None = None) -> int:
    """Fork and exec the script with its output on the given pipes (and ``env``, if given; else this process's).

    A script that cannot start exits 127.
    """
    pid = os.fork()
    if pid:
        return pid
    try:  # the child: only async-safe work between fork and exec
        become_script_process(stdout_fd, stderr_fd)
        if env is None:
            os.execvp(command[0], command)
        os.execvpe(command[0], command, env)
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the child must not return into main
        os.write(2, f"could not start {command[0]}: {exc}\n".encode())
    finally:
        os._exit(127)


class WaitingScript:
    """A script's process forked ahead of its job: its output pipes are set, it waits for the command to exec.

    Forked by a spare supervisor while it waits for a job, so neither fork is on the job's path; it has reset its
    signals and asked for SIGKILL when its supervisor dies already. It exits quietly if no command comes.
    ``in_process``: this Python started as the script's would (the supervisor launcher's), so a command that
    allows it runs in the forked process itself, without a new interpreter (``script_runner.py``).
    """

    def __init__(self, in_process: bool = False) -> None:
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        command_read, command_write = os.pipe()
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:
            for descriptor in (command_write, stdout_read, stderr_read):
                os.close(descriptor)
            _exec_when_told(command_read, stdout_write, stderr_write, supervisor, in_process)
        os.close(command_read)
        os.close(stdout_write)
        os.close(stderr_write)
        self.pid = pid
        self.stdout, self.stderr = stdout_read, stderr_read
        self._command = command_write

    @property
    def descriptors(self) -> tuple[int, int, int]:
        """The descriptors this process holds for it (its output pipes, and the one its command goes through)."""
        return self.stdout, self.stderr, self._command

    def start(self, command: list[str], cwd: str, env: dict[str, str]) -> None:
        """Have it exec ``command`` in ``cwd`` with ``env`` (one that died meanwhile is seen as the script's end)."""
        payload = memoryview(marshal.dumps((command, cwd, env)))
        try:
            while payload:
                payload = payload[os.write(self._command, payload):]
        except OSError:  # it is gone: waiting for it tells how it ended
            pass
        finally:
            os.close(self._command)


def _exec_when_told(command_fd: int, stdout_fd: int, stderr_fd: int, supervisor: int, in_process: bool) -> None:
    """In a WaitingScript's child: become the script's process, read the command, exec it; never returns.

    Raises script_runner.RunHere instead when the script runs in this process (``in_process``).
    """
    command = ["the script"]
    try:
        become_script_process(stdout_fd, stderr_fd)
        if os.getppid() != supervisor:  # the supervisor died before the parent-death signal was asked for
            os._exit(127)
        chunks = []
        while chunk := os.read(command_fd, CHUNK_BYTES):
            chunks.append(chunk)
        if not chunks:  # no job came (the launcher went): nothing to say
            os._exit(0)
        command, cwd, env = marshal.loads(b"".join(chunks))
        os.chdir(cwd)
        added = script_runner.runnable(command, sys.executable, os.environ, env) if in_process else None
        if added is not None:
            for descriptor in (command_fd, stdout_fd, stderr_fd):
                os.close(descriptor)
            raise script_runner.RunHere(command, env, added)
        os.execvpe(command[0], command, env)
    except script_runner.RunHere:
        raise
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the child must not return into the supervisor
        os.write(2, f"could not start {command[0]}: {exc}\n".encode())
    os._exit(127)


def main(argv: list[str]) -> int:
    """Run the command after ``--``, relay its output, write its exit status; exit like it did."""
    if len(argv) < 4 or argv[2] != "--":
        print("usage: supervisor.py <exit-status-file> <log-file> -- <command>...", file=sys.stderr)
        return 2
    return supervise(argv[0], argv[1], argv[3:])


def supervise(exit_status_path: str, log_path: str, command: list[str], env: dict[str, str] | None = None,
              waiting: tuple[WaitingScript, str] | None = None) -> int:
    """The supervisor's work, in this process: run ``command``, relay, write its exit status; the code to exit with.

    ``env`` is the script's environment (None: this process's); ``waiting`` a script process forked ahead and
    the folder it runs in (None: fork one now, in this process's folder). Once the exit status is written, this
    process's standard output and error are released: whoever reads them sees the job's end without waiting for
    this process to be torn down and collected.
    """
    # found by a resumed orchestrator even when the one that started this job died before recording its pid
    write_file(os.path.join(os.path.dirname(exit_status_path), SUPERVISOR_PID_FILE), str(os.getpid()))
    # A stop signals the whole group: the script decides what SIGTERM means, the supervisor waits for it and
    # passes it on to the processes below it that left the group.
    signal.signal(signal.SIGTERM, relay_stop)
    process_tree.become_subreaper()  # orphans below it come to it, even those that called setsid
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if waiting is not None:
        script, cwd = waiting
        script.start(command, cwd, env if env is not None else dict(os.environ))
        pid, stdout_read, stderr_read = script.pid, script.stdout, script.stderr
    else:  # fork and exec by hand: the subprocess module alone would double this process's start-up time
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        pid = start_script(command, stdout_write, stderr_write, env)
        os.close(stdout_write)
        os.close(stderr_write)
    relay = Relay({stdout_read: 1, stderr_read: 2}, log_path)
    ended: int | None = None
    while relay.open and ended is None:  # until the script's pipes close, or it ends while a child holds them
        relay.pump(EXIT_CHECK_SECONDS)
        done, status = os.waitpid(pid, os.WNOHANG)
        ended = os.waitstatus_to_exitcode(status) if done else None
    exit_code = ended if ended is not None else os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    # whatever the script left running ends with it: it would hold the job's pipes and outlive a stop
    leftovers = process_tree.end_descendants(LEFTOVER_GRACE_SECONDS)
    lingering_until = time.monotonic() + LINGERING_PIPE_SECONDS
    while relay.open and time.monotonic() < lingering_until:
        relay.pump(lingering_until - time.monotonic())
    relay.drain()  # what is already in the pipes is kept however long the wait above took on a busy machine
    if leftovers:
        note(log_path, f"[forgeline] ended {len(leftovers)} process(es) the script left running "
                       f"(pids {', '.join(map(str, leftovers))})\n")
    write_exit_status(exit_status_path, exit_code)
    release_output()
    return exit_code if exit_code >= 0 else 128 - exit_code


def release_output() -> None:
    """Point standard output and error at /dev/null: the job's pipes end here, before this process has exited."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
