# examples/vision/pipeline.py
# A PyTorch CNN on scikit-learn's bundled digit images, trained in SageMaker script mode on this machine.
from forgeline.workflow import (
    Pipeline, ParameterString, ParameterFloat, ParameterInteger,
    ProcessingStep, ProcessingInput, ProcessingOutput, PropertyFile, JsonGet, Join,
    TrainingStep, TrainingInput, RegisterModel, Model, ModelMetrics,
    ConditionStep, ConditionGreaterThanOrEqualTo, FailStep, ExecutionVariables, CacheConfig, step,
)

data_size = ParameterInteger("InputDataSize", default_value=1797)          # how many of the 1797 images
instance_type = ParameterString("InstanceType", default_value="ml.c5.xlarge")  # recorded; runs locally
instance_count = ParameterInteger("InstanceCount", default_value=1)          # recorded; runs locally
epochs = ParameterInteger("NumEpoch", default_value=5)
learning_rate = ParameterFloat("LearningRate", default_value=0.01)
batch_size = ParameterInteger("BatchSize", default_value=64)
threshold = ParameterFloat("AccuracyThreshold", default_value=0.90)

# Rerunning with only a new AccuracyThreshold reuses the data, the model and its evaluation.
cache = CacheConfig(enable_caching=True, expire_after="P30D")

prepare = ProcessingStep(
    name="Prepare-Digits", code="examples/vision/prepare.py",
    outputs=[ProcessingOutput(output_name="train", source="output/train"),
             ProcessingOutput(output_name="test", source="output/test")],
    arguments=["--data-size", data_size],
    cache_config=cache,
)

train = TrainingStep(
    name="Train-CV-Model",
    entry_point="train.py", source_dir="examples/vision/code",      # the whole folder travels with the job
    hyperparameters={"num_epochs": epochs, "learning_rate": learning_rate, "batch_size": batch_size},
    inputs={"train": TrainingInput(prepare.properties.outputs["train"]),
            "test": TrainingInput(prepare.properties.outputs["test"])},
    metric_definitions=[{"Name": "training_ap", "Regex": r"training_ap ([0-9\.]+)"},
                        {"Name": "testing_ap", "Regex": r"testing_ap ([0-9\.]+)"}],
    max_run=1800,                                  # seconds; longer runs are stopped and fail
    use_spot_instances=True, max_wait=3600,        # interrupted runs restart from the last checkpoint
    environment={"OMP_NUM_THREADS": "1"},
    instance_type=instance_type, instance_count=instance_count,
    cache_config=cache,
)

evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
evaluate = ProcessingStep(
    name="Evaluate-CV-Model", code="evaluate.py", source_dir="examples/vision/code",
    inputs=[ProcessingInput(source=train.properties.model_artifacts, destination="model"),
            ProcessingInput(source=prepare.properties.outputs["test"], destination="test")],
    outputs=[ProcessingOutput(output_name="evaluation", source="evaluation")],
    property_files=[evaluation],
    env={"OMP_NUM_THREADS": "1"},
    cache_config=cache,
)


@step(name="Summarize-Model")
def summarize(accuracy: float, testing_ap: float, model_package: str, run_id: str) -> dict:
    return {"accuracy": accuracy, "testing_ap": testing_ap, "model_package": model_package, "run": run_id}


register = RegisterModel(
    name="Register-CV-Model",
    model=Model(model_data=train.properties.model_artifacts,
                entry_point="inference.py", source_dir="examples/vision/code"),
    model_package_group_name="digits-cnn",
    approval_status="PendingManualApproval",      # a person approves it: forgeline models approve digits-cnn <v>
    content_types=["application/json"], response_types=["application/json"],
    model_metrics=ModelMetrics(evaluation),
    description=Join(on=" ", values=["trained by", ExecutionVariables.EXECUTION_ID]),
)

accuracy = JsonGet(step=evaluate, property_file=evaluation, json_path="metrics.accuracy.value")
gate = ConditionStep(
    name="Accuracy-Gate",
    conditions=[ConditionGreaterThanOrEqualTo(left=accuracy, right=threshold)],
    if_steps=[register,
              summarize(accuracy, train.properties.metrics["testing_ap"], register.properties.model_package_arn,
                        ExecutionVariables.EXECUTION_ID)],
    else_steps=[FailStep(name="Model-Too-Inaccurate",
                         error_message=Join(on=" ", values=["test accuracy", accuracy,
                                                            "is below the threshold", threshold]))],
)
pipeline = Pipeline(
    name="vision",
    parameters=[data_size, instance_type, instance_count, epochs, learning_rate, batch_size, threshold],
    steps=[prepare, train, evaluate, gate],
)
