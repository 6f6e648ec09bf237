"""@step functions: delayed results chain into other steps, values are stored, exceptions fail the step."""

from __future__ import annotations

import os
import pickle

CHAIN_PIPELINE = """
    import os
    from forgeline.workflow import ExecutionVariables, Format, ParameterInteger, Pipeline, step

    size = ParameterInteger("Size", default_value=3)

    @step(name="MakeStats")
    def make_stats(n: int, run_id: str) -> dict:
        return {"total": n * 2, "label": f"n={n}", "run": run_id, "pid": os.getpid()}

    @step(name="Describe", env={"MY_GREETING": Format("hello {}", ExecutionVariables.PIPELINE_NAME)})
    def describe(total: int, label: str, tag: str) -> dict:
        return {"text": f"{label} total={total} tag={tag}", "greeting": os.environ.get("MY_GREETING"),
                "cwd": os.getcwd()}

    @step(name="Shapes")
    def shapes(n: int) -> set:
        return {("square", n), ("circle", n)}   # a set: not JSON, still stored

    @step(name="CountShapes")
    def count_shapes(found: set, described: dict) -> int:
        assert isinstance(found, set), type(found)
        return len(found) + len(described["text"])

    stats = make_stats(size, ExecutionVariables.EXECUTION_ID)
    described = describe(stats["total"], label=stats["label"], tag=Format("{}-{}", ExecutionVariables.PIPELINE_NAME, size))
    counted = count_shapes(shapes(size), described)
    pipeline = Pipeline(name="chain", parameters=[size], steps=[counted])
"""


def test_step_functions_chain_through_delayed_results(project):
    project.write("pipeline.py", CHAIN_PIPELINE)

    finished = project.run(parameters={"Size": 5})

    assert finished.status == "Succeeded", finished.failure_reason
    assert finished.statuses() == {"CountShapes": "Succeeded", "Shapes": "Succeeded", "Describe": "Succeeded",
                                   "MakeStats": "Succeeded"}
    execution = finished.execution
    stats = finished.steps["MakeStats"].properties["Return"]
    assert stats["total"] == 10 and stats["label"] == "n=5" and stats["run"] == execution.id
    # It ran in another process: neither this test nor the orchestrator.
    assert stats["pid"] not in (os.getpid(), execution.record().orchestrator_pid)

    described = finished.steps["Describe"].properties["Return"]
    assert described["text"] == "n=5 total=10 tag=chain-5"
    assert described["greeting"] == "hello chain"
    assert described["cwd"] != str(project.root)

    expected_count = 2 + len("n=5 total=10 tag=chain-5")
    assert finished.steps["CountShapes"].properties["Return"] == expected_count
    assert finished.steps["Describe"].started_at >= finished.steps["MakeStats"].ended_at
    assert finished.steps["CountShapes"].started_at >= finished.steps["Describe"].ended_at

    # Every return value is stored, JSON or not.
    artifacts = project.artifacts()
    shapes = finished.steps["Shapes"].properties
    assert "Return" not in shapes
    assert pickle.loads(artifacts.read_bytes(shapes["ReturnUri"])) == {("square", 5), ("circle", 5)}
    assert pickle.loads(artifacts.read_bytes(finished.steps["MakeStats"].properties["ReturnUri"])) == stats


MIXED_PIPELINE = """
    from pathlib import Path
    from forgeline.workflow import Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep, step

    produce = ProcessingStep(name="Produce", code="scripts/produce.py",
                             outputs=[ProcessingOutput(output_name="rows", source="rows")])

    @step(name="CountRows")
    def count_rows(folder: str) -> dict:
        lines = (Path(folder) / "rows.csv").read_text().splitlines()
        return {"rows": len(lines) - 1, "header": lines[0]}

    counted = count_rows(produce.properties.outputs["rows"])
    consume = ProcessingStep(name="Consume", code="scripts/consume.py",
                             inputs=[ProcessingInput(source=produce.properties.outputs["rows"], destination="rows")],
                             arguments=["--rows", counted["rows"], "--header", counted["header"]],
                             outputs=[ProcessingOutput(output_name="summary", source="summary")])
    pipeline = Pipeline(name="mixed", steps=[produce, consume])
"""

PRODUCE = """
    from pathlib import Path
    Path("rows/rows.csv").write_text("id,value\\n1,a\\n2,b\\n3,c\\n")
"""

CONSUME = """
    import sys
    from pathlib import Path
    Path("summary/summary.txt").write_text(" ".join(sys.argv[1:]))
"""


def test_a_step_function_between_processing_steps(project):
    """Processing outputs feed a @step, whose return value feeds a processing step's arguments."""
    project.write("scripts/produce.py", PRODUCE)
    project.write("scripts/consume.py", CONSUME)
    project.write("pipeline.py", MIXED_PIPELINE)

    finished = project.run()

    assert finished.status == "Succeeded", finished.failure_reason
    assert finished.steps["CountRows"].properties["Return"] == {"rows": 3, "header": "id,value"}
    summary = project.read_output(finished.steps["Consume"].outputs["summary"], "summary.txt")
    assert summary == "--rows 3 --header id,value"


RAISING_PIPELINE = """
    from forgeline.workflow import ParameterInteger, Pipeline, step

    value = ParameterInteger("Value", default_value=42)

    @step(name="Validate")
    def validate(v: int) -> int:
        print("validating", v)
        if v > 10:
            raise ValueError(f"bad input {v}: must be at most 10")
        return v

    @step(name="Use")
    def use(v: int) -> int:
        return v + 1

    @step(name="Unrelated")
    def unrelated() -> str:
        return "still ran"

    pipeline = Pipeline(name="raising", parameters=[value], steps=[use(validate(value)), unrelated()])
"""


def test_an_exception_in_a_step_function_fails_the_step(project, cli):
    project.write("pipeline.py", RAISING_PIPELINE)

    finished = project.run()

    assert finished.status == "Failed"
    validate = finished.steps["Validate"]
    assert validate.status == "Failed"
    assert "ValueError: bad input 42: must be at most 10" in validate.failure_reason, validate.failure_reason
    assert finished.steps["Use"].status == "Skipped"
    assert finished.steps["Unrelated"].status == "Succeeded"
    assert finished.steps["Unrelated"].properties["Return"] == "still ran"
    assert "ValueError: bad input 42" in finished.failure_reason

    logs = cli("logs", finished.execution.id, "Validate", cwd=project.root)
    assert logs.returncode == 0, logs
    assert "validating 42" in logs.stdout
    assert "Traceback" in logs.stdout and "ValueError: bad input 42" in logs.stdout  # the user's traceback

    again = project.run(parameters={"Value": 7})
    assert again.status == "Succeeded", again.failure_reason
    assert again.steps["Use"].properties["Return"] == 8
