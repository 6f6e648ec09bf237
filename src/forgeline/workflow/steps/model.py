"""RegisterModel: record a trained model, its inference code, metrics and lineage as a versioned model package."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow.expressions import Expression, parse_value, serialize
from forgeline.workflow.models import check_group_name, parse_approval_status
from forgeline.workflow.steps.base import Step, StepRef
from forgeline.workflow.steps.processing import PropertyFile, script_files

PACKAGE_PROPERTIES = frozenset(
    {"model_package_arn", "model_package_version", "model_package_group_name", "model_approval_status", "model_data",
     "model_package"}
)
"""What a RegisterModel step exposes once it has run (``model_package_arn`` is ``<group>/<version>``;
``model_package`` names it the same way, for DeployStep(model=register.properties.model_package))."""


@dataclass(frozen=True)
class Model:
    """Model artifacts (``model.tar.gz``, a folder or a file) and the inference code that serves them."""

    model_data: Any
    entry_point: str | None = None
    source_dir: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model_data, (str, Expression)) or self.model_data == "":
            raise PipelineDefinitionError(
                f"Model needs model_data: a path, URI or step property, got {self.model_data!r}"
            )
        for option in ("entry_point", "source_dir"):
            value = getattr(self, option)
            if value is not None and (not isinstance(value, str) or not value):
                raise PipelineDefinitionError(f"Model {option} must be a non-empty path, got {value!r}")
        if self.source_dir is not None and self.entry_point is None:
            raise PipelineDefinitionError(
                f"Model source_dir {self.source_dir!r} needs an entry_point: the file in it that defines "
                "model_fn / input_fn / predict_fn / output_fn"
            )

    def to_request(self) -> dict[str, Any]:
        """One container of an ``InferenceSpecification``: ``{"ModelDataUrl", "EntryPoint", "SourceDir"}``."""
        return {"ModelDataUrl": serialize(self.model_data), "EntryPoint": self.entry_point,
                "SourceDir": self.source_dir}

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> Model:
        """Inverse of :meth:`to_request`."""
        return cls(parse_value(request["ModelDataUrl"]), request.get("EntryPoint"), request.get("SourceDir"))

    def code_files(self) -> list[str]:
        """The source folder and the entry point inside it, or the entry point alone."""
        return script_files(self.entry_point, self.source_dir) if self.entry_point else []


@dataclass(frozen=True)
class ModelMetrics:
    """A model's quality report: a PropertyFile of an upstream step, or the path/URI of a JSON file."""

    source: PropertyFile | str | Expression

    def __post_init__(self) -> None:
        if not isinstance(self.source, (PropertyFile, str, Expression)) or self.source == "":
            raise PipelineDefinitionError(
                f"ModelMetrics needs a PropertyFile or the URI of a JSON report, got {self.source!r}"
            )

    def to_request(self) -> dict[str, Any]:
        """``{"PropertyFile": {...}}`` or ``{"ReportUri": ...}``."""
        if isinstance(self.source, PropertyFile):
            return {"PropertyFile": self.source.to_request()}
        return {"ReportUri": serialize(self.source)}

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> ModelMetrics:
        """Inverse of :meth:`to_request`."""
        if "PropertyFile" in request:
            return cls(PropertyFile.from_request(request["PropertyFile"]))
        return cls(parse_value(request["ReportUri"]))


def _media_types(step_name: str, option: str, values: Sequence[str] | None) -> list[str]:
    checked = list(values or [])
    for value in checked:
        if not isinstance(value, str) or "/" not in value:
            raise PipelineDefinitionError(
                f"step {step_name!r}: {option} must be MIME types like 'application/json', got {value!r}"
            )
    return checked


