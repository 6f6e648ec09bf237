"""Tokens and roles against a real server: 401 without a token, 403 for a role too low, JSON errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx

from api.conftest import RunningServer, StartServer, error_of
from conftest import Cli


def test_a_call_without_a_token_is_refused_with_401(server: RunningServer) -> None:
    with server.client(token=None) as client:
        response = client.get("/pipelines")
    assert response.status_code == 401
    assert "Bearer" in error_of(response)


def test_an_unknown_token_is_refused_with_401(server: RunningServer) -> None:
    with server.client(token="fl_not-a-real-token") as client:
        response = client.get("/pipelines")
    assert response.status_code == 401
    assert error_of(response) == "unknown or revoked token"


def test_a_viewer_reads(server: RunningServer, cli: Cli) -> None:
    with server.client("viewer") as client:
        response = client.get("/pipelines")
        endpoints = client.get("/endpoints")
    assert response.status_code == 200, response.text
    assert response.json() == [] and endpoints.json() == []
    tokens = {t["name"]: t for t in json.loads(cli("tokens", "list", "--json").stdout)}
    assert tokens["viewer-test"]["last_used_at"] is not None and tokens["viewer-test"]["role"] == "viewer"
    assert "token_hash" not in tokens["viewer-test"]


def test_health_needs_no_token(server: RunningServer) -> None:
    assert httpx.get(f"{server.api}/health").json()["status"] == "ok"


def test_a_revoked_token_is_refused_from_its_next_call(server: RunningServer, cli: Cli) -> None:
    with server.client("viewer") as client:
        assert client.get("/pipelines").status_code == 200
        revoked = cli("tokens", "revoke", "viewer-test")
        assert revoked.returncode == 0, revoked
        response = client.get("/pipelines")
    assert response.status_code == 401


def test_tokens_are_stored_hashed_and_listed_without_the_token(server: RunningServer, cli: Cli) -> None:
    token = server.token_for("operator")
    listed = cli("tokens", "list")
    assert "operator-test" in listed.stdout and "operator" in listed.stdout
    assert token not in listed.stdout
    database = (server.cli.env["FORGELINE_HOME"] + "/forgeline.db")
    import sqlite3

    with sqlite3.connect(database) as connection:
        hashes = [row[0] for row in connection.execute("SELECT token_hash FROM api_tokens")]
    assert token not in hashes and all(len(h) == 64 for h in hashes)


def test_a_taken_token_name_and_an_unknown_role_are_refused_in_one_line(cli: Cli) -> None:
    assert cli("tokens", "create", "ci", "--role", "operator").returncode == 0
    taken = cli("tokens", "create", "ci", "--role", "viewer")
    assert taken.returncode == 1 and taken.stderr.strip().count("\n") == 0
    assert "already exists" in taken.stderr
    bad = cli("tokens", "create", "other", "--role", "boss")
    assert bad.returncode == 1 and "viewer, operator, approver, admin" in bad.stderr


def test_no_auth_is_refused_on_a_non_loopback_host(cli: Cli) -> None:
    refused = cli("server", "--host", "0.0.0.0", "--port", "1", "--no-auth")
    assert refused.returncode == 1, refused
    assert refused.stderr.strip().count("\n") == 0
    assert "--no-auth is only allowed on a loopback host" in refused.stderr


def test_no_auth_on_loopback_serves_without_a_token(start_server: StartServer) -> None:
    server = start_server(auth=False)
    with server.client(token=None) as client:
        assert client.get("/pipelines").status_code == 200


def test_sigterm_stops_the_server_cleanly(server: RunningServer) -> None:
    assert server.stop() == 0
    assert "Traceback" not in server.log()


def test_ctrl_c_stops_the_server_cleanly(server: RunningServer) -> None:
    assert server.stop(signal.SIGINT) == 0
    assert "Traceback" not in server.log()


def test_the_server_module_is_importable_without_side_effects() -> None:
    done = subprocess.run([sys.executable, "-c", "import forgeline.api.server"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_two_servers_on_one_store_accept_the_same_tokens(start_server: StartServer) -> None:
    first, second = start_server(), start_server()
    for server in (first, second):
        with server.client("viewer") as client:
            assert client.get("/executions").status_code == 200
    assert first.token_for("viewer") == second.token_for("viewer")
