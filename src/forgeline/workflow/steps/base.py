"""Step: the base of every step kind, with open registration by ``step_type`` for (de)serialisation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow.expressions import Property, StepProperties, check_name, serialize, walk
from forgeline.workflow.policies import CacheConfig, RetryPolicy
from forgeline.workflow.steps.resources import check_resources

StepRef = Any  # a Step, a step name, or a DelayedReturn of a @step call


class Step:
    """A named node of the pipeline DAG."""

    step_type: ClassVar[str] = ""
    exposed_properties: ClassVar[frozenset[str]] = frozenset()
    _registry: ClassVar[dict[str, type[Step]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.step_type:
            Step._registry[cls.step_type] = cls

    def __init__(
        self,
        name: str,
        depends_on: Sequence[StepRef] | None = None,
        display_name: str | None = None,
        description: str | None = None,
    ) -> None:
        self.name = check_name("step", name)
        self.depends_on = [step_name_of(ref) for ref in (depends_on or [])]
        self.display_name = display_name
        self.description = description
        self._dependency_objects = [ref for ref in (depends_on or []) if not isinstance(ref, str)]

    @property
    def properties(self) -> StepProperties:
        """Run-time properties of this step, usable as expressions by later steps."""
        return StepProperties(self)

    def arguments(self) -> dict[str, Any]:
        """The step's ``Arguments`` in definition JSON."""
        return {}

    def extra_request(self) -> dict[str, Any]:
        """Step-level keys besides Name/Type/Arguments/DependsOn (property files, policies)."""
        return {}

    def to_request(self) -> dict[str, Any]:
        """This step as a definition-JSON object."""
        request: dict[str, Any] = {"Name": self.name, "Type": self.step_type, "Arguments": self.arguments()}
        if self.depends_on:
            request["DependsOn"] = list(self.depends_on)
        if self.display_name:
            request["DisplayName"] = self.display_name
        if self.description:
            request["Description"] = self.description
        request.update(self.extra_request())
        return request

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> Step:
        """Rebuild a step of any registered kind from its definition-JSON object."""
        kind = request.get("Type")
        if kind not in Step._registry:
            import_step_kinds()
        if kind not in Step._registry:
            raise PipelineDefinitionError(
                f"step {request.get('Name')!r} has unknown type {kind!r}; known: {sorted(Step._registry)}"
            )
        return Step._registry[kind]._from_request(request)

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> Step:
        raise NotImplementedError

    @staticmethod
    def common_kwargs(request: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments shared by every step kind, read from a definition-JSON object."""
        return {"name": request["Name"], "depends_on": request.get("DependsOn"),
                "display_name": request.get("DisplayName"), "description": request.get("Description")}

    def children(self) -> Iterable[Any]:
        """Values that may hold expressions (walked for references)."""
        return ()

    def nested_steps(self) -> list[Step]:
        """Steps owned by this one (a ConditionStep's branches)."""
        return []

    def local_step_names(self) -> set[str]:
        """Names of steps that exist only inside this one (a ForEach body); references to them stay inside."""
        return set()

    def referenced_step_objects(self) -> list[Step]:
        """Step objects this step points at (used to pull in @step calls that are not listed)."""
        found: list[Step] = []
        for node in [*self._dependency_objects, *walk(list(self.children()))]:
            target = node if isinstance(node, Step) else getattr(node, "step", None)
            if isinstance(target, Step):
                found.append(target)
        return found

    def declared_property_files(self) -> set[str]:
        """Names of the property files this step declares."""
        return set()

    def check_property_path(self, path: tuple[Any, ...]) -> str | None:
        """Explain why ``path`` is not a property of this step, or return None when it is."""
        if not path:
            return f"a reference to step {self.name!r} needs a property, e.g. {self.name}.properties.<name>"
        if path[0] not in self.exposed_properties:
            exposed = ", ".join(sorted(self.exposed_properties)) or "none"
            return f"step {self.name!r} ({self.step_type}) has no property {path[0]!r}; it has: {exposed}"
        return None

    def code_files(self) -> list[str]:
        """Paths of code this step runs (checked to exist when a pipeline is defined)."""
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class JobStep(Step):
    """A step that runs a job: it may be cached and retried, and gets environment variables."""

    def __init__(
        self,
        name: str,
        depends_on: Sequence[StepRef] | None = None,
        display_name: str | None = None,
        description: str | None = None,
        cache_config: CacheConfig | None = None,
        retry_policies: Sequence[RetryPolicy] | None = None,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, depends_on, display_name, description)
        check_resources(f"step {name!r}", resources)
        self.resources = dict(resources or {})  # as given ("8GiB"); jobs get them as Ray counts them
        if cache_config is not None and not isinstance(cache_config, CacheConfig):
            raise PipelineDefinitionError(f"step {name!r}: cache_config must be a CacheConfig")
        if any(not isinstance(p, RetryPolicy) for p in retry_policies or []):
            raise PipelineDefinitionError(f"step {name!r}: retry_policies must be RetryPolicy values")
        self.cache_config = cache_config
        self.retry_policies = list(retry_policies or [])

    def extra_request(self) -> dict[str, Any]:
        """Cache and retry policies."""
        request: dict[str, Any] = {}
        if self.cache_config is not None:
            request["CacheConfig"] = self.cache_config.to_request()
        if self.retry_policies:
            request["RetryPolicies"] = [p.to_request() for p in self.retry_policies]
        if self.resources:
            request["Resources"] = dict(self.resources)
        return request

    @staticmethod
    def common_kwargs(request: Mapping[str, Any]) -> dict[str, Any]:
        """Shared keyword arguments plus cache and retry policies."""
        kwargs = Step.common_kwargs(request)
        if "CacheConfig" in request:
            kwargs["cache_config"] = CacheConfig.from_request(request["CacheConfig"])
        kwargs["retry_policies"] = [RetryPolicy.from_request(p) for p in request.get("RetryPolicies", [])]
        if "Resources" in request:
            kwargs["resources"] = request["Resources"]
        return kwargs


def step_name_of(ref: StepRef) -> str:
    """The name of a step given as a Step, a name, or a @step call's delayed result."""
    if isinstance(ref, str):
        return ref
    if isinstance(ref, Step):
        return ref.name
    if isinstance(ref, Property):
        return ref.step_name
    raise PipelineDefinitionError(f"depends_on entries must be steps or step names, got {ref!r}")


def serialize_env(env: Mapping[str, Any] | None, step_name: str) -> dict[str, Any]:
    """Check and serialise a step's environment variables (values may be expressions)."""
    env = dict(env or {})
    for key in env:
        if not isinstance(key, str) or not key or "=" in key:
            raise PipelineDefinitionError(f"step {step_name!r}: invalid environment variable name {key!r}")
    return {k: serialize(v) for k, v in env.items()}


def import_step_kinds() -> None:
    """Import every module of a step kind, so that ``Step.from_request`` knows them all."""
    import importlib

    from forgeline.workflow.steps import KIND_MODULES

    for module in KIND_MODULES:
        importlib.import_module(f"forgeline.workflow.steps.{module}")
