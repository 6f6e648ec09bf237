"""When a step fails: a clear reason, downstream steps Skipped, independent steps still run."""

from __future__ import annotations

EXIT_3 = """
    import sys
    from pathlib import Path
    Path("out/partial.txt").write_text("half done")
    print("starting the import")
    print("reading shard 7", file=sys.stderr)
    print("shard 7 is corrupt: checksum mismatch", file=sys.stderr)
    sys.exit(3)
"""

WRITE_OUTPUT = """
    from pathlib import Path
    Path("out/data.txt").write_text("fine")
"""

FAILING_PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep

    broken = ProcessingStep(name="Import", code="exit3.py",
                            outputs=[ProcessingOutput(output_name="data", source="out")])
    uses_output = ProcessingStep(name="Clean", code="write.py",
                                 inputs=[ProcessingInput(source=broken.properties.outputs["data"], destination="in")],
                                 outputs=[ProcessingOutput(output_name="data", source="out")])
    after_clean = ProcessingStep(name="Report", code="write.py", depends_on=[uses_output],
                                 outputs=[ProcessingOutput(output_name="data", source="out")])
    ordered_after = ProcessingStep(name="Notify", code="write.py", depends_on=[broken])
    independent = ProcessingStep(name="Independent", code="slow_write.py",
                                 outputs=[ProcessingOutput(output_name="data", source="out")])
    pipeline = Pipeline(name="failing", steps=[broken, uses_output, after_clean, ordered_after, independent])
"""


def test_a_script_exiting_3_fails_its_step_and_skips_what_depends_on_it(project, cli):
    project.write("exit3.py", EXIT_3)
    project.write("write.py", WRITE_OUTPUT)
    project.write("slow_write.py", "import time\ntime.sleep(0.5)\n" + WRITE_OUTPUT.strip().replace("\n    ", "\n") + "\n")
    project.write("pipeline.py", FAILING_PIPELINE)

    finished = project.run()

    assert finished.status == "Failed"
    broken = finished.steps["Import"]
    assert broken.status == "Failed"
    assert "exited with code 3" in broken.failure_reason, broken.failure_reason
    assert "shard 7 is corrupt: checksum mismatch" in broken.failure_reason
    assert "starting the import" not in broken.failure_reason  # stdout is in the log, not the reason
    assert broken.outputs == {}  # outputs are only stored after a zero exit
    for name in ("Clean", "Report", "Notify"):
        assert finished.steps[name].status == "Skipped", name
        assert finished.steps[name].started_at is None, name
    assert "Import" in finished.steps["Clean"].failure_reason
    independent = finished.steps["Independent"]
    assert independent.status == "Succeeded"
    assert project.read_output(independent.outputs["data"], "data.txt") == "fine"
    assert "Import" in finished.failure_reason and "exited with code 3" in finished.failure_reason

    logs = cli("logs", finished.execution.id, "Import", cwd=project.root)
    assert logs.returncode == 0, logs
    assert "starting the import" in logs.stdout and "shard 7 is corrupt" in logs.stdout, logs

    described = cli("executions", "describe", finished.execution.id, cwd=project.root)
    assert described.returncode == 0, described
    assert "exited with code 3" in described.stdout, described
    assert "Failed" in described.stdout and "Skipped" in described.stdout


PROPERTY_FILE_PIPELINE = """
    from forgeline.workflow import (
        ConditionEquals, ConditionStep, JsonGet, Pipeline, ProcessingOutput, ProcessingStep, PropertyFile,
    )

    metrics = PropertyFile(name="Metrics", output_name="report", path="metrics.json")
    measure = ProcessingStep(name="Measure", code="measure.py",
                             outputs=[ProcessingOutput(output_name="report", source="report")],
                             property_files=[metrics])
    consume = ProcessingStep(name="Consume", code="noop.py",
                             arguments=["--value", JsonGet(step=measure, property_file=metrics, json_path="{path}")])
    gate = ConditionStep(
        name="Gate",
        conditions=[ConditionEquals(left=JsonGet(step=measure, property_file=metrics, json_path="{path}"),
                                    right=1)],
        if_steps=[ProcessingStep(name="Yes", code="noop.py")],
        else_steps=[ProcessingStep(name="No", code="noop.py")],
    )
    pipeline = Pipeline(name="props", steps=[measure, consume, gate])
"""


def test_a_property_file_that_is_not_json_fails_its_step(project):
    project.write("noop.py", "print('ran')\n")
    project.write("measure.py", """
        from pathlib import Path
        Path("report/metrics.json").write_text("accuracy: 0.9  # not JSON")
    """)
    project.write("pipeline.py", PROPERTY_FILE_PIPELINE.replace("{path}", "accuracy"))

    finished = project.run()

    assert finished.status == "Failed"
    measure = finished.steps["Measure"]
    assert measure.status == "Failed"
    assert "'Metrics'" in measure.failure_reason, measure.failure_reason
    assert "metrics.json" in measure.failure_reason
    assert "not valid JSON" in measure.failure_reason
    assert {finished.steps[n].status.value for n in ("Consume", "Gate", "Yes", "No")} == {"Skipped"}


def test_a_json_get_path_that_does_not_exist_fails_the_steps_using_it(project):
    project.write("noop.py", "print('ran')\n")
    project.write("measure.py", """
        import json
        from pathlib import Path
        Path("report/metrics.json").write_text(json.dumps({"metrics": {"accuracy": 0.9, "folds": [0.8]}}))
    """)
    project.write("pipeline.py", PROPERTY_FILE_PIPELINE.replace("{path}", "metrics.folds[3]"))

    finished = project.run()

    assert finished.status == "Failed"
    assert finished.steps["Measure"].status == "Succeeded"
    for name in ("Consume", "Gate"):
        run = finished.steps[name]
        assert run.status == "Failed", name
        assert "metrics.folds[3]" in run.failure_reason, (name, run.failure_reason)
    assert finished.statuses()["Yes"] == "Skipped" and finished.statuses()["No"] == "Skipped"


def test_a_json_get_key_that_does_not_exist_names_the_path(project):
    project.write("noop.py", "print('ran')\n")
    project.write("measure.py", """
        import json
        from pathlib import Path
        Path("report/metrics.json").write_text(json.dumps({"metrics": {"accuracy": 0.9}}))
    """)
    project.write("pipeline.py", PROPERTY_FILE_PIPELINE.replace("{path}", "metrics.precision"))

    finished = project.run()

    assert finished.status == "Failed"
    for name in ("Consume", "Gate"):
        assert finished.steps[name].status == "Failed", name
        assert "metrics.precision" in finished.steps[name].failure_reason, finished.steps[name].failure_reason


MISSING_INPUT_PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingInput, ProcessingStep

    read = ProcessingStep(name="Read", code="noop.py",
                          inputs=[ProcessingInput(source="data/missing.csv", destination="input")])
    after = ProcessingStep(name="After", code="noop.py", depends_on=[read])
    pipeline = Pipeline(name="missing-input", steps=[read, after])
"""


def test_a_missing_input_path_fails_the_step_naming_the_path(project):
    project.write("noop.py", "print('ran')\n")
    project.write("pipeline.py", MISSING_INPUT_PIPELINE)

    finished = project.run()

    assert finished.status == "Failed"
    read = finished.steps["Read"]
    assert read.status == "Failed"
    assert "data/missing.csv" in read.failure_reason, read.failure_reason
    assert finished.steps["After"].status == "Skipped"
    assert "data/missing.csv" in finished.failure_reason
