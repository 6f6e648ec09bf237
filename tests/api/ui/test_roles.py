"""A viewer sees no action buttons, and the server refuses what the UI hides: a forged POST is a 403."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.conftest import RunningServer
from api.ui.conftest import log_in, run_trainer, shot, visit

FORGE = """async ([path, headers]) => {
  const r = await fetch(path, {method: "POST", credentials: "same-origin",
                               headers: {"Content-Type": "application/json", ...headers}, body: '{"note": "forged"}'});
  return [r.status, await r.text()];
}"""


@pytest.fixture
def trained(server: RunningServer, project: Any) -> str:
    """The trainer pipeline run once through the API: a pending model version in group ui-models."""
    return run_trainer(server, project, epochs=5)


def test_viewer_sees_no_buttons_and_forged_posts_are_refused(server: RunningServer, trained: str, new_page: Any,
                                                             shots: Path) -> None:
    page = new_page()
    log_in(page, server, "viewer")
    pages = {"execution": (f"executions/{trained}", "#dag [data-step=Train][data-status=Succeeded]"),
             "registry-group": ("registry/ui-models", "#history tr"),
             "pipeline": ("pipelines/trainer", ".dag [data-step=Register]"),
             "executions-viewer": ("executions", "#executions [data-execution]"),
             "schedules": ("schedules", "#schedules-table"), "alarms": ("alarms", "#alarms-table")}
    for name, (route, ready) in pages.items():
        visit(page, server, route)
        page.wait_for_selector(ready)
        assert page.locator("[data-action], #create-execution, #decision-note").count() == 0, name
        shot(page, shots, name)
    approve = "/api/v1/models/groups/ui-models/versions/1/approve"
    status, body = page.evaluate(FORGE, [approve, {"X-Forgeline-CSRF": "1"}])
    assert status == 403 and "role viewer" in body  # the role is checked on the server
    approver = new_page()
    log_in(approver, server, "approver")
    visit(approver, server, "registry/ui-models")
    approver.wait_for_selector("[data-action=approve]")
    status, body = approver.evaluate(FORGE, [approve, {}])  # what another site could make the browser send
    assert status == 403 and "X-Forgeline-CSRF" in body.replace("x-forgeline-csrf", "X-Forgeline-CSRF")
    events = server.client().get("/models/events", params={"group": "ui-models"}).json()
    assert [e["to_status"] for e in events] == ["PendingManualApproval"]  # nothing forged went through
