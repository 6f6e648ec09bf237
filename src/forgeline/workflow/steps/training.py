"""TrainingStep: a training script in script mode (SageMaker's contract) with metrics, checkpoints, spot restarts."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow.expressions import Expression, check_name, parse_value, serialize
from forgeline.workflow.policies import CacheConfig, RetryPolicy
from forgeline.workflow.steps.base import JobStep, StepRef, serialize_env
from forgeline.workflow.steps.interpreter import Interpreter
from forgeline.workflow.steps.processing import script_files

DEFAULT_MAX_RUN_SECONDS = 86_400
"""SageMaker's default MaxRuntimeInSeconds: one day."""

DEFAULT_CHANNEL = "training"
"""The channel of an ``inputs`` given as one value instead of a mapping (as in SageMaker)."""

TRAINING_OUTPUTS = ("model", "output_data")
"""The step's outputs: the packed model dir (model.tar.gz) and the output data dir."""


@dataclass(frozen=True)
class TrainingInput:
    """The data of one channel: a file or folder (path, artifact URI or expression) staged for the script."""

    s3_data: Any
    content_type: str | None = None

    def to_request(self) -> dict[str, Any]:
        """``{"DataSource", "ContentType"}``."""
        return {"DataSource": serialize(self.s3_data), "ContentType": self.content_type}


