"""ForEach: one body per item at run time, a concurrency cap, fan-in of results, caching per item."""

from __future__ import annotations

import pytest

from forgeline.errors import PipelineDefinitionError

PIPELINE = '''
from forgeline.workflow import (CacheConfig, ForEach, ForEachItem, ParameterString, Pipeline, ProcessingInput,
                                ProcessingOutput, ProcessingStep, step)

kinds = ParameterString("Kinds", default_value='["mailer", "bag", "box"]')
item = ForEachItem()
source = ProcessingStep(name="Source", code="source.py", outputs=[ProcessingOutput(output_name="data", source="out")])
split = ProcessingStep(
    name="Split", code="split.py", arguments=["--kind", item],
    inputs=[ProcessingInput(source=source.properties.outputs["data"], destination="in")],
    outputs=[ProcessingOutput(output_name="part", source="part")],
    cache_config=CacheConfig(enable_caching=True),
)

@step
def score(kind: str, part: str) -> dict:
    return {"kind": kind, "size": len(open(part + "/part.txt").read())}

scored = score(item, split.properties.outputs["part"])
loop = ForEach(name="PerKind", items=kinds, steps=[split, scored],
               outputs={"kind": scored["kind"], "size": scored["size"]}, max_concurrency=1)

@step
def report(kinds: list, sizes: list) -> str:
    return ";".join(f"{k}={s}" for k, s in zip(kinds, sizes))

pipeline = Pipeline(name="foreach", parameters=[kinds],
                    steps=[source, loop, report(loop.properties.outputs["kind"], loop.properties.outputs["size"])])
'''

SPLIT = '''
import argparse, os, time
parser = argparse.ArgumentParser()
parser.add_argument("--kind")
kind = parser.parse_args().kind
if kind == "broken":
    raise SystemExit("cannot split broken")
os.makedirs("part", exist_ok=True)
time.sleep(0.2)
open("part/part.txt", "w").write(kind * 2)
'''


@pytest.fixture
def loop_project(project):
    project.write("pipeline.py", PIPELINE)
    project.write("source.py", "import os\nos.makedirs('out', exist_ok=True)\nopen('out/d.txt', 'w').write('x')\n")
    project.write("split.py", SPLIT)
    return project


def test_each_item_runs_its_own_body_and_results_fan_in_in_order(loop_project):
    done = loop_project.run()
    assert done.status == "Succeeded", done.failure_reason
    names = set(done.steps)
    for kind in ("mailer", "bag", "box"):
        assert {f"PerKind-{kind}-Split", f"PerKind-{kind}-score"} <= names
    assert done.steps["PerKind"].properties["outputs"] == {"kind": ["mailer", "bag", "box"], "size": [12, 6, 6]}
    assert done.steps["report"].properties["Return"] == "mailer=12;bag=6;box=6"


def test_items_are_cached_one_by_one(loop_project):
    loop_project.run(parameters={"Kinds": "mailer,bag"})
    done = loop_project.run(parameters={"Kinds": "mailer,bag,box"})
    assert done.status == "Succeeded"
    assert done.steps["PerKind-mailer-Split"].cache_hit and done.steps["PerKind-bag-Split"].cache_hit
    assert not done.steps["PerKind-box-Split"].cache_hit


def test_a_failing_item_fails_the_loop_and_names_the_item(loop_project):
    done = loop_project.run(parameters={"Kinds": "mailer,broken"})
    assert done.status == "Failed"
    assert done.steps["PerKind"].status.value == "Failed"
    assert "item 'broken'" in done.steps["PerKind"].failure_reason
    assert done.steps["report"].status.value == "Skipped"


def test_the_definition_round_trips(loop_project):
    from forgeline.workflow import Pipeline

    pipeline = loop_project.load()
    assert Pipeline.from_definition(pipeline.definition()) == pipeline
    assert pipeline.definition()["Steps"][1]["Type"] == "ForEach"


def test_item_outside_a_loop_and_references_into_a_body_are_refused(loop_project):
    from forgeline.workflow import ForEach, ForEachItem, Pipeline, ProcessingStep

    inner = ProcessingStep(name="Inner", code="split.py", arguments=[ForEachItem()])
    loop = ForEach(name="Loop", items=["a"], steps=[inner])
    with pytest.raises(PipelineDefinitionError, match="outside of a ForEach"):
        Pipeline(name="bad", steps=[ProcessingStep(name="Alone", code="split.py", arguments=[ForEachItem()])])
    with pytest.raises(PipelineDefinitionError, match="'Inner'"):
        Pipeline(name="bad", steps=[loop, ProcessingStep(name="After", code="split.py", depends_on=["Inner"])])
