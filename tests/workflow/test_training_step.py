"""TrainingStep: what a user writes is checked at definition time and survives the definition JSON."""

from __future__ import annotations

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow import (
    ConditionGreaterThanOrEqualTo,
    ConditionStep,
    FailStep,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
    Pipeline,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    TrainingInput,
    TrainingStep,
)

METRICS = [{"Name": "training_ap", "Regex": r"training_ap ([0-9\.]+)"},
           {"Name": "testing_ap", "Regex": r"testing_ap ([0-9\.]+)"}]


def vision_like() -> Pipeline:
    epochs = ParameterInteger("NumEpoch", default_value=3)
    lr = ParameterFloat("LearningRate", default_value=0.01)
    checkpoints = ParameterString("CheckpointPath", default_value="")
    instance_type = ParameterString("InstanceType", default_value="ml.m5.xlarge")
    prepare = ProcessingStep(name="Prepare", code="prepare.py",
                             outputs=[ProcessingOutput(output_name="train", source="out/train"),
                                      ProcessingOutput(output_name="test", source="out/test")])
    train = TrainingStep(
        name="Train-CV-Model", entry_point="train.py", source_dir="code",
        hyperparameters={"num_epochs": epochs, "learning_rate": lr, "batch_size": 32},
        inputs={"train": TrainingInput(prepare.properties.outputs["train"]),
                "test": TrainingInput(prepare.properties.outputs["test"], content_type="application/x-npz")},
        metric_definitions=METRICS, checkpoint_uri=checkpoints, max_run=1800, use_spot_instances=True,
        max_wait=3600, environment={"OMP_NUM_THREADS": "1"}, instance_type=instance_type, instance_count=2,
        requirements="code/requirements.txt",
    )
    evaluate = ProcessingStep(name="Evaluate", code="evaluate.py",
                              inputs=[ProcessingInput(source=train.properties.model_artifacts, destination="model")])
    gate = ConditionStep(
        name="Gate",
        conditions=[ConditionGreaterThanOrEqualTo(left=train.properties.metrics["testing_ap"], right=0.5)],
        else_steps=[FailStep(name="TooWeak", error_message="weak")],
        depends_on=[evaluate],
    )
    return Pipeline(name="vision", parameters=[epochs, lr, checkpoints, instance_type],
                    steps=[prepare, train, evaluate, gate], check_files=False)


def test_a_training_step_round_trips_through_the_definition() -> None:
    pipeline = vision_like()
    rebuilt = Pipeline.from_definition(pipeline.definition())
    assert rebuilt == pipeline
    [request] = [s for s in pipeline.definition()["Steps"] if s["Name"] == "Train-CV-Model"]
    args = request["Arguments"]
    assert request["Type"] == "Training"
    assert args["HyperParameters"] == {"num_epochs": {"Get": "Parameters.NumEpoch"},
                                       "learning_rate": {"Get": "Parameters.LearningRate"}, "batch_size": 32}
    assert args["InputDataConfig"][0] == {"ChannelName": "train", "ContentType": None,
                                          "DataSource": {"Get": "Steps.Prepare.outputs['train']"}}
    assert args["MetricDefinitions"] == METRICS
    assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600}
    assert args["EnableManagedSpotTraining"] is True
    assert args["ResourceConfig"] == {"InstanceType": {"Get": "Parameters.InstanceType"}, "InstanceCount": 2}
    assert args["Requirements"] == "code/requirements.txt"
    train = rebuilt.step("Train-CV-Model")
    assert isinstance(train, TrainingStep)
    assert list(train.inputs) == ["train", "test"] and train.max_wait == 3600
    # Steps that read the training step's properties depend on it.
    assert "Train-CV-Model" in rebuilt.graph.upstream["Evaluate"]


@pytest.mark.parametrize(("regex", "problem"), [
    (r"training_ap ([0-9\.]+", "does not compile"),
    (r"training_ap [0-9\.]+", "needs a capture group"),
])
def test_a_bad_metric_regex_is_a_definition_error(regex: str, problem: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=problem) as raised:
        TrainingStep(name="Train", entry_point="train.py",
                     metric_definitions=[{"Name": "training_ap", "Regex": regex}])
    assert "'Train'" in str(raised.value) and "'training_ap'" in str(raised.value)


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"metric_definitions": [{"Name": "a"}]}, "each metric definition"),
    ({"metric_definitions": [METRICS[0], METRICS[0]]}, "defined twice"),
    ({"use_spot_instances": True}, "needs max_wait"),
    ({"use_spot_instances": True, "max_run": 600, "max_wait": 60}, "at least max_run"),
    ({"max_run": 0}, "positive number"),
    ({"hyperparameters": {"layers": [1, 2]}}, "hyperparameter 'layers'"),
    ({"inputs": {"bad name!": "data"}}, "invalid channel"),
    ({"requirements": ""}, "requirements must be"),
])
def test_other_mistakes_are_definition_errors(kwargs: dict, problem: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=problem):
        TrainingStep(name="Train", entry_point="train.py", **kwargs)


def test_one_input_without_a_channel_name_is_the_training_channel() -> None:
    step = TrainingStep(name="Train", entry_point="train.py", inputs="data/train.csv")
    assert list(step.inputs) == ["training"]
    assert step.inputs["training"] == TrainingInput("data/train.csv")


@pytest.mark.parametrize(("reference", "problem"), [
    (lambda t: t.properties.metrics["validation_ap"], "no metric 'validation_ap'"),
    (lambda t: t.properties.outputs["checkpoints"], "no output 'checkpoints'"),
    (lambda t: t.properties.model_artifacts["uri"], "model_artifacts is a URI"),
    (lambda t: t.properties.ModelArtifacts, "has no property 'ModelArtifacts'"),
])
def test_references_to_properties_a_training_step_lacks_are_refused(reference, problem: str) -> None:
    train = TrainingStep(name="Train", entry_point="train.py", metric_definitions=METRICS)
    use = ProcessingStep(name="Use", code="use.py", arguments=[reference(train)])
    with pytest.raises(PipelineDefinitionError, match=problem):
        Pipeline(name="p", steps=[train, use], check_files=False)


def test_the_entry_point_source_dir_and_requirements_must_exist(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "train.py").write_text("")
    train = TrainingStep(name="Train", entry_point="train.py", source_dir="code", requirements="requirements.txt")
    with pytest.raises(PipelineDefinitionError, match="'requirements.txt' does not exist"):
        Pipeline(name="p", steps=[train])
    (tmp_path / "requirements.txt").write_text("")
    Pipeline(name="p", steps=[train])
