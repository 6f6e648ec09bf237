"""StepGraph alone: edges from data references, depends_on and branches; order, cycles and ancestors."""

from __future__ import annotations

import pytest

from forgeline.workflow import ConditionStep, FailStep, ProcessingInput, ProcessingOutput, ProcessingStep
from forgeline.workflow.conditions import ConditionEquals
from forgeline.workflow.graph import StepGraph
from forgeline.workflow.steps import Step


def job(name: str, *after: Step | str, reads: ProcessingStep | None = None) -> ProcessingStep:
    inputs = [] if reads is None else [ProcessingInput(source=reads.properties.outputs["out"], destination="in")]
    return ProcessingStep(name=name, code="job.py", depends_on=list(after), inputs=inputs,
                          outputs=[ProcessingOutput(output_name="out", source="out")])


def diamond() -> StepGraph:
    a = job("A")
    b, c = job("B", reads=a), job("C", a)
    return StepGraph.build([a, b, c, job("D", b, c)])


def test_edges_come_from_data_references_and_depends_on() -> None:
    graph = diamond()
    assert graph.upstream == {"A": frozenset(), "B": {"A"}, "C": {"A"}, "D": {"B", "C"}}
    assert graph.order == ("A", "B", "C", "D")


def test_a_branch_step_runs_after_its_condition_and_knows_which_branch_holds_it() -> None:
    check = job("Check")
    good, bad = job("Good"), FailStep(name="Bad", error_message="no")
    gate = ConditionStep(name="Gate", conditions=[ConditionEquals(left=1, right=1)], if_steps=[good],
                         else_steps=[bad], depends_on=[check])
    graph = StepGraph.build([check, gate, good, bad])
    assert graph.upstream["Good"] == {"Gate"} and graph.upstream["Bad"] == {"Gate"}
    assert graph.branch_of == {"Good": ("Gate", True), "Bad": ("Gate", False)}
    assert graph.ancestors("Bad") == {"Gate", "Check"}


def test_a_step_is_ready_only_after_all_of_its_upstream_steps() -> None:
    d, c, b, a = job("D", "B", "C"), job("C", "A"), job("B", "A"), job("A")
    order = StepGraph.build([d, c, b, a]).topological_order()
    assert order == ["A", "C", "B", "D"]  # ready steps keep definition order: C was defined before B
    for name in order:
        assert all(order.index(up) < order.index(name) for up in StepGraph.build([d, c, b, a]).upstream[name])


def test_ancestors_are_transitive_and_exclude_the_step_itself() -> None:
    graph = diamond()
    assert graph.ancestors("D") == {"A", "B", "C"}
    assert graph.ancestors("B") == {"A"}
    assert graph.ancestors("A") == set()
    assert graph.ancestors("B", "C") == {"A"}
    assert graph.ancestors("Nowhere") == set()


def test_a_cycle_is_found_as_a_path_and_has_no_order() -> None:
    graph = StepGraph.build([job("A", "C"), job("B", "A"), job("C", "B"), job("Free")])
    cycle = graph.find_cycle()
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"A", "B", "C"}
    assert "A" in graph.ancestors("A")  # a step is its own ancestor only in a cycle
    with pytest.raises(ValueError, match="cycle"):
        graph.topological_order()
    assert diamond().find_cycle() is None
