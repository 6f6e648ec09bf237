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
