"""The other pages in a real browser: executions filters and pages, compare, pipeline versions and their diff,
schedules, triggers and alarms listed and paused and resumed by an admin, at laptop and phone widths."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from api.conftest import RunningServer
from api.projects import gated_project, start, store_pipeline
from api.ui.conftest import log_in, run_trainer, shot, store_pipeline_file, visit


def paused(client: httpx.Client, kind: str, name: str) -> bool:
    """Whether the API says schedule or alarm ``name`` is paused."""
    return bool(next(r for r in client.get(f"/{kind}").json() if r["name"] == name)["paused"])


def test_lists_compare_diff_and_pause_resume(server: RunningServer, project: Any, new_page: Any,
                                             shots: Path) -> None:
    first = run_trainer(server, project, epochs=5)
    second = run_trainer(server, project, epochs=12, stored=True)
    project.write("pipeline.py", (project.root / "pipeline.py").read_text().replace("default_value=30",
                                                                                   "default_value=31"))
    store_pipeline_file(server.client(), project.root, "pipeline.py")  # version 2 of trainer
    admin = server.client()
    made = admin.post("/schedules", json={"name": "nightly", "pipeline": "trainer", "cron": "0 3 * * *",
                                          "timezone": "Europe/Berlin"})
    assert made.status_code == 201, made.text
    made = admin.post("/alarms", json={"name": "failures", "events": ["execution.failed"],
                                       "targets": ["webhook:http://127.0.0.1:9/hook"]})
    assert made.status_code == 201, made.text

    page = new_page()
    log_in(page, server, "admin")
    visit(page, server, "executions?limit=1")
    page.wait_for_selector(f"#executions [data-execution='{second}']")
    assert page.locator("#executions [data-execution]").count() == 1
    page.click("a[rel=next]")
    page.wait_for_selector(f"#executions [data-execution='{first}']")
    visit(page, server, "executions?status=Failed")
    page.wait_for_selector("#executions td.muted:has-text('Nothing here yet')")
    visit(page, server, "executions?pipeline=trainer")
    page.wait_for_selector(f"#executions [data-execution='{first}']")
    page.check(f"input[value='{first}']")
    page.check(f"input[value='{second}']")
    page.click("text=Compare selected")
    page.wait_for_selector("#compare-parameters tr.changed:has-text('Epochs')")
    assert "12" in page.inner_text("#compare-parameters tr.changed")
    shot(page, shots, "compare")

    visit(page, server, "pipelines/trainer")
    page.wait_for_selector("#version-diff .add")
    assert "31" in page.inner_text("#version-diff .add") and "30" in page.inner_text("#version-diff .del")
    shot(page, shots, "pipeline-diff")
    visit(page, server, "pipelines")
    page.wait_for_selector("[data-pipeline=trainer] svg.spark path")
    shot(page, shots, "pipelines-sparkline")

    arrivals = project.root / "arrivals"
    arrivals.mkdir()
    made = admin.post("/triggers", json={"name": "arrivals", "pipeline": "trainer", "watch": str(arrivals),
                                         "pattern": "*.json", "poll_seconds": 0.5, "parameters": {"Epochs": 2},
                                         "work_dir": str(project.root)})
    assert made.status_code == 201, made.text
    (arrivals / "batch-1.part").write_text('{"pipeline_parameters": {"Epochs": 3}}')
    (arrivals / "batch-1.part").rename(arrivals / "batch-1.json")  # whole when the watcher sees it
    deadline = time.monotonic() + 120
    while not (seen := next(r for r in admin.get("/triggers").json() if r["name"] == "arrivals"))["last_execution_id"]:
        assert time.monotonic() < deadline, f"the trigger did not start an execution: {seen}"
        time.sleep(0.2)

    visit(page, server, "triggers")
    row = page.locator("tr[data-name=arrivals]")
    row.wait_for()
    assert "trainer" in row.inner_text() and "*.json" in row.inner_text() and str(arrivals) in row.inner_text()
    assert row.locator("td").nth(4).inner_text() == "1"  # files seen
    assert row.locator(f"a[href='#/executions/{seen['last_execution_id']}']").count() == 1
    assert row.locator("td").nth(3).inner_text() != "—"  # its last event's time
    for kind, name in (("schedules", "nightly"), ("alarms", "failures"), ("triggers", "arrivals")):
        visit(page, server, f"{kind}")
        page.click(f"tr[data-name={name}] [data-action=pause]")
        page.wait_for_selector(f"tr[data-name={name}][data-state=paused]")
        assert paused(admin, kind, name) is True
        shot(page, shots, f"{kind}-paused")
        page.click(f"tr[data-name={name}] [data-action=resume]")
        page.wait_for_selector(f"tr[data-name={name}][data-state=active]")
        assert paused(admin, kind, name) is False
    visit(page, server, "schedules")
    page.wait_for_selector("tr[data-name=nightly]")
    assert "Europe/Berlin" in page.inner_text("tr[data-name=nightly]")

    phone = new_page(width=390, height=844)
    log_in(phone, server, "viewer")
    visit(phone, server, f"executions/{second}")
    phone.wait_for_selector("#dag [data-step=Train][data-status=Succeeded]")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # nothing wider than a phone: tables and the graph scroll inside their boxes
    shot(phone, shots, "phone-execution")
    visit(phone, server, "executions")
    phone.wait_for_selector("#executions [data-execution]")
    shot(phone, shots, "phone-executions")


FOREACH = """
    from forgeline.workflow import (ConditionEquals, ConditionStep, FailStep, ForEach, ForEachItem, ParameterString,
                                    Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep, step)

    kinds = ParameterString("Kinds", default_value='["mailer", "bag"]')
    item = ForEachItem()
    source = ProcessingStep(name="Source", code="source.py", outputs=[ProcessingOutput(output_name="data", source="out")])
    split = ProcessingStep(name="Split", code="split.py", arguments=["--kind", item],
                           inputs=[ProcessingInput(source=source.properties.outputs["data"], destination="in")],
                           outputs=[ProcessingOutput(output_name="part", source="part")])

    @step
    def score(kind: str, part: str) -> dict:
        return {"kind": kind}

    scored = score(item, split.properties.outputs["part"])
    loop = ForEach(name="PerKind", items=kinds, steps=[split, scored], outputs={"kind": scored["kind"]})

    @step
    def report(kinds: list) -> str:
        return ",".join(kinds)

    summary = report(loop.properties.outputs["kind"])
    gate = ConditionStep(name="Gate", conditions=[ConditionEquals(left=kinds, right="[]")],
                         if_steps=[FailStep(name="Empty", error_message="no kinds")], else_steps=[summary])
    pipeline = Pipeline(name="foreach", parameters=[kinds], steps=[source, loop, gate])
