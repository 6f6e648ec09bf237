"""Running ForEach steps: expand them when they start, hold their iterations to the cap, fan their results in."""

from __future__ import annotations

from typing import Any

from forgeline.engine.foreach import LoopState, expand, fan_in, resolve_items
from forgeline.engine.state import ExecutionState, now
from forgeline.errors import ForgelineError
from forgeline.store.metadata.records import StepStatus
from forgeline.workflow.steps import ForEach


class LoopRunner:
    """The ForEach steps of one execution."""

    def __init__(self, state: ExecutionState) -> None:
        self.state = state
        self.loops: dict[str, LoopState] = {}

    def restore(self, loop: ForEach, items: list[Any]) -> None:
        """Re-expand a loop that had started before (resume, retry): its items were recorded then."""
        self._expand(loop, items)

    def start(self, loop: ForEach) -> None:
        """Resolve the items (or reuse the recorded ones) and add one copy of the body per item."""
        state = self.state
        run = state.store.get_step_run(state.id, loop.name)
        try:
            items = run.properties.get("items") or resolve_items(loop, state.resolution)
        except ForgelineError as exc:
            state.set(loop.name, StepStatus.FAILED, started_at=now(), failure_reason=str(exc))
            return
        if not items:
            state.set(loop.name, StepStatus.SUCCEEDED, started_at=now(),
                      properties={"items": [], "outputs": {name: [] for name in loop.outputs}})
            return
        self._expand(loop, items)
        state.status[loop.name] = StepStatus.EXECUTING
        state.store.update_step_run(state.id, loop.name, status=StepStatus.EXECUTING, started_at=now(),
                                    properties={"items": items})

    def _expand(self, loop: ForEach, items: list[Any]) -> None:
        running = LoopState(loop, expand(loop, items))
        self.loops[loop.name] = running
        self.state.add_steps([s for iteration in running.iterations for s in iteration.steps])

    def may_start(self, name: str) -> bool:
        """Whether a step may start under its loop's concurrency cap (steps outside loops always may)."""
        for running in self.loops.values():
            iteration = running.iteration_of(name)
            if iteration is not None:
                return running.may_start(iteration, self.state.status)
        return True

    def complete(self) -> None:
        """End every loop whose iterations have all ended: Failed naming the items, or Succeeded with the fan-in."""
        state = self.state
        for name, running in self.loops.items():
            if state.status[name] != StepStatus.EXECUTING or not running.finished(state.status):
                continue
            failed = running.failures(state.status)
            if failed:
                state.set(name, StepStatus.FAILED, failure_reason="; ".join(failed))
                continue
            outputs = fan_in(running.loop, running.iterations, state.resolution)
            properties = {"items": [i.item for i in running.iterations], "outputs": outputs}
            state.resolution.step_properties[name] = properties
            state.set(name, StepStatus.SUCCEEDED, properties=properties)

    def close_unfinished(self, stopping: bool) -> None:
        """At the end of an execution, a loop still running is Stopped (or Failed) with its iterations unfinished."""
        for name in self.loops:
            if self.state.status[name] == StepStatus.EXECUTING:
                self.complete()
            if self.state.status[name] == StepStatus.EXECUTING:
                ended = StepStatus.STOPPED if stopping else StepStatus.FAILED
                self.state.set(name, ended, failure_reason="the execution ended before every item finished")
