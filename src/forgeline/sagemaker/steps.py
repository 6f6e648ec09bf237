"""SageMaker steps → forgeline steps: one mapper per step ``Type``; what cannot map raises :class:`Unmappable`.

Two kinds of SageMaker step are folded rather than run: ``Model`` (CreateModel) becomes the ``Model`` value of
the Transform steps that name it, and the SDK's model-repack Training step (which only bundles inference code
into model.tar.gz) becomes the inference code of the models built on it, since forgeline's model loader takes
the code and the artifacts separately.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from forgeline.errors import ForgelineError
from forgeline.sagemaker.code_lookup import CodeFinder
from forgeline.sagemaker.containers import (
    ALGORITHM_SCRIPTS,
    INFERENCE_SCRIPTS,
    ContainerRuntime,
    ContainerTable,
)
from forgeline.sagemaker.expressions import Translator, json_text
from forgeline.sagemaker.function_steps import function_step, is_function_step, unsupported
from forgeline.workflow.conditions import Condition
from forgeline.workflow.policies import CacheConfig, parse_duration
from forgeline.workflow.retry_policies import retry_policy_from_sagemaker
from forgeline.workflow.steps import (
    ConditionStep,
    FailStep,
    FunctionStep,
    Model,
    ModelMetrics,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
    RegisterModel,
    Step,
    TrainingInput,
    TrainingStep,
    TransformInput,
    TransformStep,
)

PYTHONS = frozenset({"python", "python3"})
REPACK_PROGRAM = "_repack_script_launcher.sh"
MODEL_CODE_IN_ARCHIVE = "/opt/ml/model/code"

UNMAPPABLE_KINDS = {
    "EMR": "an EMR cluster step runs Spark on AWS; there is no local counterpart",
    "EMRServerless": "an EMR Serverless step runs on AWS; there is no local counterpart",
    "ClarifyCheck": "a Clarify check needs SageMaker Clarify's container; there is no local counterpart",
    "QualityCheck": "a data/model quality check needs SageMaker Model Monitor's container; no local counterpart",
    "Tuning": "hyperparameter tuning jobs are not imported; run the training step with chosen values",
    "AutoML": "Autopilot (AutoML) jobs have no local counterpart",
    "Callback": "a Callback step waits for an SQS message; there is no local counterpart",
}
_STEP_REFERENCE = re.compile(r"Steps\.([A-Za-z0-9_\-]+)\.")


class Unmappable(ForgelineError):
    """A step that forgeline cannot run as written, with its name, kind and why."""

    def __init__(self, step: str, kind: str, reason: str) -> None:
        super().__init__(f"step {step!r} ({kind}): {reason}")
        self.step = step
        self.kind = kind
        self.reason = reason


@dataclass
class ImportContext:
    """What the mappers share: S3 mapping, code lookup, image table, Lambda handlers and folded steps."""

    code: CodeFinder
    images: ContainerTable
    lambdas: Mapping[str, str]
    repacks: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)
    model_problems: dict[str, str] = field(default_factory=dict)
    folded_dependencies: dict[str, list[str]] = field(default_factory=dict)
    function_steps: set[str] = field(default_factory=set)  # the SDK's @step functions
    translator: Translator = field(init=False)

    def __post_init__(self) -> None:
        self.translator = Translator(self.code.s3, self._rename)

    def _rename(self, ref: str) -> Any:
        head = ref.split(".")[1]
        if head in self.repacks and ref.endswith(".ModelArtifacts.S3ModelArtifacts"):
            return self.translator.json(self.repacks[head]["HyperParameters"].get("model_archive"))
        return None

    def value(self, value: Any) -> Any:
        """A SageMaker value as a forgeline value."""
        return self.translator.value(value)

    def runtime(self, step: str, kind: str, image: Any) -> ContainerRuntime:
        """The local runtime of a step's image, or Unmappable for a custom image."""
        runtime = self.images.runtime(image)
        if runtime is None:
            raise Unmappable(step, kind, f"image {image!r} is not one of SageMaker's framework containers; "
                                         "map it to a local Python with --image 'PATTERN=local' or "
                                         "--image 'PATTERN=requirements.txt'")
        return runtime

    def depends_on(self, names: Sequence[str] | None) -> list[str]:
        """DependsOn with folded steps replaced by the steps they depend on."""
        result: list[str] = []
        for name in names or []:
            for dep in self.folded_dependencies.get(name, [name]):
                if dep not in result:
                    result.append(dep)
        return result


