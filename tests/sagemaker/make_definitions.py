"""Build SageMaker pipeline definitions with the real SageMaker Python SDK, offline (moto answers its AWS calls).

Usage: ``python make_definitions.py abalone|vision PROJECT_DIR``. Run from PROJECT_DIR's code (copied there
by the test), it writes PROJECT_DIR/definition.json and copies what the SDK uploaded to the bucket (code,
sourcedir.tar.gz) into PROJECT_DIR/data, as ``aws s3 sync s3://my-bucket ./data`` would.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                  SAGEMAKER_SUPPRESS_V2_WARNING="1")
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

BUCKET = "my-bucket"
ROLE = "arn:aws:iam::123456789012:role/Pipelines"
REGION = "us-east-1"


def abalone(session):  # the SDK's abalone example, shortened
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.model import Model
    from sagemaker.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
    from sagemaker.sklearn.processing import SKLearnProcessor
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionLessThanOrEqualTo
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.retry import StepExceptionTypeEnum, StepRetryPolicy
    from sagemaker.workflow.steps import CacheConfig, ProcessingStep, TrainingStep

    count = ParameterInteger(name="ProcessingInstanceCount", default_value=1)
    approval = ParameterString(name="ModelApprovalStatus", default_value="PendingManualApproval")
    input_data = ParameterString(name="InputData", default_value=f"s3://{BUCKET}/abalone/abalone-dataset.csv")
    threshold = ParameterFloat(name="MseThreshold", default_value=6.0)
    cache = CacheConfig(enable_caching=True, expire_after="PT1H")
    processor = SKLearnProcessor(framework_version="1.2-1", instance_type="ml.m5.xlarge", instance_count=count,
                                 base_job_name="sklearn-abalone-process", role=ROLE, sagemaker_session=session)
    process = ProcessingStep(name="AbaloneProcess", cache_config=cache, step_args=processor.run(
        inputs=[ProcessingInput(source=input_data, destination="/opt/ml/processing/input")],
        outputs=[ProcessingOutput(output_name=n, source=f"/opt/ml/processing/{n}")
                 for n in ("train", "validation", "test")],
        code="preprocessing.py"),
        retry_policies=[StepRetryPolicy(exception_types=[StepExceptionTypeEnum.SERVICE_FAULT], max_attempts=2)])
    image = sagemaker.image_uris.retrieve(framework="xgboost", region=REGION, version="1.0-1", py_version="py3",
                                          instance_type="ml.m5.xlarge")
    xgb = Estimator(image_uri=image, instance_type="ml.m5.xlarge", instance_count=1,
                    output_path=f"s3://{BUCKET}/AbaloneTrain", role=ROLE, sagemaker_session=session)
    xgb.set_hyperparameters(objective="reg:linear", num_round=30, max_depth=4, eta=0.3, gamma=4,
                            min_child_weight=6, subsample=0.7)
    outputs = process.properties.ProcessingOutputConfig.Outputs
    train = TrainingStep(name="AbaloneTrain", cache_config=cache, step_args=xgb.fit(inputs={
        "train": TrainingInput(s3_data=outputs["train"].S3Output.S3Uri, content_type="text/csv"),
        "validation": TrainingInput(s3_data=outputs["validation"].S3Output.S3Uri, content_type="text/csv")}))
    evaluator = ScriptProcessor(image_uri=image, command=["python3"], instance_type="ml.m5.xlarge",
                                instance_count=1, base_job_name="script-abalone-eval", role=ROLE,
                                sagemaker_session=session)
    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(name="AbaloneEval", property_files=[report], step_args=evaluator.run(
        inputs=[ProcessingInput(source=train.properties.ModelArtifacts.S3ModelArtifacts,
                                destination="/opt/ml/processing/model"),
                ProcessingInput(source=outputs["test"].S3Output.S3Uri, destination="/opt/ml/processing/test")],
        outputs=[ProcessingOutput(output_name="evaluation", source="/opt/ml/processing/evaluation")],
        code="evaluation.py"))
    evaluation_uri = evaluate.arguments["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    metrics = ModelMetrics(model_statistics=MetricsSource(s3_uri=f"{evaluation_uri}/evaluation.json",
                                                          content_type="application/json"))
    model = Model(image_uri=image, model_data=train.properties.ModelArtifacts.S3ModelArtifacts,
                  sagemaker_session=session, role=ROLE)
    register = ModelStep(name="RegisterAbaloneModel", step_args=model.register(
        content_types=["text/csv"], response_types=["text/csv"], inference_instances=["ml.t2.medium"],
        transform_instances=["ml.m5.large"], model_package_group_name="AbaloneModelPackageGroup",
        approval_status=approval, model_metrics=metrics))
    fail = FailStep(name="AbaloneMSEFail", error_message=Join(on=" ", values=["MSE above", threshold]))
    mse = JsonGet(step_name=evaluate.name, property_file=report, json_path="regression_metrics.mse.value")
    gate = ConditionStep(name="AbaloneMSECond", conditions=[ConditionLessThanOrEqualTo(left=mse, right=threshold)],
                         if_steps=[register], else_steps=[fail])
    return Pipeline(name="abalone", parameters=[count, approval, input_data, threshold],
                    steps=[process, train, evaluate, gate], sagemaker_session=session)


def vision(session):  # PyTorch script mode: metrics, spot + checkpoints, a JsonGet gate, batch transform
    from sagemaker.inputs import TrainingInput
    from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
    from sagemaker.pytorch import PyTorch, PyTorchModel
    from sagemaker.transformer import Transformer
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import JsonGet
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.retry import SageMakerJobExceptionTypeEnum, SageMakerJobStepRetryPolicy
    from sagemaker.workflow.steps import ProcessingStep, TrainingStep, TransformStep

    rate = ParameterFloat(name="LearningRate", default_value=0.5)
    epochs = ParameterInteger(name="Epochs", default_value=3)
    threshold = ParameterFloat(name="AccuracyThreshold", default_value=0.8)
    estimator = PyTorch(entry_point="train.py", source_dir="src", framework_version="2.1", py_version="py310",
                        instance_type="ml.m5.xlarge", instance_count=1, role=ROLE, sagemaker_session=session,
                        hyperparameters={"lr": rate, "epochs": epochs, "batch-size": 16},
                        metric_definitions=[{"Name": "val:acc", "Regex": "val_acc=([0-9.]+)"}],
                        use_spot_instances=True, max_run=600, max_wait=1200,
                        checkpoint_s3_uri=f"s3://{BUCKET}/vision/checkpoints")
    train = TrainingStep(name="Train", step_args=estimator.fit({"train": TrainingInput(f"s3://{BUCKET}/digits/train")}),
                         retry_policies=[SageMakerJobStepRetryPolicy(
                             exception_types=[SageMakerJobExceptionTypeEnum.CAPACITY_ERROR], max_attempts=2)])
    processor = ScriptProcessor(image_uri=estimator.training_image_uri(), command=["python3"],
                                instance_type="ml.m5.xlarge", instance_count=1, role=ROLE, sagemaker_session=session)
    report = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(name="Evaluate", property_files=[report], step_args=processor.run(
        inputs=[ProcessingInput(source=train.properties.ModelArtifacts.S3ModelArtifacts,
                                destination="/opt/ml/processing/model"),
                ProcessingInput(source=f"s3://{BUCKET}/digits/test", destination="/opt/ml/processing/test")],
        outputs=[ProcessingOutput(output_name="evaluation", source="/opt/ml/processing/evaluation")],
        code="evaluate.py"))
    model = PyTorchModel(model_data=train.properties.ModelArtifacts.S3ModelArtifacts, entry_point="inference.py",
                         source_dir="src", framework_version="2.1", py_version="py310", role=ROLE,
                         sagemaker_session=session)
    create = ModelStep(name="Model", step_args=model.create(instance_type="ml.m5.large"))
    transformer = Transformer(model_name=create.properties.ModelName, instance_type="ml.m5.large", instance_count=1,
                              output_path=f"s3://{BUCKET}/predictions", accept="text/csv", assemble_with="Line",
                              sagemaker_session=session)
    predict = TransformStep(name="Predict", step_args=transformer.transform(
        data=f"s3://{BUCKET}/digits/batch", content_type="text/csv", split_type="Line"))
    accuracy = JsonGet(step_name="Evaluate", property_file=report, json_path="metrics.accuracy.value")
    gate = ConditionStep(name="AccuracyGate", conditions=[ConditionGreaterThanOrEqualTo(left=accuracy, right=threshold)],
                         if_steps=[create, predict], else_steps=[FailStep(name="TooInaccurate", error_message="low")])
    return Pipeline(name="vision", parameters=[rate, epochs, threshold], steps=[train, evaluate, gate],
                    sagemaker_session=session)


def lambdas(session):  # a Lambda step whose output a condition reads
    from sagemaker.lambda_helper import Lambda
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionEquals
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.workflow.parameters import ParameterInteger
    from sagemaker.workflow.pipeline import Pipeline

    size = ParameterInteger(name="BatchSize", default_value=8)
    check = LambdaStep(
        name="CheckSize",
        lambda_func=Lambda(function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:check-size",
                           session=session),
        inputs={"size": size, "limit": 10},
        outputs=[LambdaOutput(output_name="verdict", output_type=LambdaOutputTypeEnum.String)],
    )
    gate = ConditionStep(name="SizeGate", conditions=[ConditionEquals(left=check.properties.Outputs["verdict"],
                                                                       right="ok")],
                         if_steps=[], else_steps=[FailStep(name="TooBig", error_message="batch too big")])
    return Pipeline(name="lambdas", parameters=[size], steps=[check, gate], sagemaker_session=session)


def unmappable(session):  # steps forgeline cannot run: a custom image, an EMR step
    from sagemaker.processing import ProcessingInput, ScriptProcessor
    from sagemaker.workflow.emr_step import EMRStep, EMRStepConfig
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.steps import ProcessingStep

    custom = ScriptProcessor(image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/our-own:latest",
                             command=["python3"], instance_type="ml.m5.xlarge", instance_count=1, role=ROLE,
                             sagemaker_session=session)
    own = ProcessingStep(name="OwnImage", step_args=custom.run(
        inputs=[ProcessingInput(source=f"s3://{BUCKET}/in", destination="/opt/ml/processing/input")],
        code="preprocessing.py"))
    emr = EMRStep(name="SparkJob", display_name="spark", description="spark", cluster_id="j-123ABC",
                  step_config=EMRStepConfig(jar=f"s3://{BUCKET}/job.jar"))
    return Pipeline(name="unmappable", steps=[own, emr], sagemaker_session=session)


def fit_line(points: dict, scale: float) -> tuple:  # defined in __main__: the SDK pickles it by value
    """Least-squares slope and intercept (times ``scale``), and the points' label."""
    xs, ys = points["xs"], points["ys"]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return (round(slope * scale, 6), round((my - slope * mx) * scale, 6), points["label"])


