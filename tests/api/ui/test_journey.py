"""The web UI in a real browser: log in, start the quickstart from its form with a changed parameter, watch its
DAG turn green without a reload, read a step's log and metric chart, approve a model version with a note."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.conftest import RunningServer
from api.ui.conftest import REPO_ROOT, log_in, shot, store_pipeline_file, store_trainer, visit

RUN_SECONDS = 240_000  # ms: a generous deadline for a pipeline to finish on a loaded machine

def test_start_from_the_form_and_watch_the_dag_turn_green(server: RunningServer, new_page: Any, shots: Path) -> None:
    store_pipeline_file(server.client(), REPO_ROOT, "examples/quickstart/pipeline.py")
    page = new_page()
    log_in(page, server, "operator")
    visit(page, server, "pipelines/quickstart/start")
    page.wait_for_selector("#param-TrainRatio")
    assert page.input_value("#param-TrainRatio") == "0.8" and page.input_value("#param-Seed") == "7"
    page.fill("#param-TrainRatio", "")  # the API's validation message shows next to the field
    page.click("#start-execution")
    page.wait_for_selector("#error-TrainRatio:has-text('TrainRatio')")
    shot(page, shots, "start-form-error")
    page.fill("#param-TrainRatio", "0.75")
    page.fill("#param-Seed", "11")
    page.click("#start-execution")
    page.wait_for_url("**/#/executions/*")
    page.wait_for_selector("#dag [data-step=Prepare]")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    page.wait_for_selector("#dag [data-step=Summarize][data-status=Succeeded]", timeout=RUN_SECONDS)
    for step in ("Prepare", "Fit", "Evaluate", "AccuracyGate"):
        assert page.get_attribute(f"#dag [data-step={step}]", "data-status") == "Succeeded"
    assert page.get_attribute("#dag [data-step=TooInaccurate]", "data-status") == "Skipped"  # the else branch
    page.wait_for_selector("#execution-status [data-status=Succeeded]")
    assert page.evaluate("window.loadedOnce") is True
    assert '"TrainRatio":0.75' in page.inner_text("#parameters") and '"Seed":11' in page.inner_text("#parameters")
    assert page.locator("[data-action]").count() == 0  # a succeeded execution has nothing to stop or retry
    shot(page, shots, "execution-live")
    page.click("#dag [data-step=Prepare]")
    page.wait_for_selector("[data-panel=Prepare] .log")
    page.wait_for_function("document.querySelector('[data-panel=Prepare] .log').textContent.length > 0")
    shot(page, shots, "step-prepare")
    visit(page, server, "executions")
    page.wait_for_selector("#executions [data-execution]")
    shot(page, shots, "executions")
    visit(page, server, "pipelines")
    page.wait_for_selector("[data-pipeline=quickstart]")
    shot(page, shots, "pipelines")
    visit(page, server, "pipelines/quickstart")
    page.wait_for_selector(".dag [data-step=TooInaccurate]")
    assert page.locator(".dag .edge-label", has_text="else").count() == 1
    shot(page, shots, "pipeline")


def test_step_log_metrics_chart_and_approval(server: RunningServer, project: Any, new_page: Any,
                                             shots: Path) -> None:
    store_trainer(server, project)
    page = new_page()
    log_in(page, server, "approver")
    visit(page, server, "pipelines/trainer")
    page.click("#create-execution")
    page.wait_for_selector("#param-Epochs")
    page.fill("#param-Epochs", "40")
    page.click("#start-execution")
    page.wait_for_url("**/#/executions/*")
    page.wait_for_selector("#dag [data-step=Register][data-status=Succeeded]", timeout=RUN_SECONDS)
    page.click("#dag [data-step=Train]")
    page.wait_for_selector("[data-panel=Train] .log")
    page.wait_for_function("document.querySelector('[data-panel=Train] .log').textContent.includes('epoch 39 ')")
    chart = page.locator("#metrics-chart svg")
    assert chart.locator("path[data-series=loss]").count() == 1
    assert chart.locator("path[data-series=accuracy]").count() == 1
    full = chart.get_attribute("data-range")
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    zoomed = page.locator("#metrics-chart svg").get_attribute("data-range")
    assert zoomed != full and float(zoomed.split(",")[1]) - float(zoomed.split(",")[0]) < 39
    shot(page, shots, "step-train-metrics")
    visit(page, server, "registry")
    page.click("[data-group=ui-models] a")
    page.wait_for_selector("#decision-note")
    shot(page, shots, "registry-before")
    page.fill("#decision-note", "loss is low enough")
    page.click("[data-action=approve]")
    page.wait_for_selector("#history tr:has-text('loss is low enough')")
    row = page.inner_text("#history tr:has-text('loss is low enough')")
    assert "Approved" in row and "approver-test" in row
    shot(page, shots, "registry-approved")
    events = server.client().get("/models/events", params={"group": "ui-models"}).json()
    assert events[-1]["to_status"] == "Approved" and events[-1]["note"] == "loss is low enough"
