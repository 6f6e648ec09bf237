"""Step caching, end to end: a rerun reuses what did not change, and only that.

The pipeline under test is a small ETL with every job step cached:

    Extract (data.csv, helper.py) -> Transform (--scale Scale, property file Stats) -> Load -> Publish
    Audit (Label), independent                                  Gate: Stats.rows > 0 ? Publish : Empty

Every script appends its name to $RUNS_LOG (a variable of the test's environment, so not part of any key)
when it really runs, which proves independently of the step records that a cache hit ran nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import textwrap
import time

import pytest

from forgeline.config import Settings
from forgeline.engine.execution import PipelineExecution
from forgeline.engine.launch import plan_execution

JOB_STEPS = ("Extract", "Transform", "Load", "Audit", "Publish")

ETL_PIPELINE = """
    from forgeline.workflow import (
        CacheConfig, ConditionGreaterThan, ConditionStep, FailStep, JsonGet, ParameterInteger, ParameterString,
        Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep, PropertyFile,
    )

    CACHE = CacheConfig(enable_caching=True, expire_after="P30D")
    scale = ParameterInteger("Scale", default_value=2)
    label = ParameterString("Label", default_value="weekly")

    extract = ProcessingStep(
        name="Extract", code="extract.py", cache_config=CACHE,
        inputs=[ProcessingInput(source="data.csv", destination="in")],
        outputs=[ProcessingOutput(output_name="rows", source="out")])
    stats = PropertyFile(name="Stats", output_name="stats", path="stats.json")
    transform = ProcessingStep(
        name="Transform", code="transform.py", cache_config=CACHE, arguments=["--scale", scale],
        inputs=[ProcessingInput(source=extract.properties.outputs["rows"], destination="in")],
        outputs=[ProcessingOutput(output_name="rows", source="out"),
                 ProcessingOutput(output_name="stats", source="stats")],
        property_files=[stats])
    load = ProcessingStep(
        name="Load", code="load.py", cache_config=CACHE,
        inputs=[ProcessingInput(source=transform.properties.outputs["rows"], destination="in")],
        outputs=[ProcessingOutput(output_name="table", source="out")])
    audit = ProcessingStep(
        name="Audit", code="audit.py", cache_config=CACHE, arguments=[label],
        outputs=[ProcessingOutput(output_name="report", source="out")])
    publish = ProcessingStep(
        name="Publish", code="publish.py", cache_config=CACHE,
        inputs=[ProcessingInput(source=load.properties.outputs["table"], destination="in")],
        outputs=[ProcessingOutput(output_name="site", source="out")])
    gate = ConditionStep(
        name="Gate",
        conditions=[ConditionGreaterThan(left=JsonGet(step=transform, property_file=stats, json_path="rows"),
                                         right=0)],
        if_steps=[publish], else_steps=[FailStep(name="Empty", error_message="no rows")])
    pipeline = Pipeline(name="etl", parameters=[scale, label], steps=[extract, transform, load, audit, gate])
"""

RECORD_RUN = """
    import os
    if os.environ.get("RUNS_LOG"):
        with open(os.environ["RUNS_LOG"], "a") as log:
            log.write({name!r} + "\\n")
"""

SCRIPTS = {
    "extract.py": """
        from pathlib import Path
        import helper
        Path("out/rows.txt").write_text(helper.tag(Path("in/data.csv").read_text()))
    """,
    "transform.py": """
        import json, sys
        from pathlib import Path
        scale = int(sys.argv[sys.argv.index("--scale") + 1])
        rows = Path("in/rows.txt").read_text().splitlines()
        Path("out/rows.txt").write_text("\\n".join(row * scale for row in rows))
        Path("stats/stats.json").write_text(json.dumps({"rows": len(rows)}))
    """,
    "load.py": """
        from pathlib import Path
        Path("out/table.txt").write_text(Path("in/rows.txt").read_text().upper())
    """,
    "audit.py": """
        import sys
        from pathlib import Path
        Path("out/audit.txt").write_text("audited " + sys.argv[1])
    """,
    "publish.py": """
        from pathlib import Path
        Path("out/index.html").write_text("<pre>" + Path("in/table.txt").read_text() + "</pre>")
    """,
    "helper.py": """
        def tag(text):
            return text.strip() + "\\n#"
    """,
}

EXECUTION_LINE = re.compile(r"execution ([0-9a-f]{12}) (\w+)")


@pytest.fixture
def etl(project, monkeypatch, tmp_path):
    """The ETL project, with $RUNS_LOG set for in-process starts (and passed to CLI runs by `runs_env`)."""
    for name, text in SCRIPTS.items():
        write_script(project, name, text)
    project.write("data.csv", "a\nb\n")
    project.write("pipeline.py", ETL_PIPELINE)
    project.runs_log = tmp_path / "runs.log"
    project.runs_env = {"RUNS_LOG": str(project.runs_log)}
    monkeypatch.setenv("RUNS_LOG", str(project.runs_log))
    return project


def write_script(project, name: str, text: str) -> None:
    """Write one of the ETL's files; scripts first record that they ran."""
    record = "" if name == "helper.py" else RECORD_RUN.format(name=name.removesuffix(".py").title())
    project.write(name, textwrap.dedent(record).lstrip("\n") + textwrap.dedent(text).lstrip("\n"))


