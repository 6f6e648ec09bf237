"""TransformStep: batch predictions over every file of an input, through a model's inference contract."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forgeline.errors import ExpressionError, PipelineDefinitionError
from forgeline.workflow.expressions import Expression, parse_value, serialize
from forgeline.workflow.models import parse_package_arn
from forgeline.workflow.policies import CacheConfig, RetryPolicy
from forgeline.workflow.steps.base import JobStep, StepRef, serialize_env
from forgeline.workflow.steps.model import Model

CHOICES = {
    "split_type": ("Line", "None"),
    "strategy": ("MultiRecord", "SingleRecord"),
    "assemble_with": ("Line", "None"),
    "join_source": ("Input", "None"),
}


@dataclass(frozen=True)
class TransformInput:
    """The data to predict on (a file or a folder of files) and how to read it."""

    data: Any
    content_type: str = "text/csv"
    split_type: str = "Line"

    def to_request(self) -> dict[str, Any]:
        """``{"DataSource", "ContentType", "SplitType"}``."""
        return {"DataSource": serialize(self.data), "ContentType": self.content_type, "SplitType": self.split_type}

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> TransformInput:
        """Inverse of :meth:`to_request`."""
        return cls(parse_value(request["DataSource"]), request.get("ContentType", "text/csv"),
                   request.get("SplitType", "Line"))


class TransformStep(JobStep):
    """Predict on every record of every input file with ``instance_count`` workers; one output file per input."""

    step_type = "Transform"
    exposed_properties = frozenset({"output_uri", "outputs", "model_package_arn", "model_data"})

    def __init__(
        self,
        name: str,
        model: Any,
        inputs: TransformInput,
        strategy: str = "MultiRecord",
        max_payload_mb: float = 6,
        instance_count: Any = 1,
        instance_type: str | None = None,
        assemble_with: str = "Line",
        accept: str | None = None,
        join_source: str = "None",
        output_path: Any = None,
        env: Mapping[str, Any] | None = None,
        depends_on: Sequence[StepRef] | None = None,
        display_name: str | None = None,
        description: str | None = None,
        cache_config: CacheConfig | None = None,
        retry_policies: Sequence[RetryPolicy] | None = None,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, depends_on, display_name, description, cache_config, retry_policies, resources)
        if not isinstance(model, (Model, Expression, str)):
            raise PipelineDefinitionError(
                f"step {name!r}: model must be a Model(...), ModelPackage.latest_approved(...) or "
                f"a package id like 'group/3', got {model!r}"
            )
        if isinstance(model, str) and parse_package_arn(model) is None:
            raise PipelineDefinitionError(
                f"step {name!r}: model {model!r} is not a registered package id like 'group/3'"
            )
        if not isinstance(inputs, TransformInput):
            raise PipelineDefinitionError(f"step {name!r}: inputs must be a TransformInput")
        self.model = model
        self.inputs = inputs
        self.strategy = strategy
        self.max_payload_mb = max_payload_mb
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.assemble_with = assemble_with
        self.accept = accept
        self.join_source = join_source
        self.output_path = output_path
        self.env = dict(env or {})
        self._check()

    def _check(self) -> None:
        values = {"split_type": self.inputs.split_type, "strategy": self.strategy,
                  "assemble_with": self.assemble_with, "join_source": self.join_source}
        for option, value in values.items():
            if value not in CHOICES[option]:
                raise PipelineDefinitionError(
                    f"step {self.name!r}: {option} must be one of {', '.join(CHOICES[option])}, got {value!r}"
                )
        if not isinstance(self.instance_count, Expression):  # a parameter is checked once it has a value
            try:
                self.workers(self.instance_count)
            except ExpressionError as exc:
                raise PipelineDefinitionError(str(exc)) from None
        if not isinstance(self.max_payload_mb, (int, float)) or self.max_payload_mb <= 0:
            raise PipelineDefinitionError(f"step {self.name!r}: max_payload_mb must be positive")
        if self.join_source == "Input" and self.assemble_with != "Line":
            raise PipelineDefinitionError(
                f"step {self.name!r}: join_source='Input' needs assemble_with='Line' (one output line per record)"
            )

    def arguments(self) -> dict[str, Any]:
        """Model, input, batching and assembly options."""
        model = self.model.to_request() if isinstance(self.model, Model) else {"ModelPackage": serialize(self.model)}
        return {
            "Model": model,
            "TransformInput": self.inputs.to_request(),
            "BatchStrategy": self.strategy,
            "MaxPayloadInMB": self.max_payload_mb,
            "InstanceCount": serialize(self.instance_count),
            "InstanceType": self.instance_type,
            "AssembleWith": self.assemble_with,
            "Accept": self.accept,
            "JoinSource": self.join_source,
            "OutputPath": serialize(self.output_path),
            "Environment": serialize_env(self.env, self.name),
        }

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> TransformStep:
        args = request["Arguments"]
        model_request = args["Model"]
        model: Any = (parse_value(model_request["ModelPackage"]) if "ModelPackage" in model_request
                      else Model.from_request(model_request))
        return cls(
            model=model, inputs=TransformInput.from_request(args["TransformInput"]),
            strategy=args.get("BatchStrategy", "MultiRecord"), max_payload_mb=args.get("MaxPayloadInMB", 6),
            instance_count=parse_value(args.get("InstanceCount", 1)), instance_type=args.get("InstanceType"),
            assemble_with=args.get("AssembleWith", "Line"), accept=args.get("Accept"),
            join_source=args.get("JoinSource", "None"), output_path=parse_value(args.get("OutputPath")),
            env=parse_value(args.get("Environment", {})), **cls.common_kwargs(request),
        )

    def children(self) -> Iterable[Any]:
        """Model data, the package expression, the input data, the output path and environment values."""
        model = [self.model.model_data] if isinstance(self.model, Model) else [self.model]
        return [*model, self.inputs.data, self.output_path, *self.env.values(), self.instance_count]

    def workers(self, instance_count: Any) -> int:
        """The number of workers for ``instance_count`` (resolved when it was a parameter); ExpressionError
        unless it is a positive integer."""
        if isinstance(instance_count, bool) or not isinstance(instance_count, int) or instance_count < 1:
            raise ExpressionError(f"step {self.name!r}: instance_count must be a positive integer, got "
                                  f"{instance_count!r}")
        return instance_count

    def code_files(self) -> list[str]:
        """The inference code of a Model given inline."""
        return self.model.code_files() if isinstance(self.model, Model) else []

