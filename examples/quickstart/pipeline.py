# examples/quickstart/pipeline.py
from forgeline.workflow import (
    Pipeline, ParameterString, ParameterFloat, ParameterInteger,
    ProcessingStep, ProcessingInput, ProcessingOutput, PropertyFile, JsonGet, Join,
    ConditionStep, ConditionGreaterThanOrEqualTo, FailStep, ExecutionVariables, step,
)

data = ParameterString("InputData", default_value="examples/quickstart/data/breast_cancer.csv")
ratio = ParameterFloat("TrainRatio", default_value=0.8)
seed = ParameterInteger("Seed", default_value=7)
threshold = ParameterFloat("AccuracyThreshold", default_value=0.9)

prepare = ProcessingStep(
    name="Prepare", code="examples/quickstart/prepare.py",
    inputs=[ProcessingInput(source=data, destination="input")],
    outputs=[ProcessingOutput(output_name="train", source="output/train"),
             ProcessingOutput(output_name="test", source="output/test")],
    arguments=["--train-ratio", ratio, "--seed", seed],
)
fit = ProcessingStep(
    name="Fit", code="examples/quickstart/fit.py",
    inputs=[ProcessingInput(source=prepare.properties.outputs["train"], destination="train")],
    outputs=[ProcessingOutput(output_name="model", source="model")],
)
evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
evaluate = ProcessingStep(
    name="Evaluate", code="examples/quickstart/evaluate.py",
    inputs=[ProcessingInput(source=fit.properties.outputs["model"], destination="model"),
            ProcessingInput(source=prepare.properties.outputs["test"], destination="test")],
    outputs=[ProcessingOutput(output_name="evaluation", source="evaluation")],
    property_files=[evaluation],
)

@step(name="Summarize")
def summarize(accuracy: float, run_id: str) -> dict:
    return {"accuracy": accuracy, "run": run_id}

accuracy = JsonGet(step=evaluate, property_file=evaluation, json_path="metrics.accuracy.value")
gate = ConditionStep(
    name="AccuracyGate",
    conditions=[ConditionGreaterThanOrEqualTo(left=accuracy, right=threshold)],
    if_steps=[summarize(accuracy, ExecutionVariables.EXECUTION_ID)],
    else_steps=[FailStep(name="TooInaccurate",
                         error_message=Join(on=" ", values=["accuracy", accuracy, "is below", threshold]))],
)
pipeline = Pipeline(name="quickstart", parameters=[data, ratio, seed, threshold],
                    steps=[prepare, fit, evaluate, gate])