def ran(project) -> list[str]:
    """Names of the scripts that really ran since the last call, in order."""
    if not project.runs_log.exists():
        return []
    names = project.runs_log.read_text().split()
    project.runs_log.unlink()
    return names


def hits(finished) -> dict[str, bool]:
    return {name: finished.steps[name].cache_hit for name in JOB_STEPS}


def only_missed(finished) -> set[str]:
    return {name for name in JOB_STEPS if not finished.steps[name].cache_hit}


def executed(cli_run) -> str:
    """The id of the execution a `forgeline run` printed, after checking that it succeeded."""
    assert cli_run.returncode == 0, cli_run
    found = EXECUTION_LINE.findall(cli_run.stdout)
    assert found and found[-1][1] == "Succeeded", cli_run
    return found[-1][0]


def plan_rows(cli_run) -> dict[str, tuple[str, str]]:
    """`forgeline plan` table rows: step -> (decision, why)."""
    assert cli_run.returncode == 0, cli_run
    rows = {}
    for line in cli_run.stdout.splitlines():
        row = re.match(r"^(\S+)\s{2,}\S+\s{2,}(HIT|MISS|SKIP|RUN)(?:\s{2,}(.*?))?\s*$", line)
        if row:
            rows[row.group(1)] = (row.group(2), row.group(3) or "")
    return rows


def plans(overrides=None):
    return {p.name: p for p in plan_execution(_load(), overrides or {})}


def _load():
    from forgeline.engine.loader import load_pipeline

    return load_pipeline("pipeline.py")


def test_a_second_run_is_all_cache_hits_and_starts_no_job(etl, cli):
    first_id = executed(cli("run", "pipeline.py", cwd=etl.root, env=etl.runs_env))
    assert sorted(ran(etl)) == sorted(JOB_STEPS)

    second_run = cli("run", "pipeline.py", cwd=etl.root, env=etl.runs_env)
    second_id = executed(second_run)

    assert ran(etl) == []  # no script ran
    second = PipelineExecution.get(second_id)
    steps = {run.name: run for run in second.list_steps()}
    for name in JOB_STEPS:
        run = steps[name]
        assert (run.status.value, run.cache_hit, run.cache_source) == ("Succeeded", True, first_id), name
        assert run.attempts == 0 and second.list_attempts(name) == [], name
    # no job folder was even made (how fast that is: benchmarks/bench_caching.py, not a test's clock)
    assert not (Settings.from_env().jobs_dir / second_id).exists()
    assert f"cache hit from {first_id}" in second_run.stdout

    first = {run.name: run for run in PipelineExecution.get(first_id).list_steps()}
    for name in JOB_STEPS:
        assert steps[name].outputs == first[name].outputs, name  # the earlier outputs, reused
    # a JsonGet over the property file of a cached step still works: the gate chose Publish
    assert steps["Transform"].properties["PropertyFiles"] == {"Stats": {"rows": 3}}
    assert (steps["Gate"].status.value, steps["Gate"].properties) == ("Succeeded", {"outcome": True})
    assert steps["Empty"].status.value == "Skipped"
    assert etl.read_output(steps["Publish"].outputs["site"], "index.html") == "<pre>AA\nBB\n##</pre>"


