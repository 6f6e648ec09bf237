"""Running a script in a process forked from a Python that started as the script's would have.

The supervisor launcher (``supervisor_launcher.py``) is an interpreter started in the environment its
orchestrator's scripts get, and a spare supervisor forks each script's process from it ahead of the job
(``supervisor.WaitingScript``). When the command comes and it is ``<that interpreter> <file>.py <arguments>...`` in
an environment that starts Python the same way (:func:`runnable`), that process needs no new interpreter: it raises
:class:`RunHere`, which unwinds to the top of the launcher's program, and :func:`run` runs the script there as
``python <file>.py`` runs it: in a new ``__main__`` module, with its ``sys.argv``, ``sys.path``, folder,
environment, signal handling and command line (what ``ps`` shows), tracebacks that start at the script, and an
exit the interpreter itself makes (``sys.exit``, an exception, a KeyboardInterrupt, atexit handlers and threads
behave as in a new process). Any other command is exec'd as it stands.

Standard library only (the launcher imports it by path, without forgeline), and nothing of forgeline stays in
``sys.modules`` or ``sys.path`` once the script starts.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import sys

TYPE_CHECKING = False  # typing itself is not imported: this runs on every script's path
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

STARTUP_PREFIXES = ("PYTHON", "LC_", "LD_", "MALLOC_")
STARTUP_NAMES = frozenset({"LANG", "HOME", "GLIBC_TUNABLES"})
"""Variables an interpreter reads (or its dynamic loader and allocator read) once, as it starts: a script runs in a
forked Python only if each has the value it had when that Python started (PYTHONPATH may add entries in front)."""
SEARCH_PATH = "PYTHONPATH"
HERE = os.path.dirname(os.path.abspath(__file__))
"""This folder: the launcher's own modules, imported by name from it, leave sys.modules before the script runs."""
ModuleType = type(sys)


class RunHere(BaseException):
    """Raised in a script's forked process to unwind to the top of the launcher's program, which calls run().

    A BaseException, so that no handler on the way takes it for a failure.
    """

    def __init__(self, command: Sequence[str], env: Mapping[str, str], added_path: Sequence[str]) -> None:
        super().__init__(command[1])
        self.command, self.env, self.added_path = list(command), dict(env), list(added_path)

    def run(self) -> None:
        """Run the script in this process (see :func:`run`)."""
        run(self.command, self.env, self.added_path)


def runnable(command: Sequence[str], interpreter: str, started: Mapping[str, str],
             env: Mapping[str, str]) -> list[str] | None:
    """The PYTHONPATH entries to add in front if ``command`` can run in this interpreter; None if it must be exec'd.

    It can when it is ``interpreter <file>.py ...`` (no options), the file exists, and ``env`` starts Python as
    ``started`` (this interpreter's environment at its start) did: the same value of every start-up variable, and
    a PYTHONPATH that only adds absolute entries in front of the one it started with.
    """
    if len(command) < 2 or command[0] != interpreter or command[1].startswith("-"):
        return None
    if not command[1].endswith(".py") or not os.path.isfile(command[1]):
        return None
    names = {name for name in (*started, *env) if starts_python(name)}
    if any(started.get(name) != env.get(name) for name in names):
        return None
    return added_search_path(started.get(SEARCH_PATH, ""), env.get(SEARCH_PATH, ""))


def starts_python(name: str) -> bool:
    """Whether the variable ``name`` takes effect when an interpreter starts (PYTHONPATH aside)."""
    return name != SEARCH_PATH and (name.startswith(STARTUP_PREFIXES) or name in STARTUP_NAMES)


def added_search_path(started: str, wanted: str) -> list[str] | None:
    """The entries ``wanted`` puts in front of ``started``'s; None unless that is all it adds, as absolute paths."""
    before = started.split(os.pathsep) if started else []
    after = wanted.split(os.pathsep) if wanted else []
    count = len(after) - len(before)
    if count < 0 or after[count:] != before:
        return None
    added = after[:count]
    if not all(os.path.isabs(entry) for entry in added):  # a relative entry (or '') would mean another folder
        return None
    return [os.path.abspath(entry) for entry in added]


def run(command: Sequence[str], env: Mapping[str, str], added_path: Sequence[str]) -> None:
    """Run ``command[1]`` as ``__main__`` in this process, as the interpreter runs a script given by path.

    The process ends here; while other threads still run, SystemExit (or the KeyboardInterrupt) leaves for the
    interpreter's own end instead.
    """
    path = os.path.abspath(command[1])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the handling a new interpreter sets up
    for number in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(number, signal.SIG_IGN)
    for name, module in list(sys.modules.items()):
        if os.path.dirname(os.path.abspath(getattr(module, "__file__", None) or "/")) == HERE:
            del sys.modules[name]  # the launcher's modules, imported by name from this folder
    tz = os.environ.get("TZ")
    os.environ.clear()
    os.environ.update(env)
    if env.get("TZ") != tz and "time" in sys.modules:
        sys.modules["time"].tzset()
    sys.argv = list(command[1:])
    sys.orig_argv = list(command)
    sys.path[:] = [os.path.dirname(os.path.realpath(path)), *deduplicated([*added_path, *sys.path[1:]])]
    show_command_line(command)
    main_module = ModuleType("__main__")
    namespace = main_module.__dict__
    namespace.update(__file__=path, __cached__=None, __annotations__={}, __builtins__=sys.modules["builtins"],
                     __loader__=sys.modules["_frozen_importlib_external"].SourceFileLoader("__main__", path))
    inherited = list(sys.modules)
    sys.modules["__main__"] = main_module
    exit_code = execute(path, namespace)
    finish(exit_code, namespace, inherited)


