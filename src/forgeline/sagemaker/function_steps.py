"""The SDK's ``@step`` functions → forgeline function steps that run the stored function here.

In a definition a @step is a Training step whose container runs the SDK's remote-function driver
(``/opt/ml/input/data/sagemaker_remote_function_bootstrap/job_driver.sh``) with ``ContainerArguments`` naming
where the pickled function lives (``--s3_base_uri``, ``--pipeline_step_name``, ``--func_step_s3_dir``) and what
its placeholders resolve to (``--property_references`` pairs). It becomes a forgeline FunctionStep calling
:func:`forgeline.sagemaker.stored_functions.run_stored_function`, whose arguments are those references as
forgeline expressions; another @step's ``DelayedReturn`` is that step's return value (``Steps.X.return``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from forgeline.workflow.expressions import Property, parse_value
from forgeline.workflow.steps import FunctionStep

if TYPE_CHECKING:
    from forgeline.sagemaker.steps import ImportContext

DRIVER_FOLDER = "/opt/ml/input/data/sagemaker_remote_function_bootstrap/"
RUNNER = {"Name": "run_stored_function", "Module": "forgeline.sagemaker.stored_functions", "File": None}
SDK_REQUIREMENTS = re.compile(r"^sagemaker_requirements_\w+\.txt$")
"""The requirements file the SDK writes itself (only ``sagemaker``): nothing the function needs."""
RESULT_PATH = re.compile(r"^Steps\.([A-Za-z0-9_\-]+)\.OutputDataConfig\.S3OutputPath$")

UNSUPPORTED_OPTIONS = {
    "--spark_config": "it runs the function as a Spark application",
    "--run_in_context": "it runs inside a SageMaker Experiments run, which needs the AWS API",
}


def is_function_step(request: Mapping[str, Any]) -> bool:
    """Whether a step is an SDK @step function (a Training job running the SDK's remote-function driver)."""
    spec = request.get("Arguments", {}).get("AlgorithmSpecification", {})
    entry = spec.get("ContainerEntrypoint") or []
    return request.get("Type") == "Training" and any(str(e).startswith(DRIVER_FOLDER) for e in entry)


def container_options(arguments: Sequence[Any]) -> dict[str, Any]:
    """``--name value`` pairs of the container arguments; ``--property_references`` takes every value up to the
    next option, as pairs of a reference and its value."""
    options: dict[str, Any] = {}
    name = None
    for item in arguments:
        if isinstance(item, str) and item.startswith("--"):
            name = item
            if name == "--property_references":
                options[name] = []
            continue
        if name == "--property_references":
            options[name].append(item)
        elif name is not None:
            options[name] = item
            name = None
    return options


def unsupported(request: Mapping[str, Any]) -> str | None:
    """Why a @step cannot run here, or None."""
    options = container_options(request["Arguments"]["AlgorithmSpecification"].get("ContainerArguments", []))
    entry = request["Arguments"]["AlgorithmSpecification"].get("ContainerEntrypoint", [])
    if any("spark" in str(e) for e in entry):
        return UNSUPPORTED_OPTIONS["--spark_config"]
    found = [text for option, text in UNSUPPORTED_OPTIONS.items() if option in options]
    if found:
        return found[0]
    if "--s3_base_uri" not in options or "--pipeline_step_name" not in options:
        return "its container arguments name no stored function (--s3_base_uri, --pipeline_step_name)"
    return None


def user_requirements(request: Mapping[str, Any]) -> str | None:
    """The dependencies file a @step installs before it runs (None: the SDK's own, or none)."""
    options = container_options(request["Arguments"]["AlgorithmSpecification"].get("ContainerArguments", []))
    try:
        settings = json.loads(options.get("--dependency_settings") or "{}")
    except ValueError:
        return None
    file = settings.get("dependency_file") if isinstance(settings, dict) else None
    return None if not file or SDK_REQUIREMENTS.match(file) else str(file)


def function_step(request: Mapping[str, Any], ctx: ImportContext, job_kwargs: Mapping[str, Any]) -> FunctionStep:
    """The forgeline step of one SDK @step (``job_kwargs``: name, DependsOn, caching and retries, mapped)."""
    args = request["Arguments"]
    options = container_options(args["AlgorithmSpecification"].get("ContainerArguments", []))
    base = str(options["--s3_base_uri"]).rstrip("/")
    step_name = str(options["--pipeline_step_name"])
    stored = "/".join(p for p in (base, step_name, options.get("--func_step_s3_dir")) if p)
    pairs = options.get("--property_references", [])
    references = {str(key): _reference(str(key), value, ctx) for key, value in zip(pairs[::2], pairs[1::2])}
    resources = args.get("ResourceConfig", {})
    environment = ctx.translator.json(args.get("Environment") or {})
    return FunctionStep(
        function=RUNNER,
        kwargs={"function_uri": ctx.translator.s3.map(stored),
                "results_uri": ctx.value(args["OutputDataConfig"]["S3OutputPath"]),
                "s3_base_uri": ctx.translator.s3.map(base), "references": references,
                "code_root": str(ctx.code.code_root),
                "results_json": str(options.get("--serialize_output_to_json", "")).lower() == "true"},
        env=parse_value(environment),
        instance_type=ctx.value(resources.get("InstanceType")),
        instance_count=ctx.value(resources.get("InstanceCount")),
        **job_kwargs,
    )


def _reference(key: str, value: Any, ctx: ImportContext) -> Any:
    """What one property reference resolves to: another @step's return value, or the referenced value itself
    (the SDK writes it as a text Join; the value is what the placeholder's type coerces)."""
    match = RESULT_PATH.match(key)
    if match and match.group(1) in ctx.function_steps:
        return Property(match.group(1), ("return",))
    return ctx.value({"Get": key})
