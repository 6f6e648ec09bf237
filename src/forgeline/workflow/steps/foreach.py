"""ForEach: run a body of steps once per item of a list known at run time, with a concurrency cap and fan-in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow.expressions import Expression, PathPart, parse_path, parse_value, serialize
from forgeline.workflow.steps.base import Step, StepRef
from forgeline.workflow.steps.condition import as_step

ITEM_REFERENCE = "ForEach.Item"


class ForEachItem(Expression):
    """The current item inside a ForEach body (index it for dict items: ``ForEachItem()["name"]``)."""

    def __init__(self, path: tuple[PathPart, ...] = ()) -> None:
        self.path = path

    def __getitem__(self, key: PathPart) -> ForEachItem:
        return ForEachItem((*self.path, key))

    @property
    def expr(self) -> dict[str, Any]:
        """``{"Get": "ForEach.Item"}`` with an optional path."""
        return {"Get": ITEM_REFERENCE + render_item_path(self.path)}


def render_item_path(path: tuple[PathPart, ...]) -> str:
    """Item paths are always bracketed: ``['name']``, ``[0]``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f"['{p}']" for p in path)


def parse_item_reference(ref: str) -> ForEachItem:
    """Inverse of :attr:`ForEachItem.expr`'s reference string."""
    return ForEachItem(parse_path(ref[len(ITEM_REFERENCE):]))


class ForEach(Step):
    """Run ``steps`` once per item of ``items`` (a list, a parameter holding a JSON list, or a step's output)."""

    step_type = "ForEach"
    exposed_properties = frozenset({"outputs", "items"})

    def __init__(
        self,
        name: str,
        items: Any,
        steps: Sequence[Any],
        outputs: Mapping[str, Any] | None = None,
        max_concurrency: int | None = None,
        depends_on: Sequence[StepRef] | None = None,
        display_name: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(name, depends_on, display_name, description)
        self.items = items
        self.body = [as_step(s, name) for s in steps]
        self.outputs = dict(outputs or {})
        self.max_concurrency = max_concurrency
        if not self.body:
            raise PipelineDefinitionError(f"ForEach {name!r} needs at least one step in its body")
        if max_concurrency is not None and max_concurrency < 1:
            raise PipelineDefinitionError(f"ForEach {name!r}: max_concurrency must be at least 1")
        if isinstance(items, (list, tuple)) and not items:
            raise PipelineDefinitionError(f"ForEach {name!r}: the list of items is empty")
        for s in self.all_body_steps():
            if isinstance(s, ForEach):
                raise PipelineDefinitionError(f"ForEach {name!r}: a ForEach inside a ForEach is not supported")

    def all_body_steps(self) -> list[Step]:
        """Body steps and the branch steps nested in them."""
        found: list[Step] = []
        pending = list(self.body)
        while pending:
            current = pending.pop(0)
            if all(current is not f for f in found):
                found.append(current)
                pending.extend(current.nested_steps())
        return found

    def local_step_names(self) -> set[str]:
        """Names that exist only inside the body (references to them stay inside the loop)."""
        return {s.name for s in self.all_body_steps()}

    def arguments(self) -> dict[str, Any]:
        """Items, body step definitions, fan-in outputs and the concurrency cap."""
        listed = {id(s) for s in self.body}
        nested = {id(n) for s in self.all_body_steps() for n in s.nested_steps()}
        top = [s for s in self.all_body_steps() if id(s) in listed or id(s) not in nested]
        return {"Items": serialize(self.items), "Steps": [s.to_request() for s in top],
                "Outputs": serialize(self.outputs), "MaxConcurrency": self.max_concurrency}

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> ForEach:
        args = request["Arguments"]
        return cls(items=parse_value(args["Items"]), steps=[Step.from_request(s) for s in args["Steps"]],
                   outputs=parse_value(args.get("Outputs", {})), max_concurrency=args.get("MaxConcurrency"),
                   **cls.common_kwargs(request))

    def children(self) -> Iterable[Any]:
        """Items, fan-in expressions, and every body step's values (their local references are filtered out)."""
        values: list[Any] = [self.items, *self.outputs.values()]
        for s in self.all_body_steps():
            values.extend(s.children())
        return values

    def check_property_path(self, path: tuple[Any, ...]) -> str | None:
        """``outputs[<declared fan-in name>]`` or ``items``."""
        problem = super().check_property_path(path)
        if problem is None and path[0] == "outputs" and len(path) > 1 and path[1] not in self.outputs:
            return (f"ForEach {self.name!r} has no output {path[1]!r} "
                    f"(outputs: {', '.join(self.outputs) or 'none'})")
        return problem

    def code_files(self) -> list[str]:
        """Code of every body step."""
        return [path for s in self.all_body_steps() for path in s.code_files()]