class RegisterModel(Step):
    """Register ``model`` as the next version of a model package group (performed by the orchestrator itself)."""

    step_type = "RegisterModel"
    exposed_properties = PACKAGE_PROPERTIES

    def __init__(
        self,
        name: str,
        model: Model,
        model_package_group_name: str | Expression,
        approval_status: str | Expression = "PendingManualApproval",
        content_types: Sequence[str] | None = None,
        response_types: Sequence[str] | None = None,
        model_metrics: ModelMetrics | None = None,
        description: Any = None,
        depends_on: Sequence[StepRef] | None = None,
        display_name: str | None = None,
        accepts_batches: bool = False,
    ) -> None:
        super().__init__(name, depends_on, display_name)
        if not isinstance(accepts_batches, bool):
            raise PipelineDefinitionError(f"step {name!r}: accepts_batches must be True or False")
        if not isinstance(model, Model):
            raise PipelineDefinitionError(f"step {name!r}: model must be a Model, got {model!r}")
        if isinstance(model_package_group_name, str):
            check_group_name(model_package_group_name)
        elif not isinstance(model_package_group_name, Expression):
            raise PipelineDefinitionError(f"step {name!r}: model_package_group_name must be a name or expression")
        if not isinstance(approval_status, Expression):
            approval_status = parse_approval_status(approval_status).value
        if model_metrics is not None and not isinstance(model_metrics, ModelMetrics):
            raise PipelineDefinitionError(f"step {name!r}: model_metrics must be a ModelMetrics")
        self.model = model
        self.model_package_group_name = model_package_group_name
        self.approval_status = approval_status
        self.content_types = _media_types(name, "content_types", content_types)
        self.response_types = _media_types(name, "response_types", response_types)
        self.model_metrics = model_metrics
        self.model_package_description = description
        # predict_fn is row-wise: real-time serving may call it once on the rows of several requests
        self.accepts_batches = accepts_batches

    def arguments(self) -> dict[str, Any]:
        """SageMaker's CreateModelPackage request, with forgeline's inference code fields."""
        arguments: dict[str, Any] = {
            "ModelPackageGroupName": serialize(self.model_package_group_name),
            "ModelApprovalStatus": serialize(self.approval_status),
            "InferenceSpecification": {
                "Containers": [self.model.to_request()],
                "SupportedContentTypes": list(self.content_types),
                "SupportedResponseMIMETypes": list(self.response_types),
            },
        }
        if self.accepts_batches:
            arguments["InferenceSpecification"]["AcceptsBatches"] = True
        if self.model_metrics is not None:
            arguments["ModelMetrics"] = self.model_metrics.to_request()
        if self.model_package_description is not None:
            arguments["ModelPackageDescription"] = serialize(self.model_package_description)
        return arguments

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> RegisterModel:
        args = request["Arguments"]
        spec = args.get("InferenceSpecification", {})
        containers = spec.get("Containers", [])
        if len(containers) != 1:
            raise PipelineDefinitionError(
                f"step {request.get('Name')!r}: a RegisterModel needs exactly one container, got {len(containers)}"
            )
        kwargs = cls.common_kwargs(request)
        kwargs.pop("description")  # a RegisterModel's description is the package's, in its Arguments
        metrics = args.get("ModelMetrics")
        return cls(
            model=Model.from_request(containers[0]),
            model_package_group_name=parse_value(args["ModelPackageGroupName"]),
            approval_status=parse_value(args.get("ModelApprovalStatus", "PendingManualApproval")),
            content_types=spec.get("SupportedContentTypes"),
            response_types=spec.get("SupportedResponseMIMETypes"),
            model_metrics=None if metrics is None else ModelMetrics.from_request(metrics),
            description=parse_value(args.get("ModelPackageDescription")),
            accepts_batches=bool(spec.get("AcceptsBatches", False)),
            **kwargs,
        )

    def children(self) -> Iterable[Any]:
        """Model data, group, approval status, description and a metrics report URI (when it is one)."""
        values = [self.model.model_data, self.model_package_group_name, self.approval_status,
                  self.model_package_description]
        if self.model_metrics is not None and not isinstance(self.model_metrics.source, PropertyFile):
            values.append(self.model_metrics.source)
        return values

    def check_property_path(self, path: tuple[Any, ...]) -> str | None:
        """The package properties are plain values: nothing below them."""
        problem = super().check_property_path(path)
        if problem is None and len(path) > 1:
            return f"step {self.name!r}: {path[0]} is a plain value and has no property {path[1]!r}"
        return problem

    def code_files(self) -> list[str]:
        """The inference code (checked to exist when the pipeline is defined)."""
        return self.model.code_files()
