"""A job's process tree: every process descending from its supervisor, read from ``/proc``, and ending it.

Standard library only: the job supervisor and its launcher (``supervisor.py``, ``supervisor_launcher.py``, run
by path under ``python -S``) import this file as their sibling, and JobControl imports it as
``forgeline.jobs.process_tree``. A child that called
``setsid`` leaves its parent's process group, so signalling the group misses it; it stays in this tree, because
the supervisor is a child subreaper: orphans anywhere below it are re-parented to it, not to init.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

PR_SET_CHILD_SUBREAPER = 36
KILL_ROUNDS = 100
"""SIGKILL rounds before giving up on a process that will not die (one stuck in the kernel)."""
SHARED_SERVER_ARGUMENT = b"--forgeline-shared-server"
"""On the command line of a server that serves every job of its user (the warm transform server): it and the
processes under it belong to no one job, so ending a job's tree leaves them alone (each job's share of them ends
when that job's connection to it closes)."""


_prctl: list[Callable[..., int] | None] = []  # resolved once: a forked child must not load libraries


def prctl_function() -> Callable[..., int] | None:
    """The C library's ``prctl``, loaded on first use (call it before forking), or None on other systems."""
    if not _prctl:
        try:
            import ctypes

            _prctl.append(ctypes.CDLL(None, use_errno=True).prctl)
        except (OSError, AttributeError):
            _prctl.append(None)
    return _prctl[0]


def prctl(option: int, argument: int) -> bool:
    """Call Linux's ``prctl(option, argument)``; False where that is not possible (another system)."""
    function = prctl_function()
    return function is not None and int(function(option, argument, 0, 0, 0)) == 0


def become_subreaper() -> bool:
    """Make this process the parent of every orphan below it (Linux); False where that is not possible."""
    return prctl(PR_SET_CHILD_SUBREAPER, 1)


def _parents() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) of every process this user can see."""
    found: dict[int, tuple[int, str]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode("ascii", "replace")
        except OSError:  # gone meanwhile
            continue
        fields = stat.rpartition(")")[2].split()  # the command name may hold spaces and parentheses
        if len(fields) >= 2:
            found[int(entry)] = (int(fields[1]), fields[0])
    return found


def descendants(pid: int) -> list[int]:
    """Live processes below ``pid`` (children first), zombies and shared servers (with what is under them) left out."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in parents.items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    pending = list(children.get(pid, []))
    while pending:
        current = pending.pop(0)
        if _shared_server(current):
            continue
        if parents.get(current, (0, "Z"))[1] != "Z":
            found.append(current)
        pending.extend(children.get(current, []))
    return found


def _shared_server(pid: int) -> bool:
    """Whether ``pid`` is a server shared by every job (see :data:`SHARED_SERVER_ARGUMENT`)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return SHARED_SERVER_ARGUMENT in handle.read().split(b"\0")
    except OSError:
        return False


def outside_own_group(pids: list[int]) -> list[int]:
    """Those of ``pids`` that left this process's group (``setsid``, ``setpgid``): a group signal misses them."""
    own = os.getpgid(0)
    outside = []
    for pid in pids:
        try:
            if os.getpgid(pid) != own:
                outside.append(pid)
        except ProcessLookupError:
            continue
    return outside


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    """Send ``sig`` to each process, ignoring those already gone."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def reap_children() -> None:
    """Collect the exit status of every ended child (orphans re-parented to a subreaper become its children)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def has_children() -> bool:
    """Whether this process has a child, running or ended and not yet collected (one system call, collects none).

    Without one, nothing descends from it: a process whose parent ended was re-parented, to this process if it
    is a subreaper, else out of its tree. So this spares reading all of ``/proc`` when the script left nothing.
    """
    if not hasattr(os, "waitid"):  # cannot tell: look in /proc
        return True
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def end_descendants(grace_seconds: float, poll_seconds: float = 0.05) -> list[int]:
    """End every process below this one: SIGTERM, then SIGKILL after ``grace_seconds``; return who was there."""
    if not has_children():
        return []
    me = os.getpid()
    leftovers = descendants(me)
    if not leftovers:
        return []
    signal_all(leftovers, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while True:
        reap_children()
        remaining = descendants(me)
        if not remaining:
            return leftovers
        if time.monotonic() >= deadline:
            break
        time.sleep(poll_seconds)
    for _ in range(KILL_ROUNDS):  # new ones may have been forked meanwhile: until none is left
        signal_all(remaining, signal.SIGKILL)
        time.sleep(poll_seconds)
        reap_children()
        remaining = descendants(me)
        if not remaining:
            break
    return leftovers
