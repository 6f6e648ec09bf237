"""Expanding a ForEach at run time: one renamed copy of its body per item, and the fan-in of their results."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forgeline.engine.resolve import ResolutionContext, StepNotRunError, resolve, walk_path
from forgeline.errors import ExpressionError
from forgeline.store.metadata.records import StepStatus
from forgeline.workflow.expressions import parse_value, serialize
from forgeline.workflow.steps import ForEach, Step
from forgeline.workflow.steps.foreach import ITEM_REFERENCE, parse_item_reference

SIMPLE_ITEM = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")


@dataclass(frozen=True)
class Iteration:
    """One item's copy of a ForEach body."""

    index: int
    item: Any
    label: str
    steps: list[Step]
    names: dict[str, str]  # body step name -> this iteration's step name


def resolve_items(loop: ForEach, ctx: ResolutionContext) -> list[Any]:
    """The loop's items: a list, or text holding a JSON list or comma-separated values."""
    value = resolve(loop.items, ctx)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ExpressionError(f"ForEach {loop.name!r}: items {text!r} are not a JSON list: {exc}") from None
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, list):
        raise ExpressionError(f"ForEach {loop.name!r}: items must be a list, got {type(value).__name__}")
    return value


def labels_for(items: list[Any]) -> list[str]:
    """Readable labels (the items themselves when they are short unique names, else their positions)."""
    if all(isinstance(i, str) and SIMPLE_ITEM.match(i) for i in items) and len(set(items)) == len(items):
        return list(items)
    return [str(index) for index in range(len(items))]


def expand(loop: ForEach, items: list[Any]) -> list[Iteration]:
    """One copy of the body per item: steps renamed ``<loop>-<label>-<step>``, the item filled in."""
    body_names = loop.local_step_names()
    requests = loop.arguments()["Steps"]  # serialised once; each iteration rewrites its own copy
    iterations = []
    for index, (item, label) in enumerate(zip(items, labels_for(items), strict=True)):
        names = {name: f"{loop.name}-{label}-{name}" for name in body_names}
        steps = [Step.from_request(rewrite(request, names, item)) for request in requests]
        iterations.append(Iteration(index, item, label, [*steps, *nested_in(steps)], names))
    return iterations


def nested_in(steps: list[Step]) -> list[Step]:
    """The steps a body's steps own (a ConditionStep's branches), at any depth: they run in the iteration too."""
    found: list[Step] = []
    for step in steps:
        inner = step.nested_steps()
        found += [*inner, *nested_in(inner)]
    return found


def rewrite(value: Any, names: dict[str, str], item: Any) -> Any:
    """Rename body steps inside a definition fragment and replace ``ForEach.Item`` by the item's value."""
    if isinstance(value, list):
        return [rewrite(v, names, item) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and isinstance(value.get("Get"), str):
        ref = value["Get"]
        if ref.startswith(ITEM_REFERENCE):
            return walk_path(item, list(parse_item_reference(ref).path), "the ForEach item")
        match = re.match(r"Steps\.([A-Za-z0-9_\-]+)(.*)$", ref)
        if match and match.group(1) in names:
            return {"Get": f"Steps.{names[match.group(1)]}{match.group(2)}"}
        return value
    rewritten = {k: rewrite(v, names, item) for k, v in value.items()}
    if "Name" in value and "Type" in value and value["Name"] in names:
        rewritten["Name"] = names[value["Name"]]
    if isinstance(value.get("DependsOn"), list):
        rewritten["DependsOn"] = [names.get(n, n) for n in value["DependsOn"]]
    return rewritten


def fan_in(loop: ForEach, iterations: list[Iteration], ctx: ResolutionContext) -> dict[str, list[Any]]:
    """Each declared output, resolved in every iteration, as a list in item order (None where it did not run)."""
    outputs: dict[str, list[Any]] = {}
    for name, expression in serialize(loop.outputs).items():
        values = []
        for iteration in iterations:
            try:
                values.append(resolve(parse_value(rewrite(expression, iteration.names, iteration.item)), ctx))
            except StepNotRunError:  # that iteration took another branch, or failed before this step
                values.append(None)
        outputs[name] = values
    return outputs


@dataclass
class LoopState:
    """A running ForEach: its iterations and which of them may start under the concurrency cap."""

    loop: ForEach
    iterations: list[Iteration]

    def __post_init__(self) -> None:
        self._owner = {name: it.index for it in self.iterations for name in it.names.values()}

    def iteration_of(self, step_name: str) -> int | None:
        """Index of the iteration a step belongs to (None for steps outside this loop)."""
        return self._owner.get(step_name)

    def names(self, index: int) -> list[str]:
        """Step names of one iteration."""
        return list(self.iterations[index].names.values())

    def may_start(self, index: int, status: Mapping[str, StepStatus]) -> bool:
        """Whether a step of iteration ``index`` may start: its iteration is active or a slot is free."""
        cap = self.loop.max_concurrency
        if cap is None or self._active(index, status):
            return True
        return sum(self._active(i, status) for i in range(len(self.iterations))) < cap

    def _active(self, index: int, status: Mapping[str, StepStatus]) -> bool:
        states = [status[n] for n in self.names(index)]
        return any(s != StepStatus.PENDING for s in states) and not all(s.is_terminal for s in states)

    def finished(self, status: Mapping[str, StepStatus]) -> bool:
        """Whether every step of every iteration has ended."""
        return all(status[n].is_terminal for n in self._owner)

    def failures(self, status: Mapping[str, StepStatus]) -> list[str]:
        """One line per iteration with a failed or stopped step."""
        lines = []
        for it in self.iterations:
            bad = [n for n in it.names.values() if status[n] in (StepStatus.FAILED, StepStatus.STOPPED)]
            if bad:
                lines.append(f"item {it.label!r}: step {bad[0]!r} {status[bad[0]].value.lower()}")
        return lines
