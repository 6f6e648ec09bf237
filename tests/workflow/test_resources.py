"""``resources=`` on job steps, ``instance_type``/``instance_count`` on ProcessingStep and ``Pipeline(executor=)``:
validated in one line each, and kept through the definition document."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow import Pipeline, ProcessingStep, TrainingStep, TransformInput, TransformStep, step
from forgeline.workflow.steps.model import Model
from forgeline.workflow.steps.resources import check_resources


@step(name="F", resources={"num_cpus": 1, "custom:fast": 1})
def work() -> int:
    return 1


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text("print('hi')\n")
    return "job.py"


def test_resources_are_counted_as_ray_counts_them():
    assert check_resources("step 'A'", {"num_cpus": 4, "num_gpus": 1, "memory": "8GiB", "custom:tpu": 2}) == {
        "num_cpus": 4.0, "num_gpus": 1.0, "memory": 8.0 * 1024**3, "tpu": 2.0}
    assert check_resources("step 'A'", {"memory": 512 * 1000**2}) == {"memory": 512e6}
    assert check_resources("step 'A'", None) == {}


@pytest.mark.parametrize(("resources", "message"), [
    ({"cpus": 2}, "step 'P': resources has no key 'cpus'; use num_cpus, num_gpus, memory or custom:<name>"),
    ({"num_cpus": 0}, "step 'P': resources['num_cpus'] must be a positive number, not 0"),
    ({"num_gpus": -1}, "step 'P': resources['num_gpus'] must be a positive number, not -1"),
    ({"num_gpus": "1"}, "step 'P': resources['num_gpus'] must be a positive number, not '1'"),
    ({"memory": "lots"}, "step 'P': resources['memory'] must be a size like '8GiB' or '512MB' (or bytes), not 'lots'"),
    ({"memory": True}, "step 'P': resources['memory'] must be a size like '8GiB'"),
    ("4 cpus", "step 'P': resources must be a dict like"),
])
def test_a_bad_resource_is_refused_in_one_line_naming_it(script, resources, message):
    with pytest.raises(PipelineDefinitionError) as raised:
        ProcessingStep(name="P", code=script, resources=resources)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_resources_and_instances_survive_the_definition_document(script):
    processing = ProcessingStep(name="P", code=script, resources={"num_cpus": 2, "memory": "4GiB"},
                                instance_type="ml.m5.large", instance_count=3)
    training = TrainingStep(name="T", entry_point=script, resources={"num_gpus": 1})
    transform = TransformStep(name="X", model=Model(model_data="s3://b/model.tar.gz"),
                              inputs=TransformInput("s3://b/data"), instance_count=2, resources={"num_cpus": 1})

    pipeline = Pipeline(name="p", steps=[processing, training, transform, work()], executor="ray")
    again = Pipeline.from_definition(pipeline.definition())
    assert again.executor == "ray"
    assert again.step("P").resources == {"num_cpus": 2, "memory": "4GiB"}
    assert (again.step("P").instance_type, again.step("P").instance_count) == ("ml.m5.large", 3)
    assert again.step("T").resources == {"num_gpus": 1}
    assert again.step("X").resources == {"num_cpus": 1}
    assert again.step("F").resources == {"num_cpus": 1, "custom:fast": 1}
    assert Pipeline.from_definition(Pipeline(name="q", steps=[processing]).definition()).executor is None


@pytest.mark.parametrize("executor", ["spark", "ray://nowhere", "", 3])
def test_a_pipeline_naming_no_executor_is_refused(script, executor):
    with pytest.raises(PipelineDefinitionError, match=r"pipeline 'p': executor=.* is not an executor; accepted: "
                                                      r"local, ray, ray://<host>:<port>"):
        Pipeline(name="p", steps=[ProcessingStep(name="P", code=script)], executor=executor)


def test_instance_count_must_be_a_positive_integer(script):
    with pytest.raises(PipelineDefinitionError, match="step 'P': instance_count must be a positive integer, not 0"):
        ProcessingStep(name="P", code=script, instance_count=0)
