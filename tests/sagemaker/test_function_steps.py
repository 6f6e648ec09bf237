"""The SDK's @step functions in a definition: mapped to function steps that call the stored function (its
location under the S3 mapping, its references as forgeline expressions, another @step's return for its
DelayedReturn), reported by the check, refused when they need what has no local counterpart."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.sagemaker.expressions import Translator
from forgeline.sagemaker.function_steps import RUNNER
from forgeline.sagemaker.importer import check_definition, import_definition
from forgeline.sagemaker.s3 import S3Map
from forgeline.workflow.expressions import Property

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def functions_project(tmp_path_factory) -> Path:
    """The SDK's definition of two chained @step functions and a condition, and its bucket in ./data."""
    project = tmp_path_factory.mktemp("sdk") / "functions"
    shutil.copytree(HERE / "projects" / "functions", project)
    done = subprocess.run([sys.executable, str(HERE / "make_definitions.py"), "functions", str(project)],
                          capture_output=True, text=True, timeout=240)
    if done.returncode != 0 and "No module named 'sagemaker" in done.stderr:
        pytest.skip("the SageMaker SDK is not installed")
    assert done.returncode == 0, done.stderr[-3000:]
    return project


def container_arguments(doc: dict, step: str) -> list:
    return next(s for s in doc["Steps"] if s["Name"] == step)["Arguments"]["AlgorithmSpecification"][
        "ContainerArguments"]


def test_a_json_get_of_a_step_result_reads_its_return_value():
    uri = {"Std:Join": {"On": "/", "Values": [{"Get": "Steps.Fit.OutputDataConfig.S3OutputPath"}, "results.json"]}}
    translate = Translator(S3Map()).json
    assert translate({"Std:JsonGet": {"S3Uri": uri, "Path": "Result['rows'][0]"}}) == {
        "Get": "Steps.Fit.return['rows'][0]"}
    assert translate({"Std:JsonGet": {"S3Uri": uri, "Path": "Result"}}) == {"Get": "Steps.Fit.return"}
    with pytest.raises(PipelineDefinitionError, match="s3://my-bucket/report.json"):
        translate({"Std:JsonGet": {"S3Uri": "s3://my-bucket/report.json", "Path": "a.b"}})


def test_step_functions_become_function_steps_that_call_the_stored_function(functions_project):
    doc = json.loads((functions_project / "definition.json").read_text())
    data = functions_project / "data"
    pipeline = import_definition(doc, code_root=str(functions_project), s3_map={"s3://my-bucket": str(data)})
    make, fit = pipeline.step("MakePoints"), pipeline.step("FitLine")
    assert make.function == RUNNER and fit.function == RUNNER
    build_time = container_arguments(doc, "FitLine")[container_arguments(doc, "FitLine").index("--func_step_s3_dir") + 1]
    assert fit.kwargs["function_uri"] == str(data / "functions" / "FitLine" / build_time)
    assert (Path(fit.kwargs["function_uri"]) / "function" / "payload.pkl").is_file()
    assert fit.kwargs["references"]["Steps.MakePoints.OutputDataConfig.S3OutputPath"] == Property(
        "MakePoints", ("return",))
    assert fit.kwargs["code_root"] == str(functions_project) and fit.kwargs["results_json"] is True
    assert fit.instance_type == "ml.m5.large"
    assert "MakePoints" in fit.depends_on
    assert pipeline.step("SlopeGate").conditions[0].left == Property("FitLine", ("return", 0))


def test_the_check_names_what_a_step_function_needs_or_why_it_cannot_run(functions_project):
    doc = json.loads((functions_project / "definition.json").read_text())
    s3 = {"s3://my-bucket": str(functions_project / "data")}
    changed = copy.deepcopy(doc)
    fit = container_arguments(changed, "FitLine")
    fit[fit.index("--dependency_settings") + 1] = json.dumps({"dependency_file": "requirements.txt"})
    container_arguments(changed, "MakePoints").extend(["--run_in_context", "{}"])
    reports = {r.name: r for r in check_definition(changed, code_root=str(functions_project), s3_map=s3)}
    assert reports["FitLine"].maps and "install requirements.txt into this interpreter" in reports["FitLine"].detail
    assert not reports["MakePoints"].maps and reports["MakePoints"].kind == "Training"
    assert "Experiments run" in reports["MakePoints"].detail
    with pytest.raises(PipelineDefinitionError, match="'MakePoints' \\(Training\\): a @step function, but"):
        import_definition(changed, code_root=str(functions_project), s3_map=s3)
