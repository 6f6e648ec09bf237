"""ConditionStep runs only the chosen branch; FailStep ends the execution with its resolved message."""

from __future__ import annotations

CONDITIONS_PIPELINE = """
    from forgeline.workflow import (
        ConditionEquals, ConditionGreaterThan, ConditionGreaterThanOrEqualTo, ConditionIn,
        ConditionLessThan, ConditionLessThanOrEqualTo, ConditionNot, ConditionOr, ConditionStep,
        ExecutionVariables, Format, Join, ParameterFloat, ParameterInteger, ParameterString, Pipeline, ProcessingStep,
    )

    count = ParameterInteger("Count", default_value=5)
    score = ParameterFloat("Score", default_value=0.75)
    mode = ParameterString("Mode", default_value="train")

    def gate(name, *conditions):
        return ConditionStep(
            name=name, conditions=list(conditions),
            if_steps=[ProcessingStep(name=f"{name}Yes", code="noop.py")],
            else_steps=[ProcessingStep(name=f"{name}No", code="noop.py")],
        )

    gates = [
        gate("Equals", ConditionEquals(left=count, right=5)),
        gate("NotEquals", ConditionEquals(left=mode, right="serve")),
        gate("GreaterThan", ConditionGreaterThan(left=score, right=0.5)),
        gate("GreaterThanEqual", ConditionGreaterThan(left=count, right=5)),
        gate("AtLeast", ConditionGreaterThanOrEqualTo(left=count, right=5)),
        gate("LessThan", ConditionLessThan(left=score, right=0.5)),
        gate("AtMost", ConditionLessThanOrEqualTo(left=score, right=0.75)),
        gate("In", ConditionIn(value=mode, in_values=["train", "tune"])),
        gate("NotIn", ConditionIn(value=mode, in_values=["serve"])),
        gate("Not", ConditionNot(expression=ConditionEquals(left=mode, right="serve"))),
        gate("Or", ConditionOr(conditions=[ConditionEquals(left=count, right=1),
                                           ConditionLessThan(left=score, right=0.8)])),
        gate("OrNeither", ConditionOr(conditions=[ConditionEquals(left=count, right=1),
                                                  ConditionIn(value=mode, in_values=["serve"])])),
        gate("AllOf", ConditionEquals(left=mode, right="train"), ConditionGreaterThan(left=count, right=10)),
        gate("Literal", ConditionEquals(left=count, right=count)),
        gate("Formatted", ConditionEquals(left=Format("{}-{}", mode, count), right="train-5")),
        gate("Joined", ConditionIn(value=Join(on="/", values=[ExecutionVariables.PIPELINE_NAME, mode]),
                                   in_values=["conditions/train", "conditions/tune"])),
    ]
    pipeline = Pipeline(name="conditions", parameters=[count, score, mode], steps=gates)
"""

CHOSEN_BY_DEFAULTS = {
    "Equals": True, "NotEquals": False, "GreaterThan": True, "GreaterThanEqual": False, "AtLeast": True,
    "LessThan": False, "AtMost": True, "In": True, "NotIn": False, "Not": True, "Or": True,
    "OrNeither": False, "AllOf": False, "Literal": True, "Formatted": True, "Joined": True,
}


def test_every_condition_kind_runs_only_the_chosen_branch(project):
    project.write("noop.py", "print('ran')\n")
    project.write("pipeline.py", CONDITIONS_PIPELINE)

    finished = project.run()

    assert finished.status == "Succeeded", finished.failure_reason
    wrong = {}
    for gate, holds in CHOSEN_BY_DEFAULTS.items():
        chosen, other = (f"{gate}Yes", f"{gate}No") if holds else (f"{gate}No", f"{gate}Yes")
        observed = (finished.steps[gate].status.value, finished.steps[chosen].status.value,
                    finished.steps[other].status.value)
        if observed != ("Succeeded", "Succeeded", "Skipped"):
            wrong[gate] = observed
        assert finished.steps[gate].properties.get("outcome") is holds, gate
        assert finished.steps[other].started_at is None, other
        assert finished.steps[other].attempts == 0, other
    assert wrong == {}


def test_a_parameter_override_flips_the_branch(project):
    project.write("noop.py", "print('ran')\n")
    project.write("pipeline.py", CONDITIONS_PIPELINE)

    finished = project.run(parameters={"Count": 1, "Mode": "serve"})

    assert finished.status == "Succeeded", finished.failure_reason
    statuses = finished.statuses()
    assert statuses["EqualsNo"] == "Succeeded" and statuses["EqualsYes"] == "Skipped"
    assert statuses["NotEqualsYes"] == "Succeeded"
    assert statuses["OrNeitherYes"] == "Succeeded"
    assert statuses["InNo"] == "Succeeded"
    assert statuses["FormattedNo"] == "Succeeded" and statuses["JoinedNo"] == "Succeeded"