def test_plan_says_hit_or_miss_per_step_and_which_part_of_the_key_changed(etl, cli):
    before = plan_rows(cli("plan", "pipeline.py", cwd=etl.root))
    assert before["Extract"] == ("MISS", "no earlier cached result of this step")
    assert before["Transform"] == ("MISS", "its inputs only exist at run time: upstream step 'Extract' runs first")
    assert before["Audit"] == ("MISS", "no earlier cached result of this step")
    assert etl.store().list_executions() == []  # planning ran nothing
    first_id = executed(cli("run", "pipeline.py", cwd=etl.root))

    unchanged = plan_rows(cli("plan", "pipeline.py", cwd=etl.root))
    for name in JOB_STEPS:
        assert unchanged[name] == ("HIT", f"from execution {first_id}"), (name, unchanged)
    assert unchanged["Gate"] == ("RUN", "evaluates to true")  # its JsonGet reads the cached property file
    assert unchanged["Empty"][0] == "SKIP"

    changed = plan_rows(cli("plan", "pipeline.py", "-p", "Scale=3", cwd=etl.root))
    assert changed["Transform"][0] == "MISS"
    assert "parameter 'Scale' changed: 2 -> 3" in changed["Transform"][1]
    assert changed["Load"] == ("MISS", "its inputs only exist at run time: upstream step 'Transform' runs first")
    assert changed["Extract"][0] == changed["Audit"][0] == "HIT"


def test_one_changed_character_of_a_script_reruns_that_step_and_what_is_downstream_only(etl):
    etl.run()
    ran(etl)
    write_script(etl, "load.py", SCRIPTS["load.py"].replace(".upper()", ".title()"))

    planned = plans()
    assert (planned["Load"].decision, planned["Load"].reasons) == ("MISS", ["code file 'load.py' changed"])
    assert planned["Publish"].reasons == ["its inputs only exist at run time: upstream step 'Load' runs first"]
    finished = etl.run()

    assert finished.status == "Succeeded"
    assert only_missed(finished) == {"Load", "Publish"}
    assert sorted(ran(etl)) == ["Load", "Publish"]
    assert etl.read_output(finished.steps["Publish"].outputs["site"], "index.html") == "<pre>Aa\nBb\n##</pre>"


def test_one_changed_byte_of_an_input_reruns_its_consumers_and_nothing_independent(etl):
    etl.run()
    ran(etl)
    etl.write("data.csv", "a\nc\n")  # same size, one byte

    assert plans()["Extract"].reasons == ["input 'in' changed"]
    finished = etl.run()

    assert only_missed(finished) == {"Extract", "Transform", "Load", "Publish"}
    assert finished.steps["Audit"].cache_hit
    assert "Audit" not in ran(etl)


def test_a_helper_module_the_script_imports_counts_as_its_code(etl):
    etl.run()
    ran(etl)
    write_script(etl, "helper.py", SCRIPTS["helper.py"].replace('"\\n#"', '"\\n##"'))

    assert plans()["Extract"].reasons == ["code file 'helper.py' changed"]
    finished = etl.run()

    assert only_missed(finished) == {"Extract", "Transform", "Load", "Publish"}
    assert etl.read_output(finished.steps["Load"].outputs["table"], "table.txt") == "AA\nBB\n####"


@pytest.mark.parametrize("overrides, step, missed, reason", [
    ({"Label": "daily"}, "Audit", {"Audit"}, "parameter 'Label' changed: weekly -> daily"),
    ({"Scale": 3}, "Transform", {"Transform", "Load", "Publish"}, "parameter 'Scale' changed: 2 -> 3"),
])
def test_a_parameter_invalidates_the_steps_that_use_it_and_their_downstream_only(etl, overrides, step, missed,
                                                                                  reason):
    etl.run()
    planned = plans(overrides)
    assert planned[step].decision == "MISS" and reason in planned[step].reasons

    assert only_missed(etl.run(parameters=overrides)) == missed
    assert only_missed(etl.run(parameters=overrides)) == set()
    assert only_missed(etl.run()) == set()  # the first parameters' results are still there


def test_timestamps_and_the_project_folder_are_not_part_of_the_key(etl, tmp_path, monkeypatch):
    first = etl.run()
    ran(etl)
    for path in etl.root.iterdir():
        os.utime(path)  # everything touched: new mtimes, same bytes
    assert only_missed(etl.run()) == set()

    moved = tmp_path / "elsewhere" / "project-copy"
    shutil.copytree(etl.root, moved)
    monkeypatch.chdir(moved)
    again = etl.run()
    assert only_missed(again) == set()
    assert {again.steps[n].cache_source for n in JOB_STEPS} == {first.execution.id}
    assert ran(etl) == []


