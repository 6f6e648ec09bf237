"""DeployStep: create or update a real-time endpoint with registered packages, and wait until they serve."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow.expressions import Expression, check_name, parse_value, serialize
from forgeline.workflow.policies import CacheConfig, RetryPolicy
from forgeline.workflow.steps.base import JobStep, StepRef


class DeployStep(JobStep):
    """Point endpoint ``endpoint_name`` at ``model`` (or a list of stages); on any failure the old config stays."""

    step_type = "Deploy"
    exposed_properties = frozenset({"endpoint_name", "revision", "models", "outputs"})

    def __init__(
        self,
        name: str,
        endpoint_name: str | Expression,
        model: Any,
        wait: bool = True,
        sample_body: str | bytes | Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float = 300.0,
        server_url: str | None = None,
        depends_on: Sequence[StepRef] | None = None,
        display_name: str | None = None,
        description: str | None = None,
        retry_policies: Sequence[RetryPolicy] | None = None,
        cache_config: CacheConfig | None = None,
    ) -> None:
        super().__init__(name, depends_on, display_name, description, cache_config, retry_policies)
        if isinstance(endpoint_name, str):
            check_name("endpoint", endpoint_name)
        elif not isinstance(endpoint_name, Expression):
            raise PipelineDefinitionError(f"step {name!r}: endpoint_name must be a name or expression")
        stages = list(model) if isinstance(model, (list, tuple)) else [model]
        if not stages or any(not isinstance(s, (str, Expression)) or s == "" for s in stages):
            raise PipelineDefinitionError(
                f"step {name!r}: model must be a registered package (register.properties.model_package, "
                f"'group/7', 'group@approved') or a list of them (an inference pipeline), got {model!r}")
        if not isinstance(wait, bool):
            raise PipelineDefinitionError(f"step {name!r}: wait must be True or False")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise PipelineDefinitionError(f"step {name!r}: timeout must be a positive number of seconds")
        if isinstance(sample_body, Mapping):
            sample_body = json.dumps(sample_body)
        elif isinstance(sample_body, bytes):
            sample_body = sample_body.decode()
        if sample_body is not None and not isinstance(sample_body, str):
            raise PipelineDefinitionError(f"step {name!r}: sample_body must be text, bytes or a JSON object")
        self.endpoint_name = endpoint_name
        self.models = stages
        self.wait = wait
        self.sample_body = sample_body
        self.content_type = content_type
        self.timeout = float(timeout)
        self.server_url = server_url

    def arguments(self) -> dict[str, Any]:
        """Endpoint, stages, and how to confirm the deployment."""
        return {"EndpointName": serialize(self.endpoint_name), "Models": [serialize(s) for s in self.models],
                "Wait": self.wait, "SampleBody": self.sample_body, "ContentType": self.content_type,
                "Timeout": self.timeout, "ServerUrl": self.server_url}

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> DeployStep:
        args = request["Arguments"]
        return cls(endpoint_name=parse_value(args["EndpointName"]), model=[parse_value(m) for m in args["Models"]],
                   wait=args.get("Wait", True), sample_body=args.get("SampleBody"),
                   content_type=args.get("ContentType", "application/json"), timeout=args.get("Timeout", 300.0),
                   server_url=args.get("ServerUrl"), **cls.common_kwargs(request))

    def children(self) -> Iterable[Any]:
        """The endpoint name and every stage."""
        return [self.endpoint_name, *self.models]