JSON_GATE_PIPELINE = """
    from forgeline.workflow import (
        ConditionGreaterThan, ConditionStep, FailStep, Format, JsonGet, Pipeline, ProcessingOutput,
        ProcessingStep, PropertyFile,
    )

    metrics = PropertyFile(name="Metrics", output_name="report", path="metrics.json")
    measure = ProcessingStep(name="Measure", code="measure.py",
                             outputs=[ProcessingOutput(output_name="report", source="report")],
                             property_files=[metrics])
    second = JsonGet(step=measure, property_file=metrics, json_path="runs[1].score")
    gate = ConditionStep(
        name="Gate",
        conditions=[ConditionGreaterThan(left=second, right=0.9)],
        if_steps=[ProcessingStep(name="Deploy", code="noop.py")],
        else_steps=[FailStep(name="Reject", error_message=Format("second run scored {}, needs > {}", second, 0.9))],
    )
    pipeline = Pipeline(name="json-gate", steps=[measure, gate])
"""

MEASURE = """
    import json
    from pathlib import Path
    Path("report/metrics.json").write_text(json.dumps({"runs": [{"score": 0.99}, {"score": 0.5}]}))
"""


def test_a_condition_on_json_get_with_an_index_and_a_formatted_fail_message(project):
    project.write("noop.py", "print('ran')\n")
    project.write("measure.py", MEASURE)
    project.write("pipeline.py", JSON_GATE_PIPELINE)

    finished = project.run()

    assert finished.status == "Failed"
    assert finished.failure_reason == "second run scored 0.5, needs > 0.9"
    assert finished.statuses() == {"Measure": "Succeeded", "Gate": "Succeeded", "Deploy": "Skipped",
                                   "Reject": "Failed"}


FAIL_STEP_PIPELINE = """
    from forgeline.workflow import (
        ConditionEquals, ConditionStep, ExecutionVariables, FailStep, Join, ParameterString, Pipeline,
        ProcessingStep,
    )

    mode = ParameterString("Mode", default_value="broken")
    slow = ProcessingStep(name="Slow", code="slow.py")
    after_slow = ProcessingStep(name="AfterSlow", code="noop.py", depends_on=[slow])
    gate = ConditionStep(
        name="Gate",
        conditions=[ConditionEquals(left=mode, right="ok")],
        if_steps=[ProcessingStep(name="Continue", code="noop.py")],
        else_steps=[FailStep(name="Abort", error_message=Join(
            on=" ", values=["mode", mode, "is not ok in", ExecutionVariables.PIPELINE_NAME]))],
    )
    pipeline = Pipeline(name="fail-fast", parameters=[mode], steps=[slow, after_slow, gate])
"""


def test_a_fail_step_fails_the_execution_and_no_new_step_starts(project):
    project.write("noop.py", "print('ran')\n")
    project.write("slow.py", "import time\ntime.sleep(1.5)\n")
    project.write("pipeline.py", FAIL_STEP_PIPELINE)

    finished = project.run()

    assert finished.status == "Failed"
    assert finished.failure_reason == "mode broken is not ok in fail-fast"
    statuses = finished.statuses()
    assert statuses["Abort"] == "Failed"
    assert finished.steps["Abort"].failure_reason == "mode broken is not ok in fail-fast"
    assert statuses["Continue"] == "Skipped"
    # Slow was already running when Abort was reached; what depends on it never starts.
    assert statuses["AfterSlow"] == "Skipped"
    assert finished.steps["AfterSlow"].started_at is None
    assert finished.steps["AfterSlow"].attempts == 0
    assert finished.execution.list_attempts("AfterSlow") == []


def test_the_other_branch_of_a_fail_gate_lets_the_execution_succeed(project):
    project.write("noop.py", "print('ran')\n")
    project.write("slow.py", "print('quick this time')\n")
    project.write("pipeline.py", FAIL_STEP_PIPELINE)

    finished = project.run(parameters={"Mode": "ok"})

    assert finished.status == "Succeeded", finished.failure_reason
    assert finished.statuses() == {"Slow": "Succeeded", "AfterSlow": "Succeeded", "Gate": "Succeeded",
                                   "Continue": "Succeeded", "Abort": "Skipped"}
