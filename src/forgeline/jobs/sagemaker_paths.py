"""SageMaker's ``/opt/ml`` paths for one job: its command runs in a private mount namespace where ``/opt/ml``
is the job directory, so scripts that hard-code ``/opt/ml/processing/input`` or ``/opt/ml/model`` run unchanged.

The namespace is an unprivileged user + mount namespace (``unshare --user --map-root-user --mount``); the bind
mount is visible to the job and its children only. When ``/opt/ml`` does not exist and cannot be created, a
tmpfs over ``/opt`` that carries every existing entry of ``/opt`` gives it a mount point.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from forgeline.errors import JobError

OPT_ML = "/opt/ml"

_SETUP = r"""
set -e
job="$1"; shift
if [ ! -d /opt/ml ] && ! mkdir -p /opt/ml 2>/dev/null; then
  kept=$(mktemp -d)
  mount --rbind /opt "$kept"
  mount -t tmpfs forgeline-opt /opt
  for entry in "$kept"/* "$kept"/.[!.]*; do
    [ -e "$entry" ] || continue
    name=${entry##*/}
    if [ -d "$entry" ]; then mkdir "/opt/$name"; else : > "/opt/$name"; fi
    mount --rbind "$entry" "/opt/$name"
  done
  mkdir /opt/ml
fi
mount --bind "$job" /opt/ml
exec "$@"
"""


def namespace_command() -> list[str]:
    """The command prefix that enters a fresh user + mount namespace as its root."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise JobError(_unavailable("the unshare command is not installed (util-linux)"))
    return [unshare, "--user", "--map-root-user", "--mount"]


@functools.lru_cache(maxsize=1)
def _probe() -> str | None:
    """Why a mount namespace cannot be entered here, or None when it can (asked once per process)."""
    try:
        prefix = namespace_command()
    except JobError as exc:
        return str(exc)
    done = subprocess.run([*prefix, "true"], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          check=False)
    if done.returncode != 0:
        return _unavailable(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                            f"exit code {done.returncode}")
    return None


def _unavailable(reason: str) -> str:
    return (f"this step runs its code at SageMaker's {OPT_ML} paths, which needs a private mount namespace "
            f"(unshare --user --map-root-user --mount), and this machine does not allow one: {reason}; "
            "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) or run it elsewhere")


def check_mount_namespace() -> None:
    """Refuse, in one line, when this machine cannot give a job its own ``/opt/ml``."""
    problem = _probe()
    if problem is not None:
        raise JobError(problem)


def at_opt_ml(command: Sequence[str], job_dir: Path) -> list[str]:
    """``command`` wrapped to run with the job directory mounted at ``/opt/ml``."""
    check_mount_namespace()
    return [*namespace_command(), "/bin/sh", "-c", _SETUP, "forgeline-opt-ml", str(job_dir), *command]
