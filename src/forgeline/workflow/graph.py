"""StepGraph: the DAG of a pipeline from data references, explicit depends_on and branch membership."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from forgeline.workflow.expressions import JsonGet, Property, walk
from forgeline.workflow.steps.base import Step


def referenced_step_names(step: Step) -> set[str]:
    """Names of the steps whose properties or property files ``step`` reads."""
    names: set[str] = set()
    for node in walk(list(step.children())):
        if isinstance(node, (Property, JsonGet)):
            names.add(node.step_name)
    return names


@dataclass(frozen=True)
class StepGraph:
    """Upstream sets per step, in definition order, plus which ConditionStep branch owns a step."""

    order: tuple[str, ...]
    upstream: dict[str, frozenset[str]]
    branch_of: dict[str, tuple[str, bool]]

    @classmethod
    def build(cls, steps: Sequence[Step]) -> StepGraph:
        """Derive edges from the steps' expressions, depends_on lists and condition branches."""
        upstream: dict[str, set[str]] = {s.name: set() for s in steps}
        branch_of: dict[str, tuple[str, bool]] = {}
        for s in steps:
            upstream[s.name] |= (referenced_step_names(s) - s.local_step_names()) | set(s.depends_on)
            for nested in s.nested_steps():
                branch_of[nested.name] = (s.name, any(nested is x for x in getattr(s, "if_steps", [])))
                upstream.setdefault(nested.name, set()).add(s.name)
        return cls(tuple(s.name for s in steps), {k: frozenset(v) for k, v in upstream.items()}, branch_of)

    def ancestors(self, *names: str) -> set[str]:
        """Every step that (transitively) runs before any of ``names``; a name is its own ancestor only in a cycle."""
        found: set[str] = set()
        stack = list(names)
        while stack:
            for parent in self.upstream.get(stack.pop(), ()):
                if parent not in found:
                    found.add(parent)
                    stack.append(parent)
        return found

    def topological_order(self) -> list[str]:
        """Every step after all of its upstream steps, otherwise in definition order (the graph is acyclic)."""
        placed: list[str] = []
        done: set[str] = set()
        remaining = list(self.order)
        while remaining:
            ready = [n for n in remaining if self.upstream[n] <= done]
            if not ready:
                raise ValueError("the step graph has a cycle")
            placed.extend(ready)
            done.update(ready)
            remaining = [n for n in remaining if n not in done]
        return placed

    def find_cycle(self) -> list[str] | None:
        """A cycle as a list of step names (first name repeated at the end), or None."""
        state: dict[str, int] = {}
        path: list[str] = []

        def visit(name: str) -> list[str] | None:
            state[name] = 1
            path.append(name)
            for parent in sorted(self.upstream.get(name, ())):
                if parent not in self.upstream:
                    continue
                if state.get(parent) == 1:
                    cycle = path[path.index(parent):] + [parent]
                    return list(reversed(cycle))
                if parent not in state:
                    found = visit(parent)
                    if found:
                        return found
            state[name] = 2
            path.pop()
            return None

        for name in self.order:
            if name not in state:
                cycle = visit(name)
                if cycle:
                    return cycle
        return None
