"""Trigger files: a JSON or YAML document whose ``pipeline_parameters`` start an execution (other keys ignored)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from forgeline.errors import TriggerError

PARAMETERS_KEY = "pipeline_parameters"


class TriggerFileError(TriggerError):
    """A trigger file that cannot start anything: not JSON or YAML, not a mapping, or bad pipeline_parameters."""


def read_trigger_parameters(data: bytes, key: str) -> dict[str, Any]:
    """The ``pipeline_parameters`` of a trigger file (empty when absent); TriggerFileError says what is wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TriggerFileError(f"{key}: not UTF-8 text; a trigger file is JSON or YAML") from None
    document = _parse(text, key)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise TriggerFileError(f"{key}: expected a mapping with '{PARAMETERS_KEY}', got a {type(document).__name__}")
    parameters = document.get(PARAMETERS_KEY, {})
    if parameters is None:
        return {}
    if not isinstance(parameters, dict) or not all(isinstance(name, str) for name in parameters):
        raise TriggerFileError(f"{key}: '{PARAMETERS_KEY}' must map parameter names to values, e.g. "
                               '{"pipeline_parameters": {"ModelType": "hgb"}}')
    return dict(parameters)


def _parse(text: str, key: str) -> Any:
    if key.lower().endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise TriggerFileError(f"{key}: not valid JSON: {error}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise TriggerFileError(f"{key}: not valid JSON or YAML: {detail}") from None