Mapper = Callable[[Mapping[str, Any], ImportContext], Step | None]
MAPPERS: dict[str, Mapper] = {}


def mapper(kind: str) -> Callable[[Mapper], Mapper]:
    """Register the mapper of one SageMaker step type."""
    def register(function: Mapper) -> Mapper:
        MAPPERS[kind] = function
        return function
    return register


def map_step(request: Mapping[str, Any], ctx: ImportContext) -> Step | None:
    """The forgeline step for one SageMaker step (None: folded into others); Unmappable when there is none."""
    name, kind = str(request.get("Name")), str(request.get("Type"))
    if kind in UNMAPPABLE_KINDS:
        raise Unmappable(name, kind, UNMAPPABLE_KINDS[kind])
    if kind not in MAPPERS:
        raise Unmappable(name, kind, "this step type is unknown to forgeline's importer")
    try:
        return MAPPERS[kind](request, ctx)
    except Unmappable:
        raise
    except (ForgelineError, KeyError, TypeError, ValueError) as exc:
        reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise Unmappable(name, kind, reason) from None


def is_repack(request: Mapping[str, Any]) -> bool:
    """Whether a Training step is the SDK's repack of a model with its inference code."""
    program = json_text(request.get("Arguments", {}).get("HyperParameters", {}).get("sagemaker_program"))
    return request.get("Type") == "Training" and program == REPACK_PROGRAM


def fold(requests: Sequence[Mapping[str, Any]], ctx: ImportContext) -> None:
    """Record repack and Model steps (and what they depend on) before any other step is mapped."""
    for request in requests:
        if is_repack(request):
            ctx.repacks[request["Name"]] = request["Arguments"]
        if is_function_step(request):
            ctx.function_steps.add(request["Name"])
    for request in requests:
        if is_repack(request) or request.get("Type") == "Model":
            refs = _STEP_REFERENCE.findall(str(request.get("Arguments")))
            ctx.folded_dependencies[request["Name"]] = ctx.depends_on([*refs, *request.get("DependsOn", [])])
    for request in requests:
        if request.get("Type") == "Model":
            container = request["Arguments"].get("PrimaryContainer") or {}
            try:
                ctx.models[request["Name"]] = model_of(container, request["Name"], "Model", ctx)
            except Unmappable as exc:
                ctx.model_problems[request["Name"]] = exc.reason
            except (ForgelineError, KeyError, TypeError, ValueError) as exc:
                ctx.model_problems[request["Name"]] = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)


def common(request: Mapping[str, Any], ctx: ImportContext) -> dict[str, Any]:
    """Name, DependsOn, display name and description."""
    return {"name": request["Name"], "depends_on": ctx.depends_on(request.get("DependsOn")),
            "display_name": request.get("DisplayName"), "description": request.get("Description")}


def job_common(request: Mapping[str, Any], ctx: ImportContext) -> dict[str, Any]:
    """Common keywords plus CacheConfig and RetryPolicies."""
    kwargs = common(request, ctx)
    cache = request.get("CacheConfig")
    if cache is not None:
        kwargs["cache_config"] = CacheConfig(enable_caching=bool(cache.get("Enabled")),
                                             expire_after=duration(cache.get("ExpireAfter")))
    kwargs["retry_policies"] = [retry_policy_from_sagemaker(p) for p in request.get("RetryPolicies", [])]
    return kwargs


def duration(text: str | None) -> str | None:
    """An ISO 8601 duration; SageMaker's years and months become 365 and 30 days (forgeline counts days)."""
    if text is None:
        return None
    match = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(.*)", text)
    if match and (match.group(1) or match.group(2)):
        days = int(match.group(1) or 0) * 365 + int(match.group(2) or 0) * 30
        rest = match.group(3)
        extra = re.match(r"(?:(\d+)W)?(?:(\d+)D)?", rest)
        assert extra is not None  # the pattern matches the empty string
        days += int(extra.group(1) or 0) * 7 + int(extra.group(2) or 0)
        text = f"P{days}D{rest[extra.end():]}"
    parse_duration(text)
    return text


