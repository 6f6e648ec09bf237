"""A real Chromium (Debian's package) driven by Playwright against a real ``forgeline server`` on 127.0.0.1.

Every test gets a fresh browser context; screenshots go to the test's tmp dir (``shots``), never into git.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conftest import RunningServer

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SKIP_REASON = "browser tests need Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)"
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, headless; the test is skipped (one reason) when it is not installed.

    One per module, not per session: Playwright's synchronous API keeps its event loop marked as running in
    this thread while it is open, so a later test of another module calling ``asyncio.run`` would be refused.
    """
    if not CHROMIUM.exists():
        pytest.skip(SKIP_REASON)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test saves its screenshots (a test artifact, looked at by a person)."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """``new_page(width=1280, height=860)``: a page in a fresh browser context (its own cookies)."""
    contexts = []

    def make(width: int = 1280, height: int = 860) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def log_in(page: Any, server: RunningServer, role: str) -> None:
    """Log in through the login form with a token of ``role``; waits until the session shows the role."""
    page.goto(f"{server.url}/#/login")
    page.fill("#token", server.token_for(role))
    page.click("#login-submit")
    page.wait_for_selector(f"#who [data-role={role}]")
    page.wait_for_selector("#view .page[data-page=executions]")  # the page login lands on has rendered


def visit(page: Any, server: RunningServer, route: str) -> None:
    """Open ``#/route`` and wait until that page has rendered (not the one before it)."""
    page.goto(f"{server.url}/#/{route}")
    page.wait_for_selector(f"#view .page[data-route='{route}']")


def store_pipeline_file(client: httpx.Client, root: Path, target: str) -> Any:
    """POST /pipelines with the pipeline of ``root/target`` and its code, as a remote CLI does."""
    from forgeline.api.code_archive import pack_code
    from forgeline.config import Settings
    from forgeline.engine.code_snapshot import code_rules_of, pipeline_code_files
    from forgeline.engine.loader import load_pipeline

    before = os.getcwd()
    os.chdir(root)
    try:
        pipeline = load_pipeline(target)
        files = pipeline_code_files(pipeline, str(root), code_rules_of(Settings.from_env()))
    finally:
        os.chdir(before)
    response = client.post("/pipelines", json={"definition": pipeline.to_request(), "code": pack_code(files)})
    assert response.status_code == 201, response.text
    return response.json()


def shot(page: Any, shots: Path, name: str) -> Path:
    """A full-page screenshot named ``name``.png."""
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


TRAINER = """
    from forgeline.workflow import Model, ParameterInteger, Pipeline, RegisterModel, TrainingStep

    epochs = ParameterInteger("Epochs", default_value=30)
    train = TrainingStep(name="Train", entry_point="train.py", source_dir="code",
                         hyperparameters={"epochs": epochs},
                         metric_definitions=[{"Name": "loss", "Regex": r"loss=([0-9.]+)"},
                                             {"Name": "accuracy", "Regex": r"accuracy=([0-9.]+)"}])
    register = RegisterModel(name="Register", model_package_group_name="ui-models",
                             approval_status="PendingManualApproval",
                             model=Model(model_data=train.properties.ModelArtifacts.S3ModelArtifacts))
    pipeline = Pipeline(name="trainer", parameters=[epochs], steps=[train, register])
"""

TRAIN = """
    import os, sys
    from pathlib import Path
    epochs = 30
    for i, arg in enumerate(sys.argv):
        if arg == "--epochs":
            epochs = int(sys.argv[i + 1])
    for epoch in range(epochs):
        print(f"epoch {epoch} loss={1.0 / (epoch + 1):.4f} accuracy={0.5 + epoch / (2 * epochs):.4f}", flush=True)
    Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text("weights")
"""


def store_trainer(server: RunningServer, project: Any) -> None:
    """Write the ``trainer`` pipeline (a training step printing loss and accuracy per epoch, then a model
    registered PendingManualApproval in group ui-models) into the project and store it on the server."""
    project.write("pipeline.py", TRAINER)
    project.write("code/train.py", TRAIN)
    store_pipeline_file(server.client(), project.root, "pipeline.py")


def run_trainer(server: RunningServer, project: Any, epochs: int, stored: bool = False) -> str:
    """Start ``trainer`` through the API (an operator) and wait until it succeeded; its execution id."""
    if not stored:
        store_trainer(server, project)
    with server.client("operator") as client:
        started = client.post("/executions", json={"pipeline": "trainer", "parameters": {"Epochs": epochs}})
        assert started.status_code == 201, started.text
        execution = started.json()["id"]
        deadline = time.monotonic() + 240
        while client.get(f"/executions/{execution}").json()["status"] not in ("Succeeded", "Failed", "Stopped"):
            assert time.monotonic() < deadline, "the trainer execution did not end"
            time.sleep(0.3)
        assert client.get(f"/executions/{execution}").json()["status"] == "Succeeded"
    return str(execution)
