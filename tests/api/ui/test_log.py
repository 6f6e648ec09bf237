"""The step panel on a 100 MB log: only the tail and the pages asked for are fetched (byte ranges), the page
keeps a bounded amount of text, and the tail is followed live until the step ends — no reload."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from api.conftest import RunningServer
from api.ui.conftest import log_in, shot, store_pipeline_file, visit

MEGABYTES = 100

LOUD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "block = ''.join(f'line {n:08d} ' + 'x' * 80 + '\\n' for n in range(10_000))  # about 1 MB\n"
    "for _ in range(int(sys.argv[2])):\n"
    "    sys.stdout.write(block)\n"
    "print('end of the loud part', flush=True)\n"
    "while not Path(sys.argv[1]).exists():\n"
    "    time.sleep(0.02)\n"
    "print('released by the test', flush=True)\n"
)


def loud_part_written(client: httpx.Client, execution: str) -> bool:
    """Whether the Loud step's log ends with the line printed after its 100 MB."""
    path = f"/executions/{execution}/steps/Loud/logs"
    assert client.get(f"/executions/{execution}").json()["status"] != "Failed"
    head = client.get(path, params={"length": 0})
    if head.status_code != 200:
        return False
    size = int(head.headers["X-Forgeline-Log-Size"])
    return size > (MEGABYTES - 5) * 900_000 and "end of the loud part" in client.get(path, params={"offset": size - 200}).text


def test_a_100_mb_log_is_paged_and_its_tail_followed(server: RunningServer, project: Any, new_page: Any,
                                                       shots: Path) -> None:
    gate = project.root / "release"
    project.write("loud.py", LOUD)
    project.write("pipeline.py", f"""
        from forgeline.workflow import ParameterInteger, Pipeline, ProcessingStep

        size = ParameterInteger("Megabytes", default_value=100)
        loud = ProcessingStep(name="Loud", code="loud.py", arguments=[{str(gate)!r}, size])
        pipeline = Pipeline(name="loud", parameters=[size], steps=[loud])
    """)
    store_pipeline_file(server.client(), project.root, "pipeline.py")
    with server.client("operator") as client:
        execution = client.post("/executions", json={"pipeline": "loud", "parameters": {"Megabytes": MEGABYTES}}).json()["id"]
    page = new_page()
    fetched: list[int] = []
    page.on("requestfinished", lambda request: fetched.append(
        int(request.response().headers.get("content-length") or len(request.response().body())))
        if "/logs" in request.url and "follow=true" not in request.url else None)
    log_in(page, server, "viewer")
    visit(page, server, f"executions/{execution}")
    page.wait_for_function("document.body.innerText.length > 0")
    with server.client("viewer") as client:  # wait until the whole loud part is written and the step still runs
        deadline = time.monotonic() + 240
        while not loud_part_written(client, execution):
            assert time.monotonic() < deadline, "the loud step did not write its log"
            time.sleep(0.2)
    visit(page, server, f"executions/{execution}?step=Loud")
    page.wait_for_selector("[data-panel=Loud] .log")
    log = page.locator("[data-panel=Loud] .log")
    page.wait_for_function("document.querySelector('[data-panel=Loud] .log').textContent.includes('end of the loud')")
    assert sum(fetched) < 200_000, fetched  # the tail (64 KB), not 100 MB
    gate.write_text("go")
    page.wait_for_function("document.querySelector('[data-panel=Loud] .log')?.textContent.includes('released by')")
    page.wait_for_selector("#dag [data-step=Loud][data-status=Succeeded]", timeout=120_000)
    page.wait_for_selector("[data-panel=Loud] h3 [data-status=Succeeded]")  # the panel follows the step's end
    page.wait_for_function("document.querySelector('[data-panel=Loud] .log')?.textContent.includes('released by')")
    before = len(log.text_content() or "")
    page.click("[data-panel=Loud] button:has-text('Load earlier')")
    page.wait_for_function(f"document.querySelector('[data-panel=Loud] .log').textContent.length > {before}")
    assert sum(fetched) < 400_000, fetched  # one more 64 KB page
    assert "line 00009" in (log.text_content() or "")
    shot(page, shots, "log-100mb")


def test_log_pages_joined_in_the_browser_never_split_a_character(server: RunningServer, project: Any,
                                                                  new_page: Any, shots: Path) -> None:
    from api.test_logs import wide_log_execution

    with server.client("operator") as client:
        execution = wide_log_execution(client, project)
        whole = client.get(f"/executions/{execution}/steps/Wide/logs").content.decode("utf-8")
    page = new_page()
    log_in(page, server, "viewer")
    visit(page, server, f"executions/{execution}?step=Wide")
    page.wait_for_selector("[data-panel=Wide] .log")
    page.wait_for_function("document.querySelector('[data-panel=Wide] .log').textContent.includes('😀é€\\n')")
    tail = page.locator("[data-panel=Wide] .log").text_content() or ""
    assert "\ufffd" not in tail and whole.endswith(tail) and len(tail) < len(whole)
    button = "[data-panel=Wide] button:has-text('Load earlier')"
    while not page.eval_on_selector(button, "b => b.hidden"):  # page back to the first byte, 64 KB at a time
        before = page.eval_on_selector("[data-panel=Wide] .log", "p => p.textContent.length")
        page.click(button)
        page.wait_for_function("(before) => document.querySelector('[data-panel=Wide] .log').textContent.length"
                               " > before", arg=before)
    shown = page.locator("[data-panel=Wide] .log").text_content() or ""
    assert "\ufffd" not in shown
    assert shown == whole
    shot(page, shots, "log-multibyte-pages")