@mapper("Processing")
def _processing(request: Mapping[str, Any], ctx: ImportContext) -> Step:
    args, name = request["Arguments"], request["Name"]
    app = args.get("AppSpecification", {})
    runtime = ctx.runtime(name, "Processing", app.get("ImageUri"))
    entry = list(app.get("ContainerEntrypoint") or [])
    if len(entry) < 2 or PurePosixPath(entry[0]).name not in PYTHONS or not str(entry[1]).endswith(".py"):
        raise Unmappable(name, "Processing", f"its entrypoint {entry} is not `python3 <script>.py`; forgeline "
                                             "imports processing steps that run a Python script")
    script = PurePosixPath(entry[1])
    inputs: list[ProcessingInput] = []
    code = None
    for item in args.get("ProcessingInputs", []):
        s3 = item.get("S3Input")
        if s3 is None:
            raise Unmappable(name, "Processing", f"input {item.get('InputName')!r} reads a dataset definition "
                                                 "(Athena or Redshift); only S3 inputs can be mapped")
        destination = s3["LocalPath"]
        if code is None and isinstance(s3["S3Uri"], str) and script.parent == PurePosixPath(destination):
            code = ctx.code.script(s3["S3Uri"], f"step {name!r}")
            inputs.append(ProcessingInput(str(code), destination, item.get("InputName")))
        else:
            inputs.append(ProcessingInput(ctx.value(s3["S3Uri"]), destination, item.get("InputName")))
    if code is None:
        raise Unmappable(name, "Processing", f"its script {script} is not staged by any of its inputs")
    outputs = [ProcessingOutput(output_name=o["OutputName"], source=o["S3Output"]["LocalPath"],
                                destination=ctx.value(o["S3Output"]["S3Uri"]))
               for o in args.get("ProcessingOutputConfig", {}).get("Outputs", [])]
    return ProcessingStep(
        code=str(code), inputs=inputs, outputs=outputs,
        arguments=[*entry[2:], *ctx.value(app.get("ContainerArguments", []))],
        property_files=[PropertyFile.from_request(p) for p in request.get("PropertyFiles", [])],
        env=ctx.value(args.get("Environment", {})), requirements=runtime.requirements,
        **job_common(request, ctx),
    )


def _hyperparameter(value: Any, ctx: ImportContext) -> Any:
    decoded = json_text(value)
    if isinstance(decoded, (str, int, float, bool)):
        return decoded
    return ctx.value(value)  # an expression (Std:Join of a parameter), or a JSON text kept as written


