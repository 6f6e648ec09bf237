"""SageMaker definition values → forgeline definition values: S3 URIs mapped, references renamed.

Works on JSON (before :func:`forgeline.workflow.expressions.parse_value` builds the expressions): ``s3://``
literals become local paths, a ``Std:Join`` whose leading literals spell a mapped prefix is mapped too (the
SDK writes ``["s3:/", "my-bucket", "abalone", {"Get": "Execution.PipelineExecutionId"}, ...]``), and
references to SageMaker-only names (execution ARNs, a Lambda's output parameters, a final metric, a repacked
model) are renamed to what forgeline calls them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from forgeline.errors import PipelineDefinitionError
from forgeline.sagemaker.s3 import S3Map
from forgeline.workflow.expressions import parse_value

EXECUTION_NAMES = {
    "PipelineExecutionId": "PipelineExecutionId",
    "PipelineExecutionArn": "PipelineExecutionId",
    "PipelineName": "PipelineName",
    "PipelineArn": "PipelineName",
    "StartDateTime": "StartDateTime",
    "CurrentDateTime": "CurrentDateTime",
}
"""SageMaker's execution variables and the forgeline variable each one becomes (an ARN becomes the id/name)."""

_OUTPUT_PARAMETER = re.compile(r"^Steps\.([A-Za-z0-9_\-]+)\.OutputParameters\[['\"]([^'\"]+)['\"]\]$")
_RESULTS_OF = re.compile(r"^Steps\.([A-Za-z0-9_\-]+)\.OutputDataConfig\.S3OutputPath$")
_FINAL_METRIC = re.compile(r"^Steps\.([A-Za-z0-9_\-]+)\.FinalMetricDataList\[['\"]([^'\"]+)['\"]\]\.Value$")

RenameStep = Callable[[str], Any]
"""Given a ``Steps.X...`` reference, a replacement value (a folded step stands for another), or None."""


class Translator:
    """Rewrites SageMaker definition JSON into forgeline definition JSON and parses its expressions."""

    def __init__(self, s3: S3Map, rename: RenameStep | None = None) -> None:
        self.s3 = s3
        self.rename = rename or (lambda ref: None)

    def value(self, value: Any) -> Any:
        """The forgeline value (literal or expression) of one SageMaker definition value."""
        return parse_value(self.json(value))

    def json(self, value: Any) -> Any:
        """The forgeline JSON of one SageMaker definition value."""
        if isinstance(value, str):
            return self.s3.map(value) if value.startswith("s3://") else value
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and isinstance(value.get("Get"), str):
            return self._get(value["Get"])
        if len(value) == 1 and isinstance(value.get("Std:Join"), Mapping):
            return self._join(value["Std:Join"])
        if len(value) == 1 and isinstance(value.get("Std:JsonGet"), Mapping):
            body = value["Std:JsonGet"]
            if "PropertyFile" not in body:
                return _function_result(body)
            return {"Std:JsonGet": {"PropertyFile": self.json(body["PropertyFile"]), "Path": body["Path"]}}
        return {k: self.json(v) for k, v in value.items()}

    def _get(self, ref: str) -> Any:
        head, _, rest = ref.partition(".")
        if head == "Execution":
            if rest not in EXECUTION_NAMES:
                raise PipelineDefinitionError(f"execution variable {rest!r} has no counterpart in forgeline")
            return {"Get": f"Execution.{EXECUTION_NAMES[rest]}"}
        if head == "Steps":
            replaced = self.rename(ref)
            if replaced is not None:
                return replaced
            match = _OUTPUT_PARAMETER.match(ref)
            if match:
                return {"Get": f"Steps.{match.group(1)}.return['{match.group(2)}']"}
            match = _FINAL_METRIC.match(ref)
            if match:
                return {"Get": f"Steps.{match.group(1)}.metrics['{match.group(2)}']"}
        return {"Get": ref}

    def _join(self, body: Mapping[str, Any]) -> Any:
        on = body.get("On", "")
        values = [self.json(v) for v in body.get("Values", [])]
        literals = 0
        while literals < len(values) and isinstance(values[literals], (str, int, float)):
            literals += 1
        if literals:
            prefix = on.join(str(v) for v in values[:literals])
            values = [self.s3.map(prefix) if prefix.startswith("s3://") else prefix, *values[literals:]]
        return {"Std:Join": {"On": on, "Values": values}}


def _function_result(body: Mapping[str, Any]) -> Any:
    """A JsonGet of a @step's ``results.json`` (what the SDK writes for a DelayedReturn that a condition or
    another step reads) as a reference to that step's return value: ``Result[0]`` → ``Steps.X.return[0]``."""
    uri, path = body.get("S3Uri"), str(body.get("Path", ""))
    join = uri.get("Std:Join", {}) if isinstance(uri, Mapping) else {}
    values = join.get("Values", [])
    step = _RESULTS_OF.match(values[0].get("Get", "")) if len(values) == 2 and isinstance(values[0], Mapping) else None
    if step is None or values[1] != "results.json" or join.get("On") != "/" or not path.startswith("Result"):
        raise PipelineDefinitionError(
            f"a JsonGet that reads {json.dumps(uri)} by S3 URI cannot be imported; forgeline reads a PropertyFile "
            "of a step, or the return value of a @step"
        )
    return {"Get": f"Steps.{step.group(1)}.return{path[len('Result'):]}"}


def json_text(value: Any) -> Any:
    """A hyperparameter as the SDK wrote it (``"\\"train.py\\""``, ``"5"``) decoded to its value when it is JSON."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
