"""The model registry in a real browser: a version's evaluation report is a link to the step that wrote it, and two
versions' metrics are compared side by side."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from api.conftest import RunningServer
from api.ui.conftest import log_in, shot, store_pipeline_file, visit

GRADED = """
    from forgeline.workflow import (EvaluationReportStep, Join, Model, ModelMetrics, ParameterFloat, Pipeline,
                                    ProcessingOutput, ProcessingStep, PropertyFile, RegisterModel)

    quality = ParameterFloat("Quality", default_value=0.8)
    metrics = PropertyFile(name="Quality", output_name="out", path="metrics.json")
    make = ProcessingStep(name="Make", code="make.py", arguments=[quality],
                          outputs=[ProcessingOutput(output_name="out", source="out")], property_files=[metrics])
    folder = make.properties.outputs["out"]
    report = EvaluationReportStep(name="Report", predictions=Join(on="/", values=[folder, "scores.csv"]),
                                  data=Join(on="/", values=[folder, "data.csv"]), label="y")
    register = RegisterModel(name="Register", model_package_group_name="graded",
                             approval_status="PendingManualApproval", model=Model(model_data=folder),
                             model_metrics=ModelMetrics(metrics), depends_on=[report])
    pipeline = Pipeline(name="graded", parameters=[quality], steps=[make, report, register])
"""

MAKE = """
    import json, sys
    from pathlib import Path
    out = Path("out")
    out.mkdir(exist_ok=True)
    (out / "data.csv").write_text("x,y\\n" + "".join(f"{i},{i % 2}\\n" for i in range(40)))
    (out / "scores.csv").write_text("".join(f"{0.3 + 0.4 * (i % 2) + (i % 5) / 50}\\n" for i in range(40)))
    (out / "metrics.json").write_text(json.dumps({"quality": {"score": float(sys.argv[1])}}))
"""


def run_graded(server: RunningServer, quality: float) -> str:
    """Start ``graded`` with ``quality`` through the API and wait until it succeeded; its execution id."""
    with server.client("operator") as client:
        started = client.post("/executions", json={"pipeline": "graded", "parameters": {"Quality": quality}})
        assert started.status_code == 201, started.text
        execution = str(started.json()["id"])
        deadline = time.monotonic() + 240
        while (status := client.get(f"/executions/{execution}").json()["status"]) not in ("Succeeded", "Failed",
                                                                                          "Stopped"):
            assert time.monotonic() < deadline, "the graded execution did not end"
            time.sleep(0.3)
        assert status == "Succeeded", client.get(f"/executions/{execution}/steps").text
    return execution


def test_evaluation_report_link_and_two_versions_compared(server: RunningServer, project: Any, new_page: Any,
                                                          shots: Path) -> None:
    project.write("pipeline.py", GRADED)
    project.write("make.py", MAKE)
    store_pipeline_file(server.client(), project.root, "pipeline.py")
    run_graded(server, 0.8)
    second = run_graded(server, 0.95)

    page = new_page()
    log_in(page, server, "viewer")
    visit(page, server, "registry/graded")
    page.wait_for_selector("#version-detail h2:has-text('Version 2')")
    assert page.locator("tr[data-version]").count() == 2
    link = page.locator("#version-detail #evaluation-report")
    link.wait_for()
    assert link.get_attribute("href") == f"#/executions/{second}?step=Report"
    page.click("#compare-a")  # keyboard and mouse users pick the versions the same way
    page.select_option("#compare-a", "1")
    page.select_option("#compare-b", "2")
    page.click("button:has-text('Compare')")
    row = page.locator("#compare tr:has-text('quality.score')")
    row.wait_for()
    assert [cell.strip() for cell in row.locator("td").all_inner_texts()][1:3] == ["0.8", "0.95"]
    assert row.locator("td").nth(3).inner_text() == "0.15"  # b - a, without float noise
    assert "null" not in page.inner_text("#version-detail")  # a viewer gets no approval box, and no stray text
    assert "v1" in page.inner_text("#compare thead") and "v2" in page.inner_text("#compare thead")
    shot(page, shots, "registry-compare")

    link.click()
    page.wait_for_selector(f"#view .page[data-route='executions/{second}?step=Report']")
    page.wait_for_selector("[data-panel=Report] h3 [data-status=Succeeded]")
    assert "Report" in page.inner_text("[data-panel=Report]")
    page.wait_for_selector("#dag [data-step=Report][data-status=Succeeded]")
    shot(page, shots, "evaluation-report-step")
