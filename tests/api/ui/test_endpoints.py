"""The endpoints page in a real browser: variants with weights and the live request rate, latency and errors,
updating in place (no reload) as requests reach `forgeline serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.conftest import StartServer
from api.test_endpoints import ROWS, serve_risk, serving_env
from api.ui.conftest import log_in, shot, visit

ALL = "[data-endpoint=risk] tr[data-variant='']"


def figure(page: Any, row: str, name: str) -> str:
    """The text of one figure cell."""
    return str(page.locator(f"{row} [data-figure={name}]").text_content()).strip()


def test_the_endpoints_page_shows_variants_weights_and_live_figures_changing(start_server: StartServer,
                                                                              forgeline_home: Path,
                                                                              tmp_path: Path, new_page: Any,
                                                                              shots: Path) -> None:
    serving = serve_risk(forgeline_home, tmp_path)
    try:
        server = start_server(env=serving_env(serving))
        page = new_page()
        log_in(page, server, "viewer")
        visit(page, server, "endpoints")
        page.wait_for_selector(f"{ALL} [data-figure=errors]:text-is('0 of 0')")
        assert figure(page, "[data-endpoint=risk] tr[data-variant=blue]", "weight") == "75 (75 %)"
        assert figure(page, "[data-endpoint=risk] tr[data-variant=green]", "weight") == "25 (25 %)"
        assert figure(page, ALL, "p50") == "—"
        assert page.locator("[data-endpoint=risk] h2 [data-status]").text_content() == "InService"
        shot(page, shots, "endpoints-idle")
        page.evaluate("window.sameDocument = true")  # gone if the page reloads

        for _ in range(5):
            assert serving.invoke("risk", ROWS, headers={"X-Forgeline-Variant": "green"}).status_code == 200
        assert serving.invoke("risk", b"{", headers={"X-Forgeline-Variant": "blue"}).status_code == 400

        page.wait_for_selector(f"{ALL} [data-figure=errors]:text-is('1 of 6')", timeout=60_000)
        page.wait_for_selector("[data-endpoint=risk] tr[data-variant=green] [data-figure=errors]:text-is('0 of 5')")
        assert page.evaluate("window.sameDocument") is True
        p50 = figure(page, "[data-endpoint=risk] tr[data-variant=green]", "p50")
        assert p50.endswith(" ms") and float(p50.split()[0]) >= 9  # the model sleeps 10 ms
        assert figure(page, ALL, "rate").endswith("/s") and figure(page, ALL, "rate") != "0.00/s"
        assert "risk" in page.inner_text("#view") and "blue" in page.inner_text("#view")
        shot(page, shots, "endpoints-live")
    finally:
        serving.stop()
    page.wait_for_selector("[data-endpoint=risk] [data-live-error]", timeout=60_000)  # serve gone: said so
    assert "cannot reach forgeline serve" in page.inner_text("[data-endpoint=risk] [data-live-error]")
