"""Fingerprints of code: a script, a source folder or a @step function, plus the local modules they import.

Imports are followed statically (``ast``): a module found in the project counts by content, an installed
package by distribution name and version, the standard library not at all. No user code is executed.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from forgeline.engine.distributions import packages_distributions
from forgeline.engine.fingerprint import combine, hash_bytes, hash_local_file
from forgeline.jobs.code_folder import CodeFolderRules, list_code_folder


@dataclass(frozen=True)
class CodeFingerprint:
    """What a step's code is made of: local files by digest and installed packages by version."""

    files: dict[str, str] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """One digest for all of it."""
        parts = {f"file:{k}": v for k, v in self.files.items()}
        parts.update({f"package:{k}": v for k, v in self.packages.items()})
        return combine(parts)


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()  # scanned once per process: only when a step's code imports a package


@lru_cache(maxsize=512)
def package_version(top_level: str) -> str | None:
    """``dist==version`` for an installed top-level module, or None when it is not installed."""
    dists = _distributions().get(top_level)
    if not dists:
        return None
    name = dists[0]
    import importlib.metadata

    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1024)
def _parse(path: str, mtime_ns: int) -> ast.Module:
    with open(path, "rb") as handle:
        return ast.parse(handle.read(), filename=path)


def parse_file(path: str) -> ast.Module | None:
    """The AST of a Python file (cached by modification time), or None when it does not parse."""
    try:
        return _parse(path, os.stat(path).st_mtime_ns)
    except (SyntaxError, ValueError, OSError):
        return None


_IMPORT_LINE = re.compile(
    r"^[ \t]*(?:from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)|import[ \t]+([^\n#;]+))", re.M)


def scanned_imports(path: str) -> tuple[tuple[str, int, str], ...]:
    """The imports of a Python file found line by line without parsing it: every one ``file_imports`` finds,
    and perhaps more (an import written in a string). Read again only when the file changed."""
    try:
        return _scanned_imports(path, os.stat(path).st_mtime_ns)
    except OSError:
        return ()


@lru_cache(maxsize=1024)
def _scanned_imports(path: str, mtime_ns: int) -> tuple[tuple[str, int, str], ...]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    here = os.path.dirname(path)
    found: list[tuple[str, int, str]] = []
    for match in _IMPORT_LINE.finditer(text):
        dots, base, names, plain = match.groups()
        if plain is not None:  # import a.b as c, d
            found.extend((part.split()[0], 0, here) for part in plain.split(",") if part.strip())
            continue
        found.append((base, len(dots), here))
        for part in names.strip().strip("()").split(","):
            name = part.split()[0] if part.split() else ""
            if name and name != "*":
                found.append((f"{base}.{name}" if base else name, len(dots), here))
    return tuple(found)


def file_imports(path: str) -> tuple[tuple[str, int, str], ...]:
    """Every import of a Python file (see imported_modules), read again only when the file changed."""
    try:
        return _file_imports(path, os.stat(path).st_mtime_ns)
    except OSError:
        return ()


@lru_cache(maxsize=1024)
def _file_imports(path: str, mtime_ns: int) -> tuple[tuple[str, int, str], ...]:
    tree = parse_file(path)
    return () if tree is None else tuple(imported_modules(tree, os.path.dirname(path)))


