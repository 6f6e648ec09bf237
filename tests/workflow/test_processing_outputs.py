"""ProcessingOutput(optional=True): kept by the definition JSON, and only a boolean is accepted."""

from __future__ import annotations

import json

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow import Pipeline, ProcessingOutput, ProcessingStep


def pipeline_with(*outputs: ProcessingOutput) -> Pipeline:
    return Pipeline(name="outputs", steps=[ProcessingStep(name="Prep", code="prep.py", outputs=list(outputs))])


@pytest.fixture(autouse=True)
def in_a_project(tmp_path, monkeypatch):
    (tmp_path / "prep.py").write_text("")
    monkeypatch.chdir(tmp_path)


def test_optional_outputs_round_trip_through_the_definition_json():
    original = pipeline_with(ProcessingOutput(output_name="train", source="train"),
                             ProcessingOutput(output_name="extra", source="extra", optional=True))
    [step] = Pipeline.from_definition(json.loads(original.definition())).steps
    assert [(o.output_name, o.optional) for o in step.outputs] == [("train", False), ("extra", True)]


def test_a_required_output_keeps_the_definition_it_always_had():
    document = pipeline_with(ProcessingOutput(output_name="train", source="train")).definition()
    [step] = [s for s in json.loads(document)["Steps"] if s["Name"] == "Prep"]
    assert "Optional" not in step["Arguments"]["Outputs"][0]  # unchanged pipelines keep their version


def test_optional_must_be_a_boolean():
    with pytest.raises(PipelineDefinitionError, match="optional must be True or False, not 'yes'"):
        ProcessingOutput(output_name="extra", source="extra", optional="yes")  # type: ignore[arg-type]