def functions(session):  # two chained @step functions and a condition on the second's return value
    import shapes  # the project's module: the SDK pickles its functions by reference

    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.function_step import step
    from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger
    from sagemaker.workflow.pipeline import Pipeline

    count = ParameterInteger(name="Count", default_value=40)
    scale = ParameterFloat(name="Scale", default_value=1.0)
    least = ParameterFloat(name="MinSlope", default_value=2.5)
    options = {"instance_type": "ml.m5.large", "role": ROLE, "keep_alive_period_in_seconds": 0,
               "image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/python:3.11"}
    points = step(name="MakePoints", **options)(shapes.make_points)(count, 7,
                                                                   ExecutionVariables.PIPELINE_EXECUTION_ID)
    fitted = step(name="FitLine", **options)(fit_line)(points, scale)
    gate = ConditionStep(name="SlopeGate", conditions=[ConditionGreaterThanOrEqualTo(left=fitted[0], right=least)],
                         if_steps=[], else_steps=[FailStep(name="TooFlat", error_message="slope too small")])
    return Pipeline(name="functions", parameters=[count, scale, least], steps=[gate], sagemaker_session=session)


def transform(session):  # a batch transform whose instance count is a pipeline parameter
    from sagemaker.sklearn import SKLearnModel
    from sagemaker.transformer import Transformer
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.parameters import ParameterInteger
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.steps import TransformStep

    workers = ParameterInteger(name="Workers", default_value=1)
    model = SKLearnModel(model_data=f"s3://{BUCKET}/model/model.tar.gz", entry_point="inference.py",
                         framework_version="1.2-1", role=ROLE, sagemaker_session=session)
    create = ModelStep(name="Model", step_args=model.create(instance_type="ml.m5.large"))
    transformer = Transformer(model_name=create.properties.ModelName, instance_type="ml.m5.large",
                              instance_count=workers, output_path=f"s3://{BUCKET}/scores", accept="text/csv",
                              assemble_with="Line", sagemaker_session=session)
    score = TransformStep(name="Score", step_args=transformer.transform(
        data=f"s3://{BUCKET}/rows", content_type="text/csv", split_type="Line"))
    return Pipeline(name="transform", parameters=[workers], steps=[create, score], sagemaker_session=session)


def main(kind: str, project: Path) -> None:
    """Write the definition of pipeline ``kind`` and sync the bucket into ``project/data``."""
    from moto import mock_aws

    os.chdir(project)
    sys.path.insert(0, str(project))  # the project's own modules import as they do in the user's shell
    with mock_aws():
        import boto3

        from sagemaker.workflow.pipeline_context import PipelineSession

        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        session = PipelineSession(boto_session=boto3.Session(region_name=REGION), default_bucket=BUCKET)
        pipeline = {"abalone": abalone, "vision": vision, "lambdas": lambdas, "unmappable": unmappable,
                    "functions": functions, "transform": transform}[kind](session)
        (project / "definition.json").write_text(json.dumps(json.loads(pipeline.definition()), indent=1))
        for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            target = project / "data" / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(BUCKET, item["Key"], str(target))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]).resolve())