@mapper("Training")
def _training(request: Mapping[str, Any], ctx: ImportContext) -> Step | None:
    if is_repack(request):
        return None
    args, name = request["Arguments"], request["Name"]
    spec = args.get("AlgorithmSpecification", {})
    if is_function_step(request):
        reason = unsupported(request)
        if reason is not None:
            raise Unmappable(name, "Training", f"a @step function, but {reason}")
        return function_step(request, ctx, job_common(request, ctx))
    if spec.get("ContainerEntrypoint"):
        raise Unmappable(name, "Training", "its container has its own entrypoint "
                                           f"{spec['ContainerEntrypoint']} (a custom program); map its image and "
                                           "name a script, or write it as a forgeline @step")
    if not spec.get("TrainingImage"):
        raise Unmappable(name, "Training", f"algorithm {spec.get('AlgorithmName')!r} (no image) has no local "
                                           "counterpart")
    runtime = ctx.runtime(name, "Training", spec["TrainingImage"])
    hyperparameters = dict(args.get("HyperParameters", {}))
    program = json_text(hyperparameters.get("sagemaker_program"))
    if program:
        source_dir = str(ctx.code.source_dir(json_text(hyperparameters.get("sagemaker_submit_directory")),
                                             program, f"step {name!r}"))
        entry_point = program
        hyperparameters = {k: _hyperparameter(v, ctx) for k, v in hyperparameters.items()
                           if not k.startswith("sagemaker_")}
    elif runtime.algorithm in ALGORITHM_SCRIPTS:
        script = ALGORITHM_SCRIPTS[runtime.algorithm]
        source_dir, entry_point = str(script.parent), script.name
        hyperparameters = {k: ctx.value(v) for k, v in hyperparameters.items()}
    else:
        raise Unmappable(name, "Training", f"image {spec['TrainingImage']!r} runs its own program and the step "
                                           "names no script (sagemaker_program)")
    channels = {}
    for channel in args.get("InputDataConfig", []):
        source = channel.get("DataSource", {}).get("S3DataSource")
        if source is None:
            raise Unmappable(name, "Training", f"channel {channel.get('ChannelName')!r} is not read from S3")
        channels[channel["ChannelName"]] = TrainingInput(ctx.value(source["S3Uri"]), channel.get("ContentType"))
    stopping = args.get("StoppingCondition", {})
    resources = args.get("ResourceConfig", {})
    return TrainingStep(
        entry_point=entry_point, source_dir=source_dir, hyperparameters=hyperparameters, inputs=channels,
        metric_definitions=spec.get("MetricDefinitions", []),
        checkpoint_uri=ctx.value(args.get("CheckpointConfig", {}).get("S3Uri")),
        max_run=stopping.get("MaxRuntimeInSeconds", 86_400), max_wait=stopping.get("MaxWaitTimeInSeconds"),
        use_spot_instances=bool(args.get("EnableManagedSpotTraining", False)),
        environment=ctx.value(args.get("Environment", {})),
        instance_type=ctx.value(resources.get("InstanceType")),
        instance_count=ctx.value(resources.get("InstanceCount", 1)),
        requirements=runtime.requirements, sagemaker_paths=True,
        **job_common(request, ctx),
    )


def model_of(container: Mapping[str, Any], step: str, kind: str, ctx: ImportContext) -> Model:
    """The forgeline Model of a SageMaker container: artifacts plus the inference code that serves them."""
    runtime = ctx.runtime(step, kind, container.get("Image"))
    data_json = container.get("ModelDataUrl")
    env = container.get("Environment") or {}
    program, submit = env.get("SAGEMAKER_PROGRAM"), env.get("SAGEMAKER_SUBMIT_DIRECTORY")
    data = ctx.value(data_json)
    if program:
        repack = _repack_of(data_json, ctx)
        if submit == MODEL_CODE_IN_ARCHIVE and repack is not None:
            script = json_text(repack["HyperParameters"].get("inference_script"))
            folder = json_text(repack["HyperParameters"].get("source_dir"))
            found = ctx.code.source_dir(folder if isinstance(folder, str) else None, script, f"step {step!r}")
            return Model(data, entry_point=script, source_dir=str(found))
        found = ctx.code.source_dir(submit if isinstance(submit, str) else None, program, f"step {step!r}")
        return Model(data, entry_point=program, source_dir=str(found))
    if runtime.algorithm in INFERENCE_SCRIPTS:
        script = INFERENCE_SCRIPTS[runtime.algorithm]
        return Model(data, entry_point=script.name, source_dir=str(script.parent))
    raise Unmappable(step, kind, f"model image {container.get('Image')!r} names no inference script "
                                 "(SAGEMAKER_PROGRAM)")


def _repack_of(data_json: Any, ctx: ImportContext) -> Mapping[str, Any] | None:
    ref = data_json.get("Get") if isinstance(data_json, Mapping) else None
    match = _STEP_REFERENCE.match(ref or "")
    return ctx.repacks.get(match.group(1)) if match else None


@mapper("Model")
def _model(request: Mapping[str, Any], ctx: ImportContext) -> Step | None:
    if request["Name"] in ctx.model_problems:
        raise Unmappable(request["Name"], "Model", ctx.model_problems[request["Name"]])
    return None  # folded into the Transform steps that use it (see fold)