"""


def test_the_dag_shows_foreach_bodies_and_condition_branches(server: RunningServer, project: Any, new_page: Any,
                                                             shots: Path) -> None:
    project.write("source.py", "print('source')\n")
    project.write("split.py", "print('split')\n")
    project.write("pipeline.py", FOREACH)
    store_pipeline_file(server.client(), project.root, "pipeline.py")
    page = new_page()
    log_in(page, server, "viewer")
    visit(page, server, "pipelines/foreach")
    body = page.locator(".dag rect[data-foreach=PerKind]").bounding_box()
    for inside in ("Split", "score"):
        node = page.locator(f".dag [data-step={inside}]").bounding_box()
        assert body["x"] <= node["x"] and node["x"] + node["width"] <= body["x"] + body["width"], inside
        assert body["y"] <= node["y"] and node["y"] + node["height"] <= body["y"] + body["height"], inside
    for outside in ("Source", "PerKind", "Gate", "Empty", "report"):
        node = page.locator(f".dag [data-step={outside}]").bounding_box()
        overlaps = not (node["x"] + node["width"] <= body["x"] or body["x"] + body["width"] <= node["x"]
                        or node["y"] + node["height"] <= body["y"] or body["y"] + body["height"] <= node["y"])
        assert not overlaps, outside
    labels = page.locator(".dag .edge-label").all_text_contents()
    assert sorted(labels) == ["each", "else", "if"]
    shot(page, shots, "dag-foreach-condition")


def test_an_operator_stops_and_retries_from_the_live_page(server: RunningServer, project: Any, new_page: Any,
                                                         shots: Path) -> None:
    gate = gated_project(project)
    with server.client("operator") as client:
        store_pipeline(client, project)
        execution = start(client, project, Count=3).json()["id"]
    page = new_page()
    log_in(page, server, "operator")
    visit(page, server, f"executions/{execution}")
    page.wait_for_selector("#dag [data-step=Gate][data-status=Executing]", timeout=120_000)
    page.click("[data-action=stop]")
    page.wait_for_selector("#execution-status [data-status=Stopped]", timeout=120_000)
    assert server.client().get(f"/executions/{execution}").json()["status"] == "Stopped"
    shot(page, shots, "stopped")
    gate.write_text("go")  # the retried step passes its gate at once
    page.click("[data-action=retry]")
    page.wait_for_selector("#execution-status [data-status=Succeeded]", timeout=120_000)
    page.wait_for_selector("#dag [data-step=Gate][data-status=Succeeded]")
    page.focus("#dag [data-step=Gate]")  # the graph works from the keyboard, and focus is visible
    stroke = page.evaluate("getComputedStyle(document.querySelector('#dag [data-step=Gate] rect')).stroke")
    assert stroke == "rgb(240, 160, 32)", stroke
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-panel=Gate] .log")
    shot(page, shots, "retried")