UPSTREAM_PIPELINE = """
    from forgeline.workflow import CacheConfig, Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep

    produce = ProcessingStep(name="Produce", code="produce.py",  # not cached: runs every time, new output URI
                             outputs=[ProcessingOutput(output_name="data", source="out")])
    consume = ProcessingStep(name="Consume", code="consume.py", cache_config=CacheConfig(enable_caching=True),
                             inputs=[ProcessingInput(source=produce.properties.outputs["data"], destination="in")],
                             outputs=[ProcessingOutput(output_name="data", source="out")])
    pipeline = Pipeline(name="upstream", steps=[produce, consume])
"""


def test_an_upstream_output_with_the_same_content_at_a_new_uri_is_still_a_hit(project):
    project.write("produce.py", "open('out/v.txt', 'w').write(open({!r}).read())\n".format(
        str(project.root / "source.txt")))
    project.write("consume.py", "open('out/w.txt', 'w').write(open('in/v.txt').read() * 2)\n")
    project.write("source.txt", "same")
    project.write("pipeline.py", UPSTREAM_PIPELINE)
    first = project.run()
    second = project.run()

    assert second.steps["Produce"].outputs["data"] != first.steps["Produce"].outputs["data"]
    assert not second.steps["Produce"].cache_hit
    assert (second.steps["Consume"].cache_hit, second.steps["Consume"].cache_source) == (True, first.execution.id)

    (project.root / "source.txt").write_text("diff")  # the data at the same path changed
    third = project.run()
    assert not third.steps["Consume"].cache_hit
    assert project.read_output(third.steps["Consume"].outputs["data"], "w.txt") == "diffdiff"


SOURCE_DIR_PIPELINE = """
    from forgeline.workflow import CacheConfig, Pipeline, ProcessingOutput, ProcessingStep

    render = ProcessingStep(name="Render", code="main.py", source_dir="job",
                            cache_config=CacheConfig(enable_caching=True),
                            outputs=[ProcessingOutput(output_name="page", source="out")])
    pipeline = Pipeline(name="source-dir", steps=[render])
"""


def test_a_source_dir_is_hashed_as_a_whole_folder(project):
    project.write("job/main.py", """
        from pathlib import Path
        import template
        Path("out/page.txt").write_text(template.render(Path(__file__).with_name("settings.txt").read_text()))
    """)
    project.write("job/template.py", "def render(s):\n    return '[' + s + ']'\n")
    project.write("job/settings.txt", "blue")
    project.write("pipeline.py", SOURCE_DIR_PIPELINE)
    assert not project.run().steps["Render"].cache_hit
    assert project.run().steps["Render"].cache_hit

    project.write("job/settings.txt", "navy")  # not Python, not imported: still part of the folder
    assert plans()["Render"].reasons == ["code file 'job/settings.txt' changed"]
    finished = project.run()
    assert not finished.steps["Render"].cache_hit
    assert project.read_output(finished.steps["Render"].outputs["page"], "page.txt") == "[navy]"

    project.write("job/extra/notes.md", "a new file")
    assert not project.run().steps["Render"].cache_hit


EXPIRING_PIPELINE = """
    from forgeline.workflow import CacheConfig, Pipeline, ProcessingOutput, ProcessingStep

    quick = ProcessingStep(name="Quick", code="quick.py", cache_config=CacheConfig(enable_caching=True,
                                                                                  expire_after="PT2S"),
                           outputs=[ProcessingOutput(output_name="out", source="out")])
    pipeline = Pipeline(name="expiring", steps=[quick])
"""


def test_expire_after_is_honoured(project):
    project.write("quick.py", "open('out/x', 'w').write('x')\n")
    project.write("pipeline.py", EXPIRING_PIPELINE)
    first = project.run()
    entry_made = first.steps["Quick"].ended_at.timestamp()
    fresh = plans()["Quick"]
    assert (fresh.decision, fresh.cache_source) == ("HIT", first.execution.id)

    time.sleep(max(0.0, entry_made + 2.3 - time.time()))
    stale = plans()["Quick"]
    assert (stale.decision, stale.reasons) == ("MISS", ["the cached result expired or its artifacts were deleted"])
    rerun = project.run()
    assert not rerun.steps["Quick"].cache_hit and rerun.steps["Quick"].attempts == 1


