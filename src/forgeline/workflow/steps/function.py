"""The ``@step`` decorator: a Python function becomes a pipeline step when called."""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow.expressions import Property, parse_value, serialize
from forgeline.workflow.policies import CacheConfig, RetryPolicy
from forgeline.workflow.steps.base import JobStep, StepRef, serialize_env

SYNTHETIC_MODULE_PREFIX = "_forgeline_file_"
"""Module names of user files loaded by path start with this; such modules are found again by their file."""


class DelayedReturn(Property):
    """The future return value of a ``@step`` call; index it (``result["key"]``) to pass a part of it on."""


class FunctionStep(JobStep):
    """Call a module-level Python function in a worker process and store its return value."""

    step_type = "Function"
    exposed_properties = frozenset({"return"})

    def __init__(
        self,
        name: str,
        function: Mapping[str, Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        env: Mapping[str, Any] | None = None,
        depends_on: Sequence[StepRef] | None = None,
        display_name: str | None = None,
        description: str | None = None,
        cache_config: CacheConfig | None = None,
        retry_policies: Sequence[RetryPolicy] | None = None,
        instance_type: str | None = None,
        instance_count: int | None = None,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, depends_on, display_name, description, cache_config, retry_policies, resources)
        # SageMaker's @step options: a Ray executor places the call by instance_type; the local one runs it here
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.function = dict(function)
        self.args = list(args)
        self.kwargs = dict(kwargs or {})
        self.env = dict(env or {})
        for index, value in [*enumerate(self.args), *self.kwargs.items()]:
            try:
                json.dumps(serialize(value))
            except (TypeError, ValueError):
                raise PipelineDefinitionError(
                    f"step {name!r}: argument {index!r} ({type(value).__name__}) cannot be stored in the "
                    "pipeline definition; pass JSON values, parameters, or results of other steps"
                ) from None

    def arguments(self) -> dict[str, Any]:
        """Function reference, arguments and environment."""
        arguments: dict[str, Any] = {"Function": self.function, "Args": serialize(self.args),
                                     "Kwargs": serialize(self.kwargs),
                                     "Environment": serialize_env(self.env, self.name)}
        if self.instance_type is not None or self.instance_count is not None:
            arguments["ResourceConfig"] = {"InstanceType": self.instance_type, "InstanceCount": self.instance_count}
        return arguments

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> FunctionStep:
        args = request["Arguments"]
        resources = args.get("ResourceConfig", {})
        return cls(function=args["Function"], args=parse_value(args.get("Args", [])),
                   kwargs=parse_value(args.get("Kwargs", {})), env=parse_value(args.get("Environment", {})),
                   instance_type=resources.get("InstanceType"), instance_count=resources.get("InstanceCount"),
                   **cls.common_kwargs(request))

    def children(self) -> Iterable[Any]:
        """Arguments and environment values."""
        return [*self.args, *self.kwargs.values(), *self.env.values()]

    def code_files(self) -> list[str]:
        """The file that defines the function, when it is not an importable module."""
        return [self.function["File"]] if self.function.get("File") and not self.function.get("Module") else []


def function_reference(func: Callable[..., Any]) -> dict[str, Any]:
    """Where a worker finds ``func``: an importable module, or else the file that defines it."""
    qualname = func.__qualname__
    if "<locals>" in qualname or "." in qualname:
        raise PipelineDefinitionError(
            f"@step function {qualname!r} must be defined at module level so a worker can import it"
        )
    source = inspect.getsourcefile(func)
    file = None
    if source:
        path = Path(source).resolve()
        try:
            file = str(path.relative_to(Path(os.getcwd()).resolve()))
        except ValueError:
            file = str(path)
    module = func.__module__
    loaded = sys.modules.get(module)
    # a module counts as importable only if it was imported by name (not __main__, runpy or a file load)
    spec = getattr(loaded, "__spec__", None)
    importable = (module != "__main__" and not module.startswith(SYNTHETIC_MODULE_PREFIX)
                  and spec is not None and spec.name == module)
    return {"Name": qualname, "Module": module if importable else None, "File": file}


class StepFunction:
    """A function decorated with ``@step``: calling it returns a DelayedReturn and defines a step."""

    def __init__(self, func: Callable[..., Any], name: str | None, options: dict[str, Any]) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.step_name = name or func.__name__
        self.options = options
        self.signature = inspect.signature(func)

    def __call__(self, *args: Any, **kwargs: Any) -> DelayedReturn:
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise PipelineDefinitionError(f"@step {self.step_name!r}: {exc}") from None
        function_step = FunctionStep(self.step_name, function_reference(self.func), args, kwargs, **self.options)
        return DelayedReturn(function_step.name, ("return",), function_step)


def step(
    _func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    display_name: str | None = None,
    description: str | None = None,
    env: Mapping[str, Any] | None = None,
    depends_on: Sequence[StepRef] | None = None,
    cache_config: CacheConfig | None = None,
    retry_policies: Sequence[RetryPolicy] | None = None,
    instance_type: str | None = None,
    instance_count: int | None = None,
    resources: Mapping[str, Any] | None = None,
) -> Any:
    """Turn a module-level function into a pipeline step (``@step`` or ``@step(name=...)``).

    ``instance_type`` and ``instance_count`` (SageMaker's) are recorded in the definition; ``resources`` (e.g.
    ``{"num_cpus": 2, "memory": "4GiB"}``) and the instance type place each call on a Ray executor.
    """
    options = {"display_name": display_name, "description": description, "env": env,
               "depends_on": depends_on, "cache_config": cache_config, "retry_policies": retry_policies,
               "instance_type": instance_type, "instance_count": instance_count, "resources": resources}

    def decorate(func: Callable[..., Any]) -> StepFunction:
        return StepFunction(func, name, options)

    return decorate(_func) if _func is not None else decorate