def execute(path: str, namespace: dict[str, object]) -> int | None:
    """Compile and run the script; its exit code as the interpreter makes it, None for a KeyboardInterrupt."""
    try:
        with open(path, "rb") as source:
            code = compile(source.read(), path, "exec", dont_inherit=True)
        exec(code, namespace)
    except SystemExit as exit:
        return exit_code_of(exit)
    except BaseException as error:  # noqa: BLE001 - shown as the interpreter shows what a script left unhandled
        traceback = error.__traceback__
        while traceback is not None and traceback.tb_frame.f_globals is not namespace:
            traceback = traceback.tb_next  # this module's frames are not the script's
        try:
            sys.excepthook(type(error), error.with_traceback(traceback), traceback)
        except BaseException:  # noqa: BLE001 - as the interpreter does when the hook itself fails
            sys.__excepthook__(type(error), error, traceback)
        return None if isinstance(error, KeyboardInterrupt) else 1
    return 0


def exit_code_of(exit: SystemExit) -> int:
    """The exit status ``sys.exit(code)`` gives a program (a code that is not a number is printed, status 1)."""
    if exit.code is None:
        return 0
    if isinstance(exit.code, int):
        return exit.code
    try:
        print(exit.code, file=sys.stderr)
    except Exception:  # noqa: BLE001 - nowhere to say it
        pass
    return 1


def finish(exit_code: int | None, namespace: dict[str, object], inherited: Sequence[str]) -> None:
    """End the process as the interpreter ends a program, without tearing down what it inherited.

    Finalizing the whole interpreter in a forked process writes to every page it shares with the launcher (tens
    of milliseconds' worth of copies). What a program's end does for its own objects is done here: threads are
    joined, atexit handlers run, the script's module and those it imported are cleared (their objects' ``__del__``
    and ``close`` run: unclosed files flush), the standard streams flush; then the process exits. While a daemon
    thread still runs (the interpreter would stop it first), the usual finalization is left to do it all.
    """
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()  # joins non-daemon threads, as finalization does first
        if threading.active_count() > 1:
            sys.excepthook = lambda *shown: None  # the script's error was shown already
            if exit_code is None:
                raise KeyboardInterrupt  # the interpreter then exits by SIGINT, after finalizing
            raise SystemExit(exit_code)
    atexit._run_exitfuncs()
    gc.collect()  # as finalization does: cycles go while every module is whole
    namespace.clear()
    kept = set(inherited)
    for name in reversed(list(sys.modules)):
        module = sys.modules[name] if name not in kept else None
        if module is not None:
            del sys.modules[name]
            if isinstance(module, ModuleType):  # some libraries put other objects in sys.modules: left alone
                clear_module(vars(module))
    gc.collect()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stream: nothing more can be written to it
            pass
    if exit_code is None:  # a KeyboardInterrupt ends a program by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        exit_code = 128 + signal.SIGINT  # only if the signal was blocked
    os._exit(exit_code & 0xFF)


def clear_module(names: dict[str, object]) -> None:
    """Set a module's globals to None as the interpreter's end does (``_name``s first, ``__builtins__`` kept).

    Code that still runs then (a ``__del__``, a weakref callback) finds None rather than no name, as it expects.
    """
    for private in (True, False):
        for name in list(names):
            if (name.startswith("_") and not name.startswith("__")) == private and name != "__builtins__":
                names[name] = None


def deduplicated(entries: Sequence[str]) -> list[str]:
    """``entries`` without repeats, the first kept (as ``site`` leaves sys.path)."""
    seen: set[str] = set()
    kept = []
    for entry in entries:
        key = os.path.normcase(os.path.abspath(entry)) if entry else entry
        if key not in seen:
            seen.add(key)
            kept.append(entry)
    return kept


def show_command_line(command: Sequence[str]) -> None:
    """Make ``/proc/self/cmdline`` (what ``ps`` and ``pgrep -f`` read) the script's command; best effort.

    The kernel shows the process's argument area: the command goes there, NUL-separated, when it fits; else it
    goes space-separated over the argument and environment areas (free once os.environ was replaced), as
    setproctitle does, and the kernel shows it as one string.
    """
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        arg_start, arg_end, env_start, env_end = (int(fields[index]) for index in (45, 46, 47, 48))
        separated = b"".join(part.encode(errors="surrogateescape") + b"\0" for part in command)
        if len(separated) <= arg_end - arg_start:
            area, text = arg_end - arg_start, separated
        else:
            area = (env_end if env_start == arg_end else arg_end) - arg_start
            text = b" ".join(part.encode(errors="surrogateescape") for part in command)[:area - 1] + b"\0"
        memory = os.open("/proc/self/mem", os.O_RDWR)
        try:
            os.pwrite(memory, text.ljust(area, b"\0"), arg_start)
        finally:
            os.close(memory)
    except (OSError, ValueError, IndexError):
        pass
