"""ProcessingStep: run a Python script in a fresh job directory with staged inputs and collected outputs."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow.expressions import Expression, parse_value, serialize
from forgeline.workflow.policies import CacheConfig, RetryPolicy
from forgeline.workflow.steps.base import JobStep, StepRef, serialize_env
from forgeline.workflow.steps.interpreter import Interpreter

SAGEMAKER_ROOT = "/opt/ml"
"""SageMaker's container root: absolute paths under it mean the same place inside the job directory."""


def job_relative(path: str) -> str:
    """A checked job path relative to the job directory (``/opt/ml/processing/x`` is ``processing/x``)."""
    return posixpath.relpath(path, SAGEMAKER_ROOT) if path.startswith(SAGEMAKER_ROOT + "/") else path


def check_relative(kind: str, step_name: str, path: str) -> str:
    """Refuse job-directory paths that are absolute (outside /opt/ml) or climb out of the job directory."""
    if not isinstance(path, str) or not path:
        raise PipelineDefinitionError(f"step {step_name!r}: {kind} must be a non-empty relative path")
    normal = posixpath.normpath(path)
    if normal.startswith(SAGEMAKER_ROOT + "/"):
        return normal  # SageMaker's spelling: the job sees its directory at /opt/ml
    if PurePosixPath(path).is_absolute() or normal == ".." or normal.startswith("../"):
        raise PipelineDefinitionError(
            f"step {step_name!r}: {kind} {path!r} must be relative to the job directory or under /opt/ml/"
        )
    return normal


@dataclass(frozen=True)
class ProcessingInput:
    """A file or folder staged into the job directory at ``destination`` before the script runs."""

    source: Any
    destination: str
    input_name: str | None = None

    def to_request(self) -> dict[str, Any]:
        """``{"InputName", "Source", "Destination"}``."""
        return {"InputName": self.input_name, "Source": serialize(self.source), "Destination": self.destination}


@dataclass(frozen=True)
class ProcessingOutput:
    """A folder of the job directory stored as an artifact after the script succeeds.

    A job that leaves it empty fails, naming it, unless it is ``optional`` (then it is stored empty).
    """

    output_name: str
    source: str
    destination: Any = None
    optional: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.optional, bool):
            raise PipelineDefinitionError(
                f"ProcessingOutput {self.output_name!r}: optional must be True or False, not {self.optional!r}")

    def to_request(self) -> dict[str, Any]:
        """``{"OutputName", "Source", "Destination"}``, plus ``"Optional": true`` for an optional output."""
        request: dict[str, Any] = {"OutputName": self.output_name, "Source": self.source,
                                   "Destination": serialize(self.destination)}
        if self.optional:
            request["Optional"] = True
        return request


@dataclass(frozen=True)
class PropertyFile:
    """A JSON file inside one of a step's outputs, readable by ``JsonGet`` once the step has run."""

    name: str
    output_name: str
    path: str

    def to_request(self) -> dict[str, Any]:
        """SageMaker's form: ``{"PropertyFileName", "OutputName", "FilePath"}``."""
        return {"PropertyFileName": self.name, "OutputName": self.output_name, "FilePath": self.path}

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> PropertyFile:
        """Inverse of :meth:`to_request`."""
        return cls(name=request["PropertyFileName"], output_name=request["OutputName"],
                   path=request["FilePath"])


