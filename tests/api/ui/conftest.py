"""A real Chromium (Debian's package) driven by Playwright against a real ``forgeline server`` on 127.0.0.1.

Every test gets a fresh browser context; screenshots go to the test's tmp dir (``shots``), never into git.
"""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium, headless; the test is skipped (one reason) when it is not installed."""
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