FLAKY_PIPELINE = """
    from forgeline.workflow import CacheConfig, Pipeline, ProcessingOutput, ProcessingStep

    flaky = ProcessingStep(name="Flaky", code="flaky.py", cache_config=CacheConfig(enable_caching=True),
                           outputs=[ProcessingOutput(output_name="out", source="out")])
    pipeline = Pipeline(name="flaky", steps=[flaky])
"""


def test_only_succeeded_steps_are_cached(project):
    project.write("flaky.py", """
        import os, sys
        open("out/partial.txt", "w").write("half")
        sys.exit(1 if os.path.exists({broken!r}) else 0)
    """.format(broken=str(project.root / "broken")))
    project.write("pipeline.py", FLAKY_PIPELINE)
    project.write("broken", "")
    failed = project.run()
    assert failed.status == "Failed"
    assert project.store().latest_cache_entry("flaky", "Flaky") is None

    (project.root / "broken").unlink()
    fixed = project.run()
    assert fixed.status == "Succeeded"
    assert (fixed.steps["Flaky"].cache_hit, fixed.steps["Flaky"].attempts) == (False, 1)
    assert project.run().steps["Flaky"].cache_source == fixed.execution.id


def test_a_cached_entry_whose_artifacts_were_deleted_is_a_miss_not_an_error(etl):
    first = etl.run()
    ran(etl)
    etl.artifacts().delete(first.steps["Extract"].outputs["rows"])

    assert plans()["Extract"].reasons == ["the cached result expired or its artifacts were deleted"]
    finished = etl.run()

    assert finished.status == "Succeeded"
    assert not finished.steps["Extract"].cache_hit
    assert ran(etl) == ["Extract"]  # same content again: everything downstream still hits
    assert only_missed(finished) == {"Extract"}


FUNCTION_PIPELINE = """
    from forgeline.workflow import CacheConfig, Pipeline, step

    CACHE = CacheConfig(enable_caching=True)


    @step(name="Collect", cache_config=CACHE)
    def collect(n: int) -> set:
        from helpers import normalise  # imported inside the function: still its code
        return {normalise(i) for i in range(n)}  # a set: not JSON, so passed on through the artifact store


    @step(name="Total", cache_config=CACHE)
    def total(values, scale=2):
        return sum(values) * scale


    def unrelated():
        return 0


    pipeline = Pipeline(name="functions", steps=[total(collect(4))])
"""


def test_step_functions_are_cached_by_their_source_and_the_project_code_they_use(project, cli):
    project.write("helpers.py", "def normalise(i):\n    return i * 10\n")
    project.write("pipeline.py", FUNCTION_PIPELINE)

    def run():
        execution = PipelineExecution.get(executed(cli("run", "pipeline.py", cwd=project.root)))
        steps = {s.name: s for s in execution.list_steps()}
        assert steps["Total"].status.value == "Succeeded"
        return {name: steps[name].cache_hit for name in ("Collect", "Total")}, steps["Total"].properties["Return"]

    assert run() == ({"Collect": False, "Total": False}, 120)
    assert run() == ({"Collect": True, "Total": True}, 120)
    planned = plan_rows(cli("plan", "pipeline.py", cwd=project.root))
    assert planned["Collect"][0] == planned["Total"][0] == "HIT", planned

    project.write("pipeline.py", FUNCTION_PIPELINE.replace("return 0", "return 1"))  # code it does not use
    assert run() == ({"Collect": True, "Total": True}, 120)

    project.write("helpers.py", "def normalise(i):\n    return i * 100\n")
    assert run() == ({"Collect": False, "Total": False}, 1200)

    project.write("pipeline.py", FUNCTION_PIPELINE.replace("scale=2", "scale=3"))  # a default value
    planned = plan_rows(cli("plan", "pipeline.py", cwd=project.root))
    assert planned["Collect"][0] == "HIT" and planned["Total"][0] == "MISS", planned
    assert "code file 'pipeline.py::source:total' changed" in planned["Total"][1]
    assert run() == ({"Collect": True, "Total": False}, 1800)


def test_pipeline_plan_is_the_python_api(etl):
    first = etl.run()
    pipeline = _load()

    records = {p.name: p for p in pipeline.plan({"Scale": 3})}

    assert (records["Extract"].decision, records["Extract"].cache_source) == ("HIT", first.execution.id)
    assert records["Transform"].decision == "MISS"
    assert "parameter 'Scale' changed: 2 -> 3" in records["Transform"].reasons
    assert records["Empty"].decision in ("RUN", "SKIP")
