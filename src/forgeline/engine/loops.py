"""Running ForEach steps: expand them when they start, and record their end with the fan-in of their results.

Which iterations may start under the loop's cap, and when a loop has ended, is the scheduler's business.
"""

from __future__ import annotations

from typing import Any

from forgeline.engine.foreach import LoopState, expand, fan_in, resolve_items
from forgeline.engine.scheduler import EndLoop
from forgeline.engine.state import ExecutionState, now
from forgeline.engine.transitions import Transition, record_transition
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
        started = now()
        try:
            items = run.properties.get("items") or resolve_items(loop, state.resolution)
        except ForgelineError as exc:
            record_transition(state, Transition(loop.name, StepStatus.FAILED, started_at=started,
                                                failure_reason=str(exc)))
            return
        if not items:
            record_transition(state, Transition(loop.name, StepStatus.SUCCEEDED, started_at=started, properties={
                "items": [], "outputs": {name: [] for name in loop.outputs}}))
            return
        self._expand(loop, items)
        record_transition(state, Transition(loop.name, StepStatus.EXECUTING, started_at=started,
                                            properties={"items": items}))

    def _expand(self, loop: ForEach, items: list[Any]) -> None:
        running = LoopState(loop, expand(loop, items))
        self.loops[loop.name] = running
        self.state.add_steps([s for iteration in running.iterations for s in iteration.steps])
        self.state.scheduler.add_loop(running)

    def end(self, action: EndLoop) -> None:
        """Record a loop's end: Failed naming the items (or why it ended early), or Succeeded with the fan-in."""
        name, status = action.step, self.state.scheduler.status[action.step]
        if action.failures:
            record_transition(self.state, Transition(name, status, failure_reason="; ".join(action.failures)))
            return
        running = self.loops[name]
        outputs = fan_in(running.loop, running.iterations, self.state.resolution)
        properties = {"items": [i.item for i in running.iterations], "outputs": outputs}
        record_transition(self.state, Transition(name, StepStatus.SUCCEEDED, properties=properties))
