# examples/payments/pipeline.py
# Weekly training of the fraud-risk models, one per market: features, a scikit-learn + XGBoost blend, predictions on
# the held-out orders, a report against the approved model, and, when the candidate is not worse, registration and
# deployment to the market's endpoint (features + model as one two-stage inference pipeline).
import json
import os

from forgeline.workflow import (
    ConditionEquals, ConditionGreaterThanOrEqualTo, ConditionOr, ConditionStep, DeployStep, EvaluationReportStep,
    ForEach, ForEachItem, Join, Model, ModelMetrics, ModelPackage, ParameterFloat, ParameterString, Pipeline,
    ProcessingInput, ProcessingOutput, ProcessingStep, RegisterModel, TrainingInput, TrainingStep, TransformInput,
    TransformStep,
)

CODE = "examples/payments/code"
SAMPLE_ORDER = json.loads(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "order.json")).read())
DEPLOY_TIMEOUT = float(os.environ.get("PAYMENTS_DEPLOY_TIMEOUT", "300"))  # seconds for `forgeline serve` to go live

markets = ParameterString("Markets", default_value="de,fr")                 # or a JSON list
orders = ParameterString("Orders", default_value="data/payments/week-1")    # a week from generate.py
min_auc_change = ParameterFloat("MinAucChange", default_value=-0.002)      # AUC the candidate may lose: 0.002
xgboost_weight = ParameterFloat("XGBoostWeight", default_value=0.5)

# The endpoints' first stage: orders.features behind the inference contract (the Prepare step's very code).
features = RegisterModel(
    name="RegisterFeatures",
    model=Model(model_data=f"{CODE}/feature_spec", entry_point="features_inference.py", source_dir=CODE),
    model_package_group_name="payments-features", approval_status="Approved",
    content_types=["application/json"], response_types=["text/csv"], accepts_batches=True,
    description="orders.features: JSON orders to 34 feature columns",
)

market = ForEachItem()
group = Join(on="-", values=["payments", market])           # payments-de: one model package group per market
prepare = ProcessingStep(
    name="Prepare", code="prepare.py", source_dir=CODE, arguments=["--market", market],
    inputs=[ProcessingInput(source=orders, destination="input/orders")],
    outputs=[ProcessingOutput(output_name="train", source="output/train"),
             ProcessingOutput(output_name="test", source="output/test"),
             ProcessingOutput(output_name="features", source="output/features")],
)
train_xgboost = TrainingStep(  # in its own environment: the XGBoost the team pins, not forgeline's
    name="TrainXGBoost", entry_point="train_xgboost.py", source_dir=CODE,
    requirements="examples/payments/requirements-xgboost.txt",
    inputs={"train": TrainingInput(prepare.properties.outputs["train"])},
    environment={"OMP_NUM_THREADS": "1"},
)
train = TrainingStep(
    name="Train", entry_point="train_blend.py", source_dir=CODE,
    hyperparameters={"xgboost_weight": xgboost_weight},
    inputs={"train": TrainingInput(prepare.properties.outputs["train"]),
            "xgboost": TrainingInput(train_xgboost.properties.model_artifacts)},
    environment={"OMP_NUM_THREADS": "1"},
)
model = Model(model_data=train.properties.model_artifacts, entry_point="model_inference.py", source_dir=CODE)
predict = TransformStep(
    name="Predict", model=model, accept="text/csv",
    inputs=TransformInput(prepare.properties.outputs["features"], content_type="text/csv"),
)
report = EvaluationReportStep(
    name="Report", predictions=predict.properties.output_uri,
    baseline=ModelPackage.latest_approved(group, default=None),  # scored by the report on the same orders
    data=prepare.properties.outputs["test"], label="defaulted", task="binary",
    score_field="default_probability", title="payments weekly candidate",
)
report_metrics = ModelMetrics(Join(on="/", values=[report.properties.report_uri, "metrics.json"]))
register = RegisterModel(
    name="Register", model=model, model_package_group_name=group, approval_status="Approved",
    content_types=["text/csv"], response_types=["application/json", "text/csv"], accepts_batches=True,
    model_metrics=report_metrics,
)
deploy = DeployStep(
    name="Deploy", endpoint_name=Join(on="-", values=["risk", market]),
    model=[features.properties.model_package, register.properties.model_package],  # two stages, in order
    wait=True, sample_body=SAMPLE_ORDER, timeout=DEPLOY_TIMEOUT,
)
reject = RegisterModel(  # kept for the record; the approved model before it goes on serving
    name="RegisterRejected", model=model, model_package_group_name=group, approval_status="Rejected",
    content_types=["text/csv"], response_types=["application/json", "text/csv"], accepts_batches=True,
    model_metrics=report_metrics, description="rejected: worse than the approved model on the held-out orders",
)
gate = ConditionStep(
    name="Gate",
    conditions=[ConditionOr(conditions=[
        ConditionEquals(left=report.properties.baseline_package_arn, right=None),  # the first approved model
        ConditionGreaterThanOrEqualTo(left=report.properties.metrics["difference"]["auc"]["value"],
                                      right=min_auc_change),
    ])],
    if_steps=[register, deploy], else_steps=[reject],
)
per_market = ForEach(name="Market", items=markets, steps=[prepare, train_xgboost, train, predict, report, gate],
                     max_concurrency=1)

pipeline = Pipeline(name="payments-training", parameters=[markets, orders, min_auc_change, xgboost_weight],
                    steps=[features, per_market])
