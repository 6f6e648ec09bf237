"""A warm worker process for @step functions: `python -m forgeline.jobs.function_worker <request-fd> <reply-fd>`.

The worker reads call requests from a private pipe and answers on another (see `function_protocol`), so
that its own stdout and stderr (fds 1 and 2) can point at the running step's log file during each call,
which also catches the output of subprocesses the function starts. Imports stay light: the user's code
brings in whatever else it needs, once per worker.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from forgeline.jobs.function_loading import FunctionLoader
from forgeline.jobs.function_protocol import read_message, write_message

if TYPE_CHECKING:
    from forgeline.store.artifacts import ArtifactStore

RETURN_PROPERTY_LIMIT = 64 * 1024
"""A return value whose JSON is at least this many bytes is only stored, not copied into the properties."""

_NOT_JSON = object()
_JOB_FAILED = "JobFailed"
_INFRASTRUCTURE_ERROR = "InfrastructureError"


class FunctionCallServer:
    """Serves call requests one at a time until the request pipe closes."""

    def __init__(self, request_fd: int, reply_fd: int) -> None:
        self._request_fd = request_fd
        self._reply_fd = reply_fd
        self._loader = FunctionLoader()
        self._stores: dict[str, ArtifactStore] = {}
        self._stdout = os.dup(1)
        self._stderr = os.dup(2)

    def serve(self) -> None:
        """Answer requests until forgeline closes the pipe."""
        while (request := read_message(self._request_fd)) is not None:
            write_message(self._reply_fd, self.handle(request))

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one call with its output going to the step's log; never raises."""
        try:
            with self._output_to(request["log_path"]), _call_context(request):
                return self._call(request)
        except Exception as exc:  # the job directory or log file is unusable
            return {
                "ok": False,
                "failure_kind": _INFRASTRUCTURE_ERROR,
                "reason": f"{type(exc).__name__}: {exc}",
            }

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        name, file, module = request["function"]
        self._loader.forget_changed_modules()
        try:
            # user files load from the project folder (their top level may use project-relative paths);
            # the call itself runs in the job directory
            args, kwargs = self._loader.loads(request["arguments"])
            func = self._loader.load(name, file=file, module=module)
            os.chdir(request["job_dir"])
            value = func(*args, **kwargs)
        except (Exception, SystemExit) as exc:  # any error of user code fails the step
            return _failure(_JOB_FAILED, exc)
        finally:
            self._loader.note_new_modules()
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # pickling runs user code (__reduce__) too
            reply = _failure(_JOB_FAILED, exc)
            reply["reason"] += f" (the return value of '{name}' must be picklable)"
            return reply
        properties: dict[str, Any] = {}
        json_value = _as_json(value)
        if json_value is not _NOT_JSON:
            properties["Return"] = json_value
        return_uri = request["return_uri"]
        if return_uri is not None:
            try:
                self._store(request["artifact_root"], request.get("storage_options")).write_bytes(return_uri, data)
            except Exception as exc:  # any storage backend error
                return _failure(_INFRASTRUCTURE_ERROR, exc)
            properties["ReturnUri"] = return_uri
        return {"ok": True, "properties": properties}

    def _store(self, root: str, options: dict[str, dict[str, Any]] | None) -> ArtifactStore:
        store = self._stores.get(root)
        if store is None:
            from forgeline.store.artifacts import ArtifactStore  # heavy (fsspec): only once a value is stored

            store = self._stores[root] = ArtifactStore(root, options_by_protocol=options)
        return store

    @contextmanager
    def _output_to(self, log_path: str) -> Iterator[None]:
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _flush_std_streams()
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        try:
            yield
        finally:
            _flush_std_streams()
            os.dup2(self._stdout, 1)
            os.dup2(self._stderr, 2)


@contextmanager
def _call_context(request: dict[str, Any]) -> Iterator[None]:
    """Load user files from the code snapshot (laid out as the working folder was, so a pipeline file's own code
    paths are found), else from the working folder; with the code importable (the function's folder, the code
    snapshot, then the working folder) and the step's environment. The call itself then moves to the job
    directory. Everything is undone afterwards."""
    cwd = os.getcwd()
    saved_path = list(sys.path)
    saved_env = dict(os.environ)
    working = request["working_dir"] if request["working_dir"] and os.path.isdir(request["working_dir"]) else None
    os.chdir(request.get("code_root") or working or request["job_dir"])
    added = [_folder_of(request["function"][1]), request.get("code_root"), working]
    sys.path[:0] = [path for path in dict.fromkeys(added) if path and path not in sys.path]
    os.environ.update(request["env"])
    try:
        yield
    finally:
        # Whatever the function changed (env vars, sys.path) must not leak into the next step on this worker.
        if os.environ != saved_env:
            for key in os.environ.keys() - saved_env.keys():
                del os.environ[key]
            os.environ.update(saved_env)
        sys.path[:] = saved_path
        os.chdir(cwd)


def _folder_of(file: str | None) -> str | None:
    return os.path.dirname(os.path.abspath(file)) if file else None


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass


def _failure(kind: str, exc: BaseException) -> dict[str, Any]:
    import traceback  # only on failure: it pulls in linecache and tokenize

    traceback.print_exception(exc)  # into the step's log: stderr points there during the call
    return {"ok": False, "failure_kind": kind, "reason": f"{type(exc).__name__}: {exc}"}


def _as_json(value: Any) -> Any:
    """The value as plain JSON if it is JSON-serialisable and small, else _NOT_JSON."""
    import json

    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _NOT_JSON
    if len(text) >= RETURN_PROPERTY_LIMIT:
        return _NOT_JSON
    return json.loads(text)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process."""
    request_fd, reply_fd = (int(arg) for arg in (sys.argv[1:] if argv is None else argv))
    FunctionCallServer(request_fd, reply_fd).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
