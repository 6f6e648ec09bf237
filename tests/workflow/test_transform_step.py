"""TransformStep definitions: the model may be a package id, and a malformed one is refused up front."""

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow import Pipeline, TransformInput, TransformStep


def test_a_package_id_model_round_trips() -> None:
    step = TransformStep(name="Predict", model="scorer/3", inputs=TransformInput(data="data"), instance_count=2)
    pipeline = Pipeline(name="t", steps=[step])
    assert Pipeline.from_definition(pipeline.definition()) == pipeline


@pytest.mark.parametrize("model", ["scorer", "scorer/latest", "/3"])
def test_a_malformed_package_id_names_the_step_and_the_value(model: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=rf"'Predict'.*'{model}'"):
        TransformStep(name="Predict", model=model, inputs=TransformInput(data="data"))


def test_instance_count_may_be_a_parameter_and_a_literal_must_be_positive() -> None:
    from forgeline.workflow import ParameterInteger

    workers = ParameterInteger("Workers", default_value=2)
    step = TransformStep(name="Predict", model="scorer/3", inputs=TransformInput(data="data"), instance_count=workers)
    pipeline = Pipeline(name="t", parameters=[workers], steps=[step])
    assert Pipeline.from_definition(pipeline.definition()) == pipeline
    assert pipeline.definition().as_dict()["Steps"][0]["Arguments"]["InstanceCount"] == {"Get": "Parameters.Workers"}
    with pytest.raises(PipelineDefinitionError, match="instance_count must be a positive integer, got 0"):
        TransformStep(name="Predict", model="scorer/3", inputs=TransformInput(data="data"), instance_count=0)