def check_metric_definitions(step_name: str, definitions: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Refuse metric definitions without a name, with a duplicate name, or whose regex has no capture group."""
    checked: list[dict[str, str]] = []
    for definition in definitions:
        if not isinstance(definition, Mapping) or set(definition) != {"Name", "Regex"}:
            raise PipelineDefinitionError(
                f"step {step_name!r}: each metric definition is {{'Name': ..., 'Regex': ...}}, got {definition!r}"
            )
        name, regex = definition["Name"], definition["Regex"]
        if not isinstance(name, str) or not name or "'" in name or "]" in name:
            raise PipelineDefinitionError(f"step {step_name!r}: invalid metric name {name!r}")
        try:
            groups = re.compile(regex).groups
        except (re.error, TypeError) as exc:
            raise PipelineDefinitionError(
                f"step {step_name!r}: metric {name!r} has a regex that does not compile ({regex!r}): {exc}"
            ) from None
        if groups < 1:
            raise PipelineDefinitionError(
                f"step {step_name!r}: metric {name!r} regex {regex!r} needs a capture group around the value, "
                r"e.g. 'loss ([0-9.]+)'"
            )
        if any(c["Name"] == name for c in checked):
            raise PipelineDefinitionError(f"step {step_name!r}: metric {name!r} is defined twice")
        checked.append({"Name": name, "Regex": regex})
    return checked


def _channels(step_name: str, inputs: Mapping[str, Any] | Any) -> dict[str, TrainingInput]:
    if inputs is None:
        return {}
    if not isinstance(inputs, Mapping):
        inputs = {DEFAULT_CHANNEL: inputs}
    channels: dict[str, TrainingInput] = {}
    for name, value in inputs.items():
        check_name(f"channel (step {step_name!r})", name)
        channels[name] = value if isinstance(value, TrainingInput) else TrainingInput(value)
        if not isinstance(channels[name].s3_data, (str, Expression)):
            raise PipelineDefinitionError(
                f"step {step_name!r}: channel {name!r} needs a path, URI or expression as its data"
            )
    return channels


def _seconds(step_name: str, option: str, value: Any) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise PipelineDefinitionError(f"step {step_name!r}: {option} must be a positive number of seconds")
    return value


class TrainingStep(JobStep):
    """Run ``python <entry_point> --<hyperparameter> <value> ...`` with SageMaker's script-mode environment."""

    step_type = "Training"
    exposed_properties = frozenset({"model_artifacts", "metrics", "outputs"})

    def __init__(
        self,
        name: str,
        entry_point: str,
        source_dir: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        inputs: Mapping[str, TrainingInput | Any] | TrainingInput | Any = None,
        metric_definitions: Sequence[Mapping[str, Any]] | None = None,
        checkpoint_uri: Any = None,
        max_run: int | float = DEFAULT_MAX_RUN_SECONDS,
        use_spot_instances: bool = False,
        max_wait: int | float | None = None,
        environment: Mapping[str, Any] | None = None,
        instance_type: Any = None,
        instance_count: Any = 1,
        requirements: str | None = None,
        python: str | None = None,
        sagemaker_paths: bool = False,
        depends_on: Sequence[StepRef] | None = None,
        display_name: str | None = None,
        description: str | None = None,
        cache_config: CacheConfig | None = None,
        retry_policies: Sequence[RetryPolicy] | None = None,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, depends_on, display_name, description, cache_config, retry_policies, resources)
        if not isinstance(entry_point, str) or not entry_point:
            raise PipelineDefinitionError(f"step {name!r}: entry_point must be the path of a Python script")
        self.entry_point = entry_point
        self.source_dir = source_dir
        self.hyperparameters = dict(hyperparameters or {})
        self.inputs = _channels(name, inputs)
        self.metric_definitions = check_metric_definitions(name, metric_definitions or [])
        self.checkpoint_uri = checkpoint_uri
        self.max_run = _seconds(name, "max_run", max_run)
        self.use_spot_instances = bool(use_spot_instances)
        self.max_wait = _seconds(name, "max_wait", max_wait)
        self.environment = dict(environment or {})
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.interpreter = Interpreter(requirements, python).check(name)
        self.sagemaker_paths = bool(sagemaker_paths)  # the script sees its job directory at /opt/ml
        self._check()

    def _check(self) -> None:
        if self.use_spot_instances and self.max_wait is None:
            raise PipelineDefinitionError(
                f"step {self.name!r}: use_spot_instances needs max_wait, the seconds after the first start past "
                "which an interrupted job is not restarted"
            )
        if self.max_wait is not None and self.max_run is not None and self.max_wait < self.max_run:
            raise PipelineDefinitionError(
                f"step {self.name!r}: max_wait ({self.max_wait:g} s) must be at least max_run ({self.max_run:g} s)"
            )
        for key, value in self.hyperparameters.items():
            if not isinstance(key, str) or not key:
                raise PipelineDefinitionError(f"step {self.name!r}: hyperparameter names must be strings")
            if not isinstance(value, (str, int, float, bool, Expression)):
                raise PipelineDefinitionError(
                    f"step {self.name!r}: hyperparameter {key!r} must be a string, number, boolean or expression"
                )
        if self.checkpoint_uri is not None and not isinstance(self.checkpoint_uri, (str, Expression)):
            raise PipelineDefinitionError(f"step {self.name!r}: checkpoint_uri must be a path, URI or expression")

    def arguments(self) -> dict[str, Any]:
        """Entry point, channels, hyperparameters, metrics, checkpoints, limits and resources."""
        return {
            "EntryPoint": self.entry_point,
            "SourceDir": self.source_dir,
            "HyperParameters": serialize(self.hyperparameters),
            "InputDataConfig": [{"ChannelName": name, **channel.to_request()}
                                for name, channel in self.inputs.items()],
            "MetricDefinitions": self.metric_definitions,
            "CheckpointConfig": {"S3Uri": serialize(self.checkpoint_uri)},
            "StoppingCondition": {"MaxRuntimeInSeconds": self.max_run, "MaxWaitTimeInSeconds": self.max_wait},
            "EnableManagedSpotTraining": self.use_spot_instances,
            "Environment": serialize_env(self.environment, self.name),
            "ResourceConfig": {"InstanceType": serialize(self.instance_type),
                               "InstanceCount": serialize(self.instance_count)},
            **self.interpreter.to_request(),
            **({"SageMakerPaths": True} if self.sagemaker_paths else {}),
        }

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> TrainingStep:
        args = request["Arguments"]
        stopping = args.get("StoppingCondition", {})
        resources = args.get("ResourceConfig", {})
        return cls(
            entry_point=args["EntryPoint"],
            source_dir=args.get("SourceDir"),
            hyperparameters=parse_value(args.get("HyperParameters", {})),
            inputs={c["ChannelName"]: TrainingInput(parse_value(c["DataSource"]), c.get("ContentType"))
                    for c in args.get("InputDataConfig", [])},
            metric_definitions=args.get("MetricDefinitions", []),
            checkpoint_uri=parse_value(args.get("CheckpointConfig", {}).get("S3Uri")),
            max_run=stopping.get("MaxRuntimeInSeconds"),
            use_spot_instances=args.get("EnableManagedSpotTraining", False),
            max_wait=stopping.get("MaxWaitTimeInSeconds"),
            environment=parse_value(args.get("Environment", {})),
            instance_type=parse_value(resources.get("InstanceType")),
            instance_count=parse_value(resources.get("InstanceCount", 1)),
            **asdict(Interpreter.from_request(args)),
            sagemaker_paths=bool(args.get("SageMakerPaths", False)),
            **cls.common_kwargs(request),
        )

    def children(self) -> Iterable[Any]:
        """Channel data, hyperparameters, checkpoint URI, environment values and resources."""
        return [*(c.s3_data for c in self.inputs.values()), *self.hyperparameters.values(), self.checkpoint_uri,
                *self.environment.values(), self.instance_type, self.instance_count]

    def check_property_path(self, path: tuple[Any, ...]) -> str | None:
        """``model_artifacts``, ``metrics[<defined metric>]`` and ``outputs['model'|'output_data']``."""
        problem = super().check_property_path(path)
        if problem is not None or len(path) < 2:
            return problem
        if path[0] == "model_artifacts":
            return f"step {self.name!r}: model_artifacts is a URI and has no property {path[1]!r}"
        known = [d["Name"] for d in self.metric_definitions] if path[0] == "metrics" else list(TRAINING_OUTPUTS)
        if path[1] not in known:
            what = "metric" if path[0] == "metrics" else "output"
            return f"step {self.name!r} has no {what} {path[1]!r} (it has: {', '.join(known) or 'none'})"
        return None

    def code_files(self) -> list[str]:
        """The entry point (inside ``source_dir`` when one is given) and the requirements file."""
        return [*script_files(self.entry_point, self.source_dir), *self.interpreter.files()]
