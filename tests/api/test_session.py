"""/session: a token kept in an HttpOnly SameSite=Strict cookie that the API accepts, CSRF header for changes,
and the UI's files served at / by the same server."""

from __future__ import annotations

import httpx

from api.conftest import RunningServer, error_of


def test_login_cookie_authenticates_reads_and_changes_need_the_csrf_header(server: RunningServer) -> None:
    with httpx.Client(base_url=server.api, timeout=60) as browser:
        assert browser.get("/session").status_code == 401
        wrong = browser.post("/session", json={"token": "fl_not-a-token"})
        assert wrong.status_code == 401 and "unknown or revoked token" in error_of(wrong)
        made = browser.post("/session", json={"token": server.token_for("approver")})
        assert made.status_code == 200 and made.json() == {"name": "approver-test", "role": "approver", "auth": True}
        cookie = made.headers["set-cookie"].lower()
        assert "forgeline_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert browser.get("/session").json()["role"] == "approver"
        assert browser.get("/executions").status_code == 200
        forged = browser.post("/executions", json={"pipeline": "nothing"})
        assert forged.status_code == 403 and "x-forgeline-csrf" in error_of(forged)
        sent = browser.post("/executions", json={"pipeline": "nothing"}, headers={"X-Forgeline-CSRF": "1"})
        assert sent.status_code == 404  # past authentication: the pipeline is unknown
        assert browser.delete("/session").status_code == 200
        assert browser.get("/session").status_code == 401


def test_the_role_of_the_cookie_is_checked(server: RunningServer) -> None:
    with httpx.Client(base_url=server.api, timeout=60) as browser:
        browser.post("/session", json={"token": server.token_for("viewer")})
        refused = browser.post("/models/groups/g/versions/1/approve", json={"note": "x"},
                               headers={"X-Forgeline-CSRF": "1"})
        assert refused.status_code == 403 and "role viewer" in error_of(refused)


def test_a_bearer_header_needs_no_csrf_header(server: RunningServer) -> None:
    with server.client("operator") as client:
        assert client.post("/executions", json={"pipeline": "nothing"}).status_code == 404


def test_the_ui_is_served_at_the_root(server: RunningServer) -> None:
    index = httpx.get(f"{server.url}/", timeout=30)
    assert index.status_code == 200 and '<script type="module" src="app.js">' in index.text
    script = httpx.get(f"{server.url}/app.js", timeout=30)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    for name in ("pages/execution.js", "dag.js", "chart.js", "log.js", "style.css"):
        assert httpx.get(f"{server.url}/{name}", timeout=30).status_code == 200, name
    assert httpx.get(f"{server.url}/api/v1/health", timeout=30).json()["status"] == "ok"