@mapper("RegisterModel")
def _register(request: Mapping[str, Any], ctx: ImportContext) -> Step:
    args, name = request["Arguments"], request["Name"]
    spec = args.get("InferenceSpecification", {})
    containers = spec.get("Containers", [])
    if len(containers) != 1:
        raise Unmappable(name, "RegisterModel", f"it has {len(containers)} containers; forgeline registers one")
    report = args.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    kwargs = common(request, ctx)
    kwargs.pop("description")
    return RegisterModel(
        model=model_of(containers[0], name, "RegisterModel", ctx),
        model_package_group_name=ctx.value(args["ModelPackageGroupName"]),
        approval_status=ctx.value(args.get("ModelApprovalStatus", "PendingManualApproval")),
        content_types=spec.get("SupportedContentTypes"), response_types=spec.get("SupportedResponseMIMETypes"),
        model_metrics=None if report is None else ModelMetrics(ctx.value(report)),
        description=ctx.value(args.get("ModelPackageDescription")), **kwargs,
    )


@mapper("Transform")
def _transform(request: Mapping[str, Any], ctx: ImportContext) -> Step:
    args, name = request["Arguments"], request["Name"]
    reference = args.get("ModelName")
    ref = reference.get("Get", "") if isinstance(reference, Mapping) else ""
    match = re.fullmatch(r"Steps\.([A-Za-z0-9_\-]+)\.ModelName", ref)
    if not match or match.group(1) not in ctx.models:
        raise Unmappable(name, "Transform", f"its model {reference!r} is not created by a Model step of this "
                                            "pipeline")
    source = args["TransformInput"]
    if source.get("CompressionType", "None") != "None":
        raise Unmappable(name, "Transform", "compressed transform input is not supported")
    output = args.get("TransformOutput", {})
    count = args.get("TransformResources", {}).get("InstanceCount", 1)
    return TransformStep(
        model=ctx.models[match.group(1)],
        inputs=TransformInput(ctx.value(source["DataSource"]["S3DataSource"]["S3Uri"]),
                              source.get("ContentType") or "text/csv", source.get("SplitType") or "None"),
        strategy=args.get("BatchStrategy", "MultiRecord"), max_payload_mb=args.get("MaxPayloadInMB", 6),
        instance_count=ctx.value(count),
        assemble_with=output.get("AssembleWith", "None"), accept=output.get("Accept"),
        join_source=args.get("DataProcessing", {}).get("JoinSource", "None"),
        output_path=ctx.value(output.get("S3OutputPath")), env=ctx.value(args.get("Environment", {})),
        **job_common(request, ctx),
    )


@mapper("Condition")
def _condition(request: Mapping[str, Any], ctx: ImportContext) -> Step:
    args = request["Arguments"]
    branches = {key: [s for s in (map_step(r, ctx) for r in args.get(key, [])) if s is not None]
                for key in ("IfSteps", "ElseSteps")}
    return ConditionStep(
        conditions=[Condition.from_request(ctx.translator.json(c)) for c in args.get("Conditions", [])],
        if_steps=branches["IfSteps"], else_steps=branches["ElseSteps"], **common(request, ctx),
    )


@mapper("Fail")
def _fail(request: Mapping[str, Any], ctx: ImportContext) -> Step:
    return FailStep(error_message=ctx.value(request["Arguments"].get("ErrorMessage", "")), **common(request, ctx))


@mapper("Lambda")
def _lambda(request: Mapping[str, Any], ctx: ImportContext) -> Step:
    name, arn = request["Name"], request.get("FunctionArn")
    target = ctx.lambdas.get(str(arn))
    if target is None:
        raise Unmappable(name, "Lambda", f"function {arn} needs a local Python handler: "
                                         f"--lambda '{arn}=module:function'")
    module, _, function = target.partition(":")
    if not module or not function:
        raise Unmappable(name, "Lambda", f"handler {target!r} must be module:function")
    file = ctx.code.unique(module.replace(".", "/") + ".py", f"Lambda step {name!r}")
    # the handler is called as on AWS Lambda: handler(event, context), the step's Arguments being the event
    return FunctionStep(function={"Name": function, "Module": None, "File": str(file)},
                        args=[ctx.value(request.get("Arguments", {})), None], **common(request, ctx))
