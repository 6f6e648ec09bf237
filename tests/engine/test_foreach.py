"""Expanding a ForEach: every iteration holds the body's steps, a ConditionStep's branches included."""

from __future__ import annotations

from forgeline.engine.foreach import expand
from forgeline.workflow import (
    ConditionEquals,
    ConditionStep,
    FailStep,
    ForEach,
    ForEachItem,
    ProcessingStep,
)


def test_an_iteration_holds_the_branches_of_its_condition_renamed() -> None:
    item = ForEachItem()
    work = ProcessingStep(name="Work", code="work.py", arguments=[item])
    after = ProcessingStep(name="After", code="after.py", depends_on=[work])
    refuse = FailStep(name="Refuse", error_message="no")
    gate = ConditionStep(name="Gate", conditions=[ConditionEquals(left=item, right="de")], if_steps=[after],
                         else_steps=[refuse])
    loop = ForEach(name="Market", items=["de", "fr"], steps=[work, gate])

    iterations = expand(loop, ["de", "fr"])

    names = [sorted(s.name for s in iteration.steps) for iteration in iterations]
    assert names == [[f"Market-{m}-{s}" for s in ("After", "Gate", "Refuse", "Work")] for m in ("de", "fr")]
    steps = {s.name: s for s in iterations[1].steps}
    gate_fr = steps["Market-fr-Gate"]
    assert isinstance(gate_fr, ConditionStep)
    assert [s.name for s in gate_fr.if_steps] == ["Market-fr-After"]  # the very objects the iteration runs
    assert gate_fr.if_steps[0] is steps["Market-fr-After"]
    assert steps["Market-fr-After"].depends_on == ["Market-fr-Work"]
