"""Fingerprints of code: a script, a source folder or a @step function, and the project modules they import.

Each test writes a tiny project into tmp_path, fingerprints it, edits one thing and checks whether the
fingerprint moved: helper modules the code imports count, code it does not use does not, installed packages
count by name and version, the standard library not at all.
"""

from __future__ import annotations

import importlib.metadata
import os
import textwrap
import time
from pathlib import Path

from forgeline.engine.code_fingerprint import (
    file_imports,
    fingerprint_folder,
    fingerprint_function,
    fingerprint_script,
    package_version,
    scanned_imports,
)


class Tree:
    """A project folder whose files can be written and edited with a fresh mtime each time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tick = time.time_ns() - 10**12

    def write(self, relative: str, text: str) -> str:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        self.tick += 10**6  # every edit gets its own mtime, whatever the clock's resolution
        os.utime(path, ns=(self.tick, self.tick))
        return str(path)

    def edit(self, relative: str, old: str, new: str) -> None:
        text = (self.root / relative).read_text()
        assert old in text, f"{old!r} not in {relative}"
        self.write(relative, text.replace(old, new, 1))

    def script(self, relative: str):
        return fingerprint_script(str(self.root / relative), [], str(self.root))

    def function(self, relative: str, name: str):
        return fingerprint_function(str(self.root / relative), name, [str(self.root)], str(self.root))

    def folder(self, relative: str):
        return fingerprint_folder(str(self.root / relative), [str(self.root)], str(self.root))


def make_tree(tmp_path: Path) -> Tree:
    tree = Tree(tmp_path)
    tree.write("helpers.py", """
        def double(x):
            return 2 * x
    """)
    tree.write("lib/__init__.py", "")
    tree.write("lib/text.py", """
        from .util import clean

        def shout(s):
            return clean(s).upper()
    """)
    tree.write("lib/util.py", """
        def clean(s):
            return s.strip()
    """)
    tree.write("unrelated.py", "X = 1\n")
    tree.write("prepare.py", """
        import json
        import os.path
        import blake3
        import helpers
        from lib.text import shout

        print(shout(str(helpers.double(21))), json.dumps(1), os.path.sep, blake3.__name__)
    """)
    return tree


def test_a_script_counts_with_the_project_modules_it_imports(tmp_path):
    tree = make_tree(tmp_path)
    files = tree.script("prepare.py").files
    assert set(files) == {"prepare.py", "helpers.py", "lib/__init__.py", "lib/text.py", "lib/util.py"}


def test_an_imported_helper_changing_changes_the_fingerprint(tmp_path):
    tree = make_tree(tmp_path)
    before = tree.script("prepare.py")
    tree.edit("lib/util.py", "s.strip()", "s.strip(' ')")  # reached only through a relative import
    after = tree.script("prepare.py")
    assert after.digest != before.digest
    assert [f for f in after.files if after.files[f] != before.files[f]] == ["lib/util.py"]


def test_one_character_of_the_script_changes_the_fingerprint(tmp_path):
    tree = make_tree(tmp_path)
    before = tree.script("prepare.py").digest
    tree.edit("prepare.py", "double(21)", "double(22)")
    assert tree.script("prepare.py").digest != before


def test_files_the_script_does_not_import_do_not_count(tmp_path):
    tree = make_tree(tmp_path)
    before = tree.script("prepare.py").digest
    tree.edit("unrelated.py", "X = 1", "X = 2")
    tree.write("notes.txt", "anything")
    assert tree.script("prepare.py").digest == before


def test_installed_packages_count_by_name_and_version_and_the_standard_library_not_at_all(tmp_path):
    tree = make_tree(tmp_path)
    packages = tree.script("prepare.py").packages
    assert packages == {"blake3": f"blake3=={importlib.metadata.version('blake3')}"}
    assert package_version("json") is None


def test_a_local_module_shadows_an_installed_package_of_the_same_name(tmp_path):
    tree = Tree(tmp_path)
    tree.write("blake3.py", "VALUE = 1\n")
    tree.write("main.py", "import blake3\n")
    fingerprint = tree.script("main.py")
    assert set(fingerprint.files) == {"main.py", "blake3.py"}
    assert fingerprint.packages == {}


def test_a_script_that_does_not_parse_still_counts_by_content(tmp_path):
    tree = Tree(tmp_path)
    tree.write("broken.py", "def oops(:\n")
    before = tree.script("broken.py")
    assert set(before.files) == {"broken.py"}
    tree.write("broken.py", "def oops(:\n    pass\n")
    assert tree.script("broken.py").digest != before.digest


def test_a_source_folder_counts_every_file_it_holds(tmp_path):
    tree = make_tree(tmp_path)
    tree.write("src/job/main.py", "import conf_reader\n")
    tree.write("src/job/conf_reader.py", "import helpers\n")  # found in the project root
    tree.write("src/job/config.yaml", "alpha: 1\n")
    tree.write("src/job/data/lookup.csv", "a,b\n")
    tree.write("src/job/__pycache__/main.cpython-311.pyc", "compiled")
    before = tree.folder("src/job")
    assert set(before.files) == {"src/job/main.py", "src/job/conf_reader.py", "src/job/config.yaml",
                                 "src/job/data/lookup.csv", "helpers.py"}

    tree.edit("src/job/config.yaml", "alpha: 1", "alpha: 2")  # not Python, still code
    after_config = tree.folder("src/job")
    assert after_config.digest != before.digest

    tree.write("src/job/__pycache__/main.cpython-311.pyc", "recompiled")
    assert tree.folder("src/job").digest == after_config.digest


FUNCTIONS = """
    import json
    from helpers import double

    RATE = 3
    UNUSED = 5


    def unrelated():
        return UNUSED


    def scaled(values, factor=2):
        # a comment inside the function counts as its source
        return [double(v) * factor * RATE for v in values]


    class Shape:
        sides = 4


    def describe():
        return Shape().sides
