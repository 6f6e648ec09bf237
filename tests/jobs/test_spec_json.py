"""JobSpec to JSON and back: every field, nested values included, comes back equal; bad input is one clear error."""

from __future__ import annotations

import json

import pytest

from forgeline.errors import JobError
from forgeline.jobs.code_folder import CodeFolderRules
from forgeline.jobs.spec import (
    CollectedOutput,
    FunctionRef,
    JobKind,
    JobSpec,
    MetricDefinition,
    PropertyFileSpec,
    StagedInput,
    TrainingSpec,
)

FULL = JobSpec(
    kind=JobKind.TRAINING, job_id="exec/train/2", job_dir="jobs/exec/train/2", log_path="logs/train/2.log",
    inputs=(StagedInput("file:///data/train", "input/data/train"),
            StagedInput("code", "code", code_rules=CodeFolderRules(excluded=(".forgeline",), max_bytes=1000))),
    outputs=(CollectedOutput("model", "model", "file:///artifacts/model", optional=True),),
    property_files=(PropertyFileSpec("metrics", "model", "metrics.json"),),
    env={"SEED": "3"}, code="train.py", source_dir="code", code_rules=CodeFolderRules(max_bytes=10),
    arguments=("--epochs", "3"), max_run_seconds=60.0, static_properties={"Image": {"tag": "x"}},
    properties_file="props.json", python="python3", requirements="requirements.txt", envs_dir="envs",
    training=TrainingSpec(checkpoint_uri="file:///ckpt", channels=("train",), hyperparameters={"lr": 0.1, "n": 2},
                          metric_definitions=(MetricDefinition("loss", r"loss=(\S+)"),),
                          restart_on_interruption=True, max_wait_seconds=120.0, instance_count=2),
    sagemaker_paths=True,
)


def test_every_field_of_a_training_spec_comes_back_equal():
    text = FULL.to_json()
    back = JobSpec.from_json(text)
    assert back == FULL
    assert back.kind is JobKind.TRAINING and isinstance(back.inputs, tuple)
    assert json.loads(text)["spec"]["kind"] == "training"


def test_a_function_spec_keeps_its_arguments():
    spec = JobSpec(kind="function", job_id="e/f/1", job_dir="j", log_path="l",
                   function=FunctionRef(name="train", module="pkg.steps"), args=(1, "two", [3.5], {"k": None}),
                   kwargs={"flag": True}, return_uri="file:///r.pkl")
    assert JobSpec.from_json(spec.to_json()) == spec


def test_an_argument_that_is_not_json_is_named():
    spec = JobSpec(kind="function", job_id="e/f/1", job_dir="j", log_path="l", args=(object(),))
    with pytest.raises(JobError, match="job e/f/1 cannot be written as JSON"):
        spec.to_json()


@pytest.mark.parametrize("text, why", [
    ("not json", "not a job spec document"),
    ('{"format": 99, "spec": {}}', "format 99 is not 1"),
    ('{"format": 1, "spec": {"kind": "processing", "job_id": "a", "job_dir": "j", "log_path": "l", "colour": 1}}',
     "JobSpec has no field 'colour'"),
    ('{"format": 1, "spec": {"kind": "dreaming", "job_id": "a", "job_dir": "j", "log_path": "l"}}',
     "'dreaming' is not one of: processing, training, function"),
])
def test_a_document_that_is_not_a_spec_is_refused(text, why):
    with pytest.raises(JobError, match=why):
        JobSpec.from_json(text)
