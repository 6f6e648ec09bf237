"""Pipeline: collects steps and parameters, validates the DAG, and turns it into a definition document."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeline.config import EXECUTORS, parse_executor
from forgeline.errors import ConfigurationError, PipelineDefinitionError
from forgeline.startup import bulk_imports
from forgeline.workflow.expressions import JsonGet, Property, check_name, walk
from forgeline.workflow.graph import StepGraph
from forgeline.workflow.parameters import Parameter, ParameterReference, parameter_from_request
from forgeline.workflow.policies import ParallelismConfiguration, SelectiveExecutionConfig
from forgeline.workflow.steps import FunctionStep, Step
from forgeline.workflow.steps.condition import as_step
from forgeline.workflow.steps.foreach import ForEach, ForEachItem

if TYPE_CHECKING:
    from forgeline.config import Settings

FORMAT_VERSION = 1
SAGEMAKER_SCHEMA_VERSION = "2020-12-01"


class DefinitionDocument(str):
    """The definition as JSON text (like SageMaker's), that also answers ``doc["Steps"]``-style lookups."""

    def as_dict(self) -> dict[str, Any]:
        """The parsed document."""
        parsed: dict[str, Any] = json.loads(self)
        return parsed

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self.as_dict()[key]
        return str.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """Top-level value, like ``dict.get``."""
        return self.as_dict().get(key, default)


class Pipeline:
    """A named DAG of steps with typed parameters; build it in Python or from a definition document."""

    def __init__(
        self,
        name: str,
        parameters: Sequence[Parameter] | None = None,
        steps: Sequence[Any] | None = None,
        parallelism_config: ParallelismConfiguration | None = None,
        description: str | None = None,
        check_files: bool = True,
        executor: str | None = None,
    ) -> None:
        self.name = check_name("pipeline", name)
        self.executor = check_executor(self.name, executor)  # None: FORGELINE_EXECUTOR's
        self.parameters = list(parameters or [])
        self.description = description
        self.parallelism_config = parallelism_config or ParallelismConfiguration()
        self.top_level = [as_step(s, name) for s in steps or []]
        self.steps = collect_steps(self.top_level)
        self.graph = StepGraph.build(self.steps)
        validate(self, check_files=check_files)

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        raise PipelineDefinitionError(f"pipeline {self.name!r} has no step {name!r}")

    def to_request(self) -> dict[str, Any]:
        """The definition as a JSON-ready dict."""
        listed = {id(s) for s in self.top_level}
        nested = {id(n) for s in self.steps for n in s.nested_steps()}
        top = [s for s in self.steps if id(s) in listed or id(s) not in nested]
        doc: dict[str, Any] = {
            "Version": SAGEMAKER_SCHEMA_VERSION,
            "Metadata": {"Generator": "forgeline", "FormatVersion": FORMAT_VERSION},
            "Name": self.name,
            "Parameters": [p.to_request() for p in self.parameters],
            "ParallelismConfiguration": self.parallelism_config.to_request(),
            "Steps": [s.to_request() for s in top],
        }
        if self.description:
            doc["Description"] = self.description
        if self.executor:
            doc["Executor"] = self.executor
        return doc

    def definition(self) -> DefinitionDocument:
        """The versioned JSON document that fully describes this pipeline."""
        return DefinitionDocument(json.dumps(self.to_request(), indent=2, sort_keys=False))

    @classmethod
    def from_definition(cls, doc: str | Mapping[str, Any], check_files: bool = False) -> Pipeline:
        """Rebuild a pipeline from a definition document (text or dict)."""
        data = json.loads(doc) if isinstance(doc, str) else dict(doc)
        version = data.get("Metadata", {}).get("FormatVersion", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise PipelineDefinitionError(
                f"definition format version {version} is not supported (this forgeline reads {FORMAT_VERSION})"
            )
        if "Name" not in data or "Steps" not in data:
            raise PipelineDefinitionError("a pipeline definition needs 'Name' and 'Steps'")
        return cls(
            name=data["Name"],
            parameters=[parameter_from_request(p) for p in data.get("Parameters", [])],
            steps=[Step.from_request(s) for s in data["Steps"]],
            parallelism_config=ParallelismConfiguration.from_request(data.get("ParallelismConfiguration", {})),
            description=data.get("Description"),
            check_files=check_files,
            executor=data.get("Executor"),
        )

    @classmethod
    def from_sagemaker(
        cls,
        document: str | Mapping[str, Any],
        code_root: str = ".",
        s3_map: Mapping[str, str] | None = None,
        name: str | None = None,
        **options: Any,
    ) -> Pipeline:
        """Build a forgeline pipeline from a SageMaker pipeline definition (``pipeline.definition()`` of the
        SageMaker Python SDK v2), its code found under ``code_root`` and ``s3://`` prefixes mapped by ``s3_map``.

        ``options`` go to :func:`forgeline.sagemaker.importer.import_definition` (``images``, ``lambdas``).
        """
        from forgeline.sagemaker.importer import import_definition  # the DSL stays I/O free; the importer reads

        return import_definition(document, code_root=code_root, s3_map=s3_map or {}, name=name, **options)

    def upsert(self, settings: Settings | None = None) -> dict[str, Any]:
        """Store this definition as the pipeline's newest version; ``{"PipelineArn", "PipelineVersion"}``."""
        from forgeline.engine.launch import upsert_pipeline

        return upsert_pipeline(self, settings)

    def describe(self, settings: Settings | None = None) -> dict[str, Any]:
        """The stored pipeline: newest definition, version and times (SageMaker's ``describe``)."""
        from forgeline.engine.launch import describe_pipeline

        return describe_pipeline(self.name, settings)

    def list_executions(self, settings: Settings | None = None, limit: int = 50) -> dict[str, Any]:
        """This pipeline's newest executions as ``{"PipelineExecutionSummaries": [...]}``."""
        from forgeline.engine.launch import list_pipeline_executions

        return list_pipeline_executions(self.name, settings, limit)

    def start(
        self,
        parameters: Mapping[str, Any] | None = None,
        settings: Settings | None = None,
        selective_execution_config: SelectiveExecutionConfig | None = None,
        keep_jobs: bool | None = None,
        queued: bool = False,
    ) -> Any:
        """Store this definition, start an execution in a background orchestrator, and return its handle.

        ``keep_jobs=True`` keeps each succeeded step's job folder (removed by default; FORGELINE_KEEP_JOBS=1).
        ``queued=True`` records it Queued instead: a queue launcher (a server) starts it when there is room.
        """
        from forgeline.config import Settings
        from forgeline.engine.step_worker import step_worker_forked  # light: forks before the engine's imports

        settings = settings or Settings.from_env()
        with step_worker_forked(self, settings, queued=queued):  # the @step worker, ready before it is needed
            if not queued:
                from forgeline.engine.warm_start import start_warm  # light: the engine stays unimported

                started = start_warm(self, parameters or {}, settings, selective_execution_config, keep_jobs)
                if started is not None:
                    return started
            with bulk_imports():  # the engine, the stores and SQLAlchemy, on first use
                from forgeline.engine.launch import start_execution  # the DSL stays I/O free; the engine works

            return start_execution(self, parameters or {}, settings=settings,
                                   selective=selective_execution_config, keep_jobs=keep_jobs, queued=queued)

    def plan(self, parameters: Mapping[str, Any] | None = None, settings: Settings | None = None) -> Any:
        """Per step, whether a run with these parameters would reuse a cached result (HIT) or run (MISS), and why."""
        with bulk_imports():
            from forgeline.engine.launch import plan_execution

        return plan_execution(self, parameters or {}, settings=settings)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pipeline) and self.to_request() == other.to_request()

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Pipeline(name={self.name!r}, steps={[s.name for s in self.steps]!r})"


def collect_steps(listed: Sequence[Step]) -> list[Step]:
    """Listed steps, their branch steps, and @step calls they refer to, each once, in definition order."""
    members: list[Step] = []
    seen: set[int] = set()

    def add(s: Step) -> None:
        if id(s) in seen:
            return
        seen.add(id(s))
        members.append(s)
        for nested in s.nested_steps():
            add(nested)

    for s in listed:
        add(s)
    index = 0
    while index < len(members):
        local = members[index].local_step_names()
        for ref in members[index].referenced_step_objects():
            if isinstance(ref, FunctionStep) and id(ref) not in seen and ref.name not in local:
                add(ref)
        index += 1
    return members


def validate(pipeline: Pipeline, check_files: bool) -> None:
    """Refuse duplicates, dangling references, undeclared property files, cycles and missing code."""
    bodies = {s.name: s.all_body_steps() for s in pipeline.steps if isinstance(s, ForEach)}
    names = [s.name for s in pipeline.steps] + [b.name for body in bodies.values() for b in body]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise PipelineDefinitionError(
            f"pipeline {pipeline.name!r} has more than one step named {', '.join(map(repr, duplicated))}; "
            "step names must be unique (give a @step called twice a distinct name=)"
        )
    parameter_names = [p.name for p in pipeline.parameters]
    duplicated = sorted({n for n in parameter_names if parameter_names.count(n) > 1})
    if duplicated:
        raise PipelineDefinitionError(f"pipeline {pipeline.name!r} declares parameter(s) {duplicated} twice")
    by_name = {s.name: s for s in pipeline.steps}
    for s in pipeline.steps:
        body = bodies.get(s.name, [])
        scope = {**by_name, **{b.name: b for b in body}}
        for member in [s, *body]:
            for dep in member.depends_on:
                if dep not in scope:
                    raise PipelineDefinitionError(
                        f"step {member.name!r} depends on step {dep!r}, which is not in pipeline {pipeline.name!r}"
                    )
        for node in walk(list(s.children())):
            if isinstance(node, ForEachItem) and s.name not in bodies:
                raise PipelineDefinitionError(
                    f"step {s.name!r} uses ForEachItem() outside of a ForEach body"
                )
            check_reference(pipeline, s, node, scope, set(parameter_names))
        if body:
            inner = StepGraph.build(body).find_cycle()
            if inner:
                raise PipelineDefinitionError(
                    f"ForEach {s.name!r} has a dependency cycle in its body: {' -> '.join(inner)}"
                )
    cycle = pipeline.graph.find_cycle()
    if cycle:
        raise PipelineDefinitionError(
            f"pipeline {pipeline.name!r} has a dependency cycle: {' -> '.join(cycle)}"
        )
    if check_files:
        for s in pipeline.steps:
            for path in s.code_files():
                if not Path(path).exists():
                    raise PipelineDefinitionError(
                        f"step {s.name!r}: code file {path!r} does not exist (relative to {os.getcwd()})"
                    )


def check_reference(pipeline: Pipeline, owner: Step, node: Any, by_name: Mapping[str, Step],
                    parameter_names: set[str]) -> None:
    """Refuse one expression that names a step, property file or parameter the pipeline lacks."""
    if isinstance(node, (Parameter, ParameterReference)) and node.name not in parameter_names:
        raise PipelineDefinitionError(
            f"step {owner.name!r} uses parameter {node.name!r}, which is not in the parameters of "
            f"pipeline {pipeline.name!r} ({', '.join(sorted(parameter_names)) or 'none'})"
        )
    if isinstance(node, (Property, JsonGet)):
        target = by_name.get(node.step_name)
        if target is None:
            raise PipelineDefinitionError(
                f"step {owner.name!r} refers to step {node.step_name!r}, which is not in pipeline "
                f"{pipeline.name!r}; add it to the pipeline's steps"
            )
        if isinstance(node, JsonGet):
            if node.property_file_name not in target.declared_property_files():
                declared = ", ".join(sorted(target.declared_property_files())) or "none"
                raise PipelineDefinitionError(
                    f"step {owner.name!r} reads property file {node.property_file_name!r} of step "
                    f"{target.name!r}, which does not declare it (declared: {declared})"
                )
        else:
            problem = target.check_property_path(node.path)
            if problem:
                raise PipelineDefinitionError(f"step {owner.name!r}: {problem}")


def check_executor(pipeline_name: str, executor: str | None) -> str | None:
    """The executor a pipeline names for itself (``local``, ``ray``, ``ray://host:port``), or None."""
    if executor is None:
        return None
    try:
        return parse_executor(executor) if isinstance(executor, str) and executor.strip() else parse_executor("?")
    except ConfigurationError:
        raise PipelineDefinitionError(f"pipeline {pipeline_name!r}: executor={executor!r} is not an executor; "
                                      f"accepted: {', '.join(EXECUTORS)}") from None