"""


def test_a_function_counts_its_own_source_and_the_module_names_it_uses(tmp_path):
    tree = make_tree(tmp_path)
    tree.write("steps.py", FUNCTIONS)
    files = tree.function("steps.py", "scaled").files
    assert set(files) == {"helpers.py", "steps.py::source:scaled", "steps.py::source:RATE"}


def test_a_function_fingerprint_moves_with_what_it_uses_and_nothing_else(tmp_path):
    tree = make_tree(tmp_path)
    tree.write("steps.py", FUNCTIONS)
    base = tree.function("steps.py", "scaled").digest

    tree.edit("steps.py", "return UNUSED", "return UNUSED + 1")  # another function of the same file
    tree.edit("steps.py", "UNUSED = 5", "UNUSED = 6")
    tree.edit("steps.py", "import json\n", "import json\n\n\n# a new comment between definitions\n")
    assert tree.function("steps.py", "scaled").digest == base

    tree.edit("steps.py", "RATE = 3", "RATE = 4")  # a module constant it reads
    rate = tree.function("steps.py", "scaled").digest
    assert rate != base

    tree.edit("helpers.py", "2 * x", "x + x")  # a project module it imports from
    helper = tree.function("steps.py", "scaled").digest
    assert helper not in (base, rate)

    tree.edit("steps.py", "# a comment inside", "# one comment inside")
    assert tree.function("steps.py", "scaled").digest not in (base, rate, helper)


def test_a_default_argument_value_is_part_of_a_function(tmp_path):
    tree = make_tree(tmp_path)
    tree.write("steps.py", FUNCTIONS)
    before = tree.function("steps.py", "scaled").digest
    tree.edit("steps.py", "factor=2", "factor=3")  # the body is the same, the result is not
    assert tree.function("steps.py", "scaled").digest != before


def test_a_class_a_function_uses_counts(tmp_path):
    tree = make_tree(tmp_path)
    tree.write("steps.py", FUNCTIONS)
    before = tree.function("steps.py", "describe").digest
    tree.edit("steps.py", "sides = 4", "sides = 5")
    assert tree.function("steps.py", "describe").digest != before


def test_a_module_imported_inside_the_function_body_counts(tmp_path):
    tree = make_tree(tmp_path)
    tree.write("lazy.py", """
        def train(n):
            import helpers  # heavy or optional imports often live inside a @step function
            from lib.text import shout

            return shout(str(helpers.double(n)))
    """)
    before = tree.function("lazy.py", "train")
    assert {"helpers.py", "lib/text.py", "lib/util.py"} <= set(before.files)
    tree.edit("helpers.py", "2 * x", "3 * x")
    assert tree.function("lazy.py", "train").digest != before.digest


def test_the_line_scan_of_imports_finds_every_import_the_parser_finds(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os, json as j\nfrom . import sibling\nfrom ..pkg.mod import (\n    a,\n    b as c,\n)\n"
                      "def f():\n    from lazy import thing  # a function's own import\n")
    assert set(file_imports(str(sample))) <= set(scanned_imports(str(sample)))
    assert ("pkg.mod.b", 2, str(tmp_path)) in scanned_imports(str(sample))
    sources = sorted(Path(__file__).resolve().parents[2].joinpath("src", "forgeline").rglob("*.py"))
    assert len(sources) > 100
    for source in sources:
        assert set(file_imports(str(source))) <= set(scanned_imports(str(source))), source
