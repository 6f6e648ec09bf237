"""Pipeline alone: what it refuses (duplicates, cycles, dangling names) and its definition document round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow import (
    CacheConfig,
    ConditionStep,
    FailStep,
    ParallelismConfiguration,
    ParameterInteger,
    ParameterString,
    Pipeline,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    RetryPolicy,
)
from forgeline.workflow.conditions import ConditionGreaterThan


@pytest.fixture(autouse=True)
def in_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "job.py").write_text("")
    monkeypatch.chdir(tmp_path)


def job(name: str, **options: Any) -> ProcessingStep:
    return ProcessingStep(name=name, code="job.py", **options)


def test_two_steps_with_one_name_are_refused_naming_it() -> None:
    with pytest.raises(PipelineDefinitionError, match="more than one step named 'Prep'; step names must be unique"):
        Pipeline(name="p", steps=[job("Prep"), job("Prep")])


def test_a_step_in_two_branches_and_the_list_counts_once() -> None:
    shared = job("Shared")
    gate = ConditionStep(name="Gate", conditions=[ConditionGreaterThan(left=2, right=1)], if_steps=[shared])
    pipeline = Pipeline(name="p", steps=[gate, shared])
    assert [s.name for s in pipeline.steps] == ["Gate", "Shared"]


def test_a_parameter_declared_twice_is_refused() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"declares parameter\(s\) \['Rate'\] twice"):
        Pipeline(name="p", parameters=[ParameterInteger(name="Rate"), ParameterInteger(name="Rate")],
                 steps=[job("A")])


def test_a_cycle_is_refused_with_its_path() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"pipeline 'p' has a dependency cycle: (\w -> ){2}\w"):
        Pipeline(name="p", steps=[job("A", depends_on=["B"]), job("B", depends_on=["A"])])


def test_names_of_steps_the_pipeline_lacks_are_refused() -> None:
    with pytest.raises(PipelineDefinitionError, match="step 'A' depends on step 'Ghost', which is not in pipeline"):
        Pipeline(name="p", steps=[job("A", depends_on=["Ghost"])])
    outside = job("Outside", outputs=[ProcessingOutput(output_name="out", source="out")])
    reader = job("Reader", inputs=[ProcessingInput(source=outside.properties.outputs["out"], destination="in")])
    with pytest.raises(PipelineDefinitionError, match="step 'Reader' refers to step 'Outside', which is not in"):
        Pipeline(name="p", steps=[reader])  # only a @step joins the pipeline by being referenced
    assert Pipeline(name="p", steps=[outside, reader]).graph.upstream["Reader"] == {"Outside"}


def test_a_missing_code_file_is_refused_unless_files_are_not_checked() -> None:
    with pytest.raises(PipelineDefinitionError, match="code file 'gone.py' does not exist"):
        Pipeline(name="p", steps=[ProcessingStep(name="A", code="gone.py")])
    assert Pipeline(name="p", steps=[ProcessingStep(name="A", code="gone.py")], check_files=False).steps


def test_an_unknown_step_lookup_names_the_pipeline() -> None:
    with pytest.raises(PipelineDefinitionError, match="pipeline 'p' has no step 'Nope'"):
        Pipeline(name="p", steps=[job("A")]).step("Nope")


def test_the_definition_document_round_trips() -> None:
    rate = ParameterInteger(name="Rate", default_value=3)
    mode = ParameterString(name="Mode", default_value="fast", enum_values=["fast", "slow"])
    prep = job("Prep", arguments=["--rate", rate, "--mode", mode],
               outputs=[ProcessingOutput(output_name="train", source="train")],
               cache_config=CacheConfig(enable_caching=True, expire_after="P1D"),
               retry_policies=[RetryPolicy(max_attempts=2)])
    train = job("Train", inputs=[ProcessingInput(source=prep.properties.outputs["train"], destination="in")])
    gate = ConditionStep(name="Gate", conditions=[ConditionGreaterThan(left=rate, right=1)], if_steps=[train],
                         else_steps=[FailStep(name="TooSlow", error_message="rate too low")])
    original = Pipeline(name="p", parameters=[rate, mode], steps=[prep, gate], description="a round trip",
                        parallelism_config=ParallelismConfiguration(max_parallel_steps=2))

    document = original.definition()
    rebuilt = Pipeline.from_definition(document)
    assert rebuilt == original and rebuilt.definition() == document
    assert Pipeline.from_definition(json.loads(document)) == original  # a parsed document too
    assert rebuilt.graph == original.graph
    assert document["Name"] == "p" and [s["Name"] for s in document["Steps"]] == ["Prep", "Gate"]


def test_a_definition_from_another_format_or_without_steps_is_refused() -> None:
    document = json.loads(Pipeline(name="p", steps=[job("A")]).definition())
    document["Metadata"]["FormatVersion"] = 99
    with pytest.raises(PipelineDefinitionError, match="format version 99 is not supported"):
        Pipeline.from_definition(document)
    with pytest.raises(PipelineDefinitionError, match="needs 'Name' and 'Steps'"):
        Pipeline.from_definition({"Name": "p"})