class ProcessingStep(JobStep):
    """Run ``python <code> <arguments>`` with inputs staged and outputs collected."""

    step_type = "Processing"
    exposed_properties = frozenset({"outputs"})

    def __init__(
        self,
        name: str,
        code: str,
        inputs: Sequence[ProcessingInput] | None = None,
        outputs: Sequence[ProcessingOutput] | None = None,
        arguments: Sequence[Any] | None = None,
        property_files: Sequence[PropertyFile] | None = None,
        env: Mapping[str, Any] | None = None,
        source_dir: str | None = None,
        requirements: str | None = None,
        python: str | None = None,
        depends_on: Sequence[StepRef] | None = None,
        display_name: str | None = None,
        description: str | None = None,
        cache_config: CacheConfig | None = None,
        retry_policies: Sequence[RetryPolicy] | None = None,
        resources: Mapping[str, Any] | None = None,
        instance_type: str | None = None,
        instance_count: Any = 1,
    ) -> None:
        super().__init__(name, depends_on, display_name, description, cache_config, retry_policies, resources)
        if instance_type is not None and (not isinstance(instance_type, str) or not instance_type):
            raise PipelineDefinitionError(f"step {name!r}: instance_type must be a name like 'ml.m5.xlarge'")
        if not isinstance(instance_count, Expression) and (
                isinstance(instance_count, bool) or not isinstance(instance_count, int) or instance_count < 1):
            raise PipelineDefinitionError(f"step {name!r}: instance_count must be a positive integer, "
                                          f"not {instance_count!r}")
        # a Ray executor runs instance_count shards of the job, each with every input (SageMaker's
        # FullyReplicated) and FORGELINE_SHARD_INDEX / FORGELINE_SHARD_COUNT; the local executor runs one
        self.instance_type = instance_type
        self.instance_count = instance_count
        if not isinstance(code, str) or not code:
            raise PipelineDefinitionError(f"step {name!r}: code must be the path of a Python script")
        self.code = code
        self.source_dir = source_dir
        self.inputs = list(inputs or [])
        self.outputs = list(outputs or [])
        self.arguments_list = list(arguments or [])
        self.property_files = list(property_files or [])
        self.env = dict(env or {})
        self.interpreter = Interpreter(requirements, python).check(name)
        self._check()

    def _check(self) -> None:
        for item in self.inputs:
            if not isinstance(item, ProcessingInput):
                raise PipelineDefinitionError(f"step {self.name!r}: inputs must be ProcessingInput values")
            check_relative("input destination", self.name, item.destination)
        names = [o.output_name for o in self.outputs if isinstance(o, ProcessingOutput)]
        if len(names) != len(self.outputs):
            raise PipelineDefinitionError(f"step {self.name!r}: outputs must be ProcessingOutput values")
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise PipelineDefinitionError(f"step {self.name!r}: duplicate output name(s) {duplicated}")
        for output in self.outputs:
            check_relative("output source", self.name, output.source)
        for pf in self.property_files:
            if not isinstance(pf, PropertyFile):
                raise PipelineDefinitionError(f"step {self.name!r}: property_files must be PropertyFile values")
            if pf.output_name not in names:
                raise PipelineDefinitionError(
                    f"step {self.name!r}: property file {pf.name!r} names output {pf.output_name!r}, "
                    f"which the step does not declare (outputs: {', '.join(names) or 'none'})"
                )
        for arg in self.arguments_list:
            if not isinstance(arg, (str, int, float, bool, Expression)):
                raise PipelineDefinitionError(
                    f"step {self.name!r}: argument {arg!r} must be a string, number or expression"
                )

    def arguments(self) -> dict[str, Any]:
        """Code, inputs, outputs, arguments and environment."""
        return {
            "Code": self.code,
            "SourceDir": self.source_dir,
            "Inputs": [i.to_request() for i in self.inputs],
            "Outputs": [o.to_request() for o in self.outputs],
            "Arguments": serialize(self.arguments_list),
            "Environment": serialize_env(self.env, self.name),
            **self.interpreter.to_request(),
            **({"ResourceConfig": {"InstanceType": self.instance_type, "InstanceCount": serialize(self.instance_count)}}
               if self.instance_type is not None or self.instance_count != 1 else {}),
        }

    def extra_request(self) -> dict[str, Any]:
        """Property files plus cache and retry policies."""
        request = super().extra_request()
        if self.property_files:
            request["PropertyFiles"] = [pf.to_request() for pf in self.property_files]
        return request

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> ProcessingStep:
        args = request["Arguments"]
        return cls(
            code=args["Code"],
            source_dir=args.get("SourceDir"),
            inputs=[ProcessingInput(source=parse_value(i["Source"]), destination=i["Destination"],
                                    input_name=i.get("InputName")) for i in args.get("Inputs", [])],
            outputs=[ProcessingOutput(output_name=o["OutputName"], source=o["Source"],
                                      destination=parse_value(o.get("Destination")),
                                      optional=bool(o.get("Optional", False)))
                     for o in args.get("Outputs", [])],
            arguments=parse_value(args.get("Arguments", [])),
            env=parse_value(args.get("Environment", {})),
            property_files=[PropertyFile.from_request(p) for p in request.get("PropertyFiles", [])],
            **asdict(Interpreter.from_request(args)),
            instance_type=args.get("ResourceConfig", {}).get("InstanceType"),
            instance_count=parse_value(args.get("ResourceConfig", {}).get("InstanceCount", 1)),
            **cls.common_kwargs(request),
        )

    def children(self) -> Iterable[Any]:
        """Input sources, output destinations, arguments and environment values."""
        return [*(i.source for i in self.inputs), *(o.destination for o in self.outputs),
                *self.arguments_list, *self.env.values()]

    @property
    def sagemaker_paths(self) -> bool:
        """Whether the script expects SageMaker's /opt/ml paths (an input or output is given under /opt/ml/)."""
        paths = [*(i.destination for i in self.inputs), *(o.source for o in self.outputs)]
        return any(p.startswith(SAGEMAKER_ROOT + "/") for p in paths)

    def declared_property_files(self) -> set[str]:
        """Names of the declared property files."""
        return {pf.name for pf in self.property_files}

    def check_property_path(self, path: tuple[Any, ...]) -> str | None:
        """``outputs[<declared output name>]`` is the only property."""
        problem = super().check_property_path(path)
        if problem is None and path[0] == "outputs" and len(path) > 1:
            names = [o.output_name for o in self.outputs]
            if path[1] not in names:
                return (f"step {self.name!r} has no output {path[1]!r} "
                        f"(outputs: {', '.join(names) or 'none'})")
        return problem

    def code_files(self) -> list[str]:
        """The script (inside ``source_dir`` when one is given) and the requirements file."""
        return [*script_files(self.code, self.source_dir), *self.interpreter.files()]


def script_files(code: str, source_dir: str | None) -> list[str]:
    """The paths a script step needs: its source folder and the script inside it, or just the script."""
    if source_dir:
        return [source_dir, posixpath.join(source_dir, code)]
    return [code]
