"""The DSL's public names: each one importable from ``forgeline.workflow``, each module importable on its own."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import forgeline.workflow as workflow


def test_every_public_name_is_the_object_its_module_defines():
    assert set(workflow._DEFINED_IN) == set(workflow.__all__)
    for name in workflow.__all__:
        module = importlib.import_module(f"forgeline.workflow.{workflow._DEFINED_IN[name]}")
        assert getattr(workflow, name) is getattr(module, name), name


def test_star_import_and_dir_list_every_name():
    namespace: dict[str, object] = {}
    exec("from forgeline.workflow import *", namespace)

    assert set(workflow.__all__) <= set(namespace)
    assert set(workflow.__all__) <= set(dir(workflow))


def test_an_unknown_name_is_an_attribute_error():
    try:
        workflow.NoSuchStep  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchStep" in str(exc)
    else:
        raise AssertionError("forgeline.workflow.NoSuchStep resolved")


def test_reading_one_module_does_not_import_the_whole_dsl():
    probe = ("import json, sys\nimport forgeline.workflow.models\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith('forgeline.workflow'))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)

    imported = json.loads(done.stdout)
    assert "forgeline.workflow.models" in imported
    assert "forgeline.workflow.pipeline" not in imported and "forgeline.workflow.steps" not in imported
