"""Finding a @step function from its reference, and unpickling values whose classes live in user files."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import io
import os
import pickle
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from forgeline.workflow.steps.function import SYNTHETIC_MODULE_PREFIX as FILE_MODULE_PREFIX


def file_module_name(path: str) -> str:
    """The stable, unique module name a user file is loaded under; it encodes the path so any process can load it."""
    return FILE_MODULE_PREFIX + os.fsencode(os.path.abspath(path)).hex()


def file_of_module(name: str) -> str | None:
    """The file path a `file_module_name` stands for, or None for any other module name."""
    if not name.startswith(FILE_MODULE_PREFIX):
        return None
    try:
        return os.fsdecode(bytes.fromhex(name[len(FILE_MODULE_PREFIX) :]))
    except ValueError:
        return None


def is_user_module(name: str, module: object) -> bool:
    """Whether a loaded module is the user's own code: loaded from outside the Python installation and forgeline
    (a namespace package: from its folders)."""
    if name.split(".", 1)[0] == "forgeline":
        return False
    file = getattr(module, "__file__", None)
    try:
        locations = [file] if file else [str(folder) for folder in getattr(module, "__path__", None) or ()]
    except Exception:  # an odd __path__ (a lazy module's): not the user's code as far as we can tell
        return False
    installation = tuple(os.path.join(prefix, "") for prefix in
                         {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix})
    return bool(locations) and not any(location.startswith(installation) for location in locations)


class FunctionLoader:
    """Loads @step functions by module or file, caching each file per modification time.

    A warm worker outlives edits to the user's code: `forget_changed_modules` drops every user module (one
    outside the Python installation) once any of their files changed, so the next call imports them afresh.
    """

    def __init__(self) -> None:
        self._files: dict[str, tuple[int, ModuleType]] = {}
        self._known_modules = set(sys.modules)
        self._user_modules: dict[str, tuple[str, int]] = {}
        self._installation = tuple(
            os.path.join(prefix, "") for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        )

    def load(self, name: str, *, file: str | None = None, module: str | None = None) -> Callable[..., Any]:
        """Return the plain function `name` (dotted for nested attributes), unwrapping a @step's `.func`."""
        if module is not None:
            owner = importlib.import_module(module)
        elif file is not None:
            owner = self.load_file(file)
        else:
            raise ValueError(f"function '{name}' has neither a module nor a file to load it from")
        found: Any = owner
        for part in name.split("."):
            try:
                found = getattr(found, part)
            except AttributeError:
                where = module if module is not None else file
                raise AttributeError(f"{where} has no attribute '{name}'") from None
        inner = getattr(found, "func", None)
        if callable(inner) and not isinstance(found, functools.partial):
            found = inner
        if not callable(found):
            raise TypeError(f"'{name}' is a {type(found).__name__}, not a function")
        function: Callable[..., Any] = found
        return function

    def load_file(self, path: str) -> ModuleType:
        """Import a Python file under its stable module name, again only when it changed since last time."""
        path = os.path.abspath(path)
        mtime = os.stat(path).st_mtime_ns
        cached = self._files.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        name = file_module_name(path)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        previous = sys.modules.get(name)
        # Registered before executing, as a normal import does: dataclasses and pickle look it up.
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
            raise
        self._files[path] = (mtime, module)
        return module

    def note_new_modules(self) -> None:
        """Remember the user modules imported since the last note, with the modification times of their files."""
        new = sys.modules.keys() - self._known_modules
        self._known_modules.update(new)
        for name in new:
            file = getattr(sys.modules.get(name), "__file__", None)
            if not file or name.split(".", 1)[0] == "forgeline" or file.startswith(self._installation):
                continue
            mtime = _mtime(file)
            if mtime is not None:
                self._user_modules[name] = (file, mtime)

    def forget_changed_modules(self) -> bool:
        """Drop all user modules if the file of any of them changed; True when they were dropped."""
        if all(_mtime(file) == mtime for file, mtime in self._user_modules.values()):
            return False
        for name in self._user_modules:
            sys.modules.pop(name, None)
        self._known_modules.difference_update(self._user_modules)
        self._user_modules.clear()
        self._files.clear()
        importlib.invalidate_caches()
        return True

    def loads(self, data: bytes) -> Any:
        """Unpickle a value, loading on demand the user files its classes and functions were defined in."""
        return _FileAwareUnpickler(io.BytesIO(data), self).load()


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


class _FileAwareUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, loader: FunctionLoader) -> None:
        super().__init__(file)
        self._loader = loader

    def find_class(self, module: str, name: str) -> Any:
        path = file_of_module(module)
        if path is not None and module not in sys.modules:
            self._loader.load_file(path)
        return super().find_class(module, name)