def imported_modules(tree: ast.AST, package_dir: str) -> list[tuple[str, int, str]]:
    """``(module, level, base_dir)`` for every import; ``from a import b`` also yields ``a.b``."""
    found: list[tuple[str, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0, package_dir) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            found.append((base, node.level, package_dir))
            found.extend((f"{base}.{a.name}" if base else a.name, node.level, package_dir) for a in node.names)
    return found


class CodeScanner:
    """Follows imports from entry files through the project's roots, collecting the code closure."""

    def __init__(self, roots: Sequence[str], project_only: bool = False) -> None:
        self.roots = [os.path.abspath(r) for r in roots if r]
        # project files only, imports read by a line scan (a superset of the parsed ones, without parsing and
        # without looking package versions up): what a code snapshot needs, at a fraction of the cost
        self.project_only = project_only
        self._listings: dict[str, frozenset[str]] = {}
        self.files: dict[str, str] = {}
        self.packages: dict[str, str] = {}

    def result(self, base: str) -> CodeFingerprint:
        """The closure found so far, with file names relative to ``base`` where possible."""
        files = {}
        for path, digest in self.files.items():
            rel = os.path.relpath(path, base)
            files[path if rel.startswith("..") else rel] = digest
        return CodeFingerprint(files=files, packages=dict(self.packages))

    def add_file(self, path: str) -> None:
        """Count a Python file and follow its imports."""
        path = os.path.abspath(path)
        if path in self.files or not os.path.isfile(path):
            return
        self.files[path] = "" if self.project_only else hash_local_file(path)
        self.follow(scanned_imports(path) if self.project_only else file_imports(path), os.path.dirname(path))

    def follow(self, modules: Iterable[tuple[str, int, str]], own_dir: str) -> None:
        """Resolve each import to project files or an installed package."""
        for module, level, package_dir in modules:
            if level:
                base = Path(package_dir)
                for _ in range(level - 1):
                    base = base.parent
                for path in self.module_files(module, [str(base)]):
                    self.add_file(path)
                continue
            if not module:
                continue
            top = module.split(".")[0]
            searched = [own_dir, *self.roots]
            local = self.module_files(module, searched) if self._in_some(top, searched) else []
            if local:
                for path in local:
                    self.add_file(path)
                continue
            if self.project_only or top in sys.stdlib_module_names or top in sys.builtin_module_names:
                continue
            version = package_version(top)
            if version:
                self.packages[top] = version

    def _in_some(self, top: str, roots: Sequence[str]) -> bool:
        """Whether a module or package ``top`` may be in one of these folders (each listed once per scan)."""
        for root in roots:
            names = self._listings.get(root)
            if names is None:
                try:
                    names = self._listings[root] = frozenset(os.listdir(root))
                except OSError:
                    names = self._listings[root] = frozenset()
            if top in names or f"{top}.py" in names:
                return True
        return False

    @staticmethod
    def module_files(module: str, roots: Sequence[str]) -> list[str]:
        """Project files that make up ``a.b.c`` (each package's ``__init__`` and the module), first root wins."""
        parts = module.split(".") if module else []
        for root in roots:
            found: list[str] = []
            current = Path(root)
            for i, part in enumerate(parts):
                package = current / part / "__init__.py"
                single = current / f"{part}.py"
                if package.is_file():
                    found.append(str(package))
                    current = current / part
                elif single.is_file() and i == len(parts) - 1:
                    found.append(str(single))
                    break
                elif (current / part).is_dir() and i < len(parts) - 1:
                    current = current / part  # namespace package
                else:
                    break
            if found:
                return found
        return []


def fingerprint_script(script: str, roots: Sequence[str], base: str) -> CodeFingerprint:
    """A script and the local modules it imports (searched next to it, then in ``roots``)."""
    scanner = CodeScanner([os.path.dirname(os.path.abspath(script)), *roots])
    scanner.add_file(script)
    return scanner.result(base)


def fingerprint_folder(folder: str, roots: Sequence[str], base: str,
                       rules: CodeFolderRules | None = None) -> CodeFingerprint:
    """Every file a source folder contributes (what a job copies of it), plus what its Python files import."""
    scanner = CodeScanner([folder, *roots])
    for file in list_code_folder(folder, rules or CodeFolderRules()):
        if file.relative.endswith(".py"):
            scanner.add_file(file.path)
        else:
            scanner.files[os.path.abspath(file.path)] = hash_local_file(file.path)
    return scanner.result(base)


def fingerprint_function(file: str, name: str, roots: Sequence[str], base: str) -> CodeFingerprint:
    """A module-level function's own source, the module-level names it uses, and the imports they need."""
    scanner = CodeScanner([os.path.dirname(os.path.abspath(file)), *roots])
    tree = parse_file(file)
    if tree is None:
        scanner.add_file(file)
        return scanner.result(base)
    with open(file, encoding="utf-8", errors="replace") as handle:
        source = handle.read()
    definitions: dict[str, ast.stmt] = {}
    for node in tree.body:
        for defined in _defined_names(node):
            definitions[defined] = node
    pending, seen = [name], set()
    pieces: dict[str, str] = {}
    while pending:
        current = pending.pop()
        found = definitions.get(current)
        if found is None or id(found) in seen:
            continue
        node = found
        seen.add(id(node))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            scanner.follow(imported_modules(node, os.path.dirname(os.path.abspath(file))),
                           os.path.dirname(os.path.abspath(file)))
            continue
        # the whole definition from `def`/`class` on: signature and defaults change results as much as the
        # body does (decorators are not part of it: the @step options live in the step's definition)
        segment = ast.get_source_segment(source, node) or ""
        pieces[f"source:{current}"] = hash_bytes(segment.encode())
        pending.extend(sorted(free_names(node) - {current}))
        # imports inside the definition (a function body's lazy imports) bring code just as module-level ones
        here = os.path.dirname(os.path.abspath(file))
        scanner.follow(imported_modules(node, here), here)
    fingerprint = scanner.result(base)
    rel = os.path.relpath(os.path.abspath(file), base)
    fingerprint.files.update({f"{rel}::{k}": v for k, v in pieces.items()})
    return fingerprint


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return []


def free_names(node: ast.stmt) -> set[str]:
    """Names a definition reads that it does not bind itself (its parameters and locals are excluded)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        scope: list[ast.AST] = [*node.body, *node.args.defaults,
                                *(d for d in node.args.kw_defaults if d is not None)]
        args = node.args
        bound = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
        bound |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    elif isinstance(node, ast.ClassDef):
        scope, bound = [*node.body, *node.bases], set()
    else:
        scope, bound = [node], set()
    read: set[str] = set()
    for part in scope:
        for n in ast.walk(part):
            if not isinstance(n, ast.Name):
                continue
            if isinstance(n.ctx, ast.Store) and not isinstance(node, ast.Assign):
                bound.add(n.id)
            else:
                read.add(n.id)
    return read - bound
