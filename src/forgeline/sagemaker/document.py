"""A SageMaker pipeline definition document: parsed, its version checked, its steps walked (branches too)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from forgeline.errors import PipelineDefinitionError

SCHEMA_VERSION = "2020-12-01"
"""The definition schema the SageMaker Python SDK v2 writes."""


def parse_document(document: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """The definition as a dict, from JSON text or a dict; refuses other schema versions and non-definitions."""
    if isinstance(document, (str, bytes)):
        try:
            parsed = json.loads(document)
        except ValueError as exc:
            raise PipelineDefinitionError(f"the SageMaker definition is not JSON: {exc}") from None
    else:
        parsed = dict(document)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("Steps"), list):
        raise PipelineDefinitionError("not a SageMaker pipeline definition: it has no 'Steps' list")
    version = parsed.get("Version")
    if version != SCHEMA_VERSION:
        raise PipelineDefinitionError(
            f"definition version {version!r} is not supported; forgeline reads SageMaker's {SCHEMA_VERSION!r} "
            "(what pipeline.definition() of the SDK v2 writes)"
        )
    return parsed


def written_by_forgeline(document: Mapping[str, Any]) -> bool:
    """Whether the document is a forgeline definition (``Pipeline.definition()``), not the SDK's."""
    metadata = document.get("Metadata")
    return isinstance(metadata, Mapping) and metadata.get("Generator") == "forgeline"


def walk_steps(steps: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every step, condition branches included, in document order."""
    for step in steps:
        yield step
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments", {})
            yield from walk_steps([*arguments.get("IfSteps", []), *arguments.get("ElseSteps", [])])
