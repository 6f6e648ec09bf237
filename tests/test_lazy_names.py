"""Packages that import their public names on first use: every name resolves, and importing the package is free."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

PACKAGES = ["forgeline.workflow", "forgeline.workflow.steps", "forgeline.jobs", "forgeline.executors"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves_to_its_defining_module_s_object(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        assert getattr(importlib.import_module(value.__module__), name) is value
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("package", PACKAGES)
def test_an_unknown_name_is_an_attribute_error_naming_the_package(package):
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018
    with pytest.raises(ImportError):
        exec(f"from {package} import nothing_here")


def test_importing_the_packages_imports_none_of_their_modules():
    code = (f"import sys, json; import {', '.join(PACKAGES)}; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('forgeline'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert loaded == sorted(["forgeline", "forgeline.lazy_names", *PACKAGES])


def test_the_job_kind_to_runner_mapping_is_one_function_of_the_jobs_package():
    from forgeline.jobs import JobKind, runner_for

    for kind in JobKind:
        assert callable(runner_for(kind).run)


def test_a_step_pipeline_imports_no_other_step_kind_and_a_definition_of_any_kind_still_rebuilds(tmp_path):
    from forgeline.workflow import ProcessingStep

    processing = ProcessingStep(name="Prepare", code="prepare.py").to_request()
    (tmp_path / "pipeline.py").write_text(f"""
import json, sys
from forgeline.workflow import Pipeline, step

def add(x):
    return x + 1

pipeline = Pipeline(name="p", steps=[step(name="Add")(add)(1)])
before = sorted(m for m in sys.modules if m.startswith("forgeline.workflow.steps."))
from forgeline.workflow.steps.base import Step
rebuilt = Step.from_request(json.loads({json.dumps(json.dumps(processing))}))
print(json.dumps({{"before": before, "rebuilt": type(rebuilt).__name__, "name": rebuilt.name}}))
""")
    done = subprocess.run([sys.executable, "pipeline.py"], cwd=tmp_path, capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    kinds = ["base", "condition", "foreach", "function", "resources"]  # the DSL's own, and the @step kind
    assert found["before"] == [f"forgeline.workflow.steps.{module}" for module in kinds]
    assert (found["rebuilt"], found["name"]) == ("ProcessingStep", "Prepare")
