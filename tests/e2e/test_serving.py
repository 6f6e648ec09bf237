"""A user's journey with real-time endpoints: the endpoints CLI, `forgeline serve` and HTTP, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from forgeline.store.metadata.records import ModelPackageDraft
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow.models import ModelApprovalStatus
from serving.server_process import FEATURES, ServingServer, register, settings_for

ORDER = {"amount": 10, "items": [{"sku": 1}, {"sku": 2}]}


@pytest.fixture
def registry(forgeline_home: Path, tmp_path: Path) -> Any:
    store = SqlMetadataStore(settings_for(forgeline_home).database_url)
    root = tmp_path / "models"
    register(store, root, "payments-de", bias=0.0)
    register(store, root, "payments-de", bias=100.0, status="PendingManualApproval")
    register(store, root, "features", code=FEATURES, accepts_batches=False)
    register(store, root, "payments-fr", scale=2.0, content_types=["text/csv"])
    store.create_model_package(ModelPackageDraft(group="nocode", approval_status=ModelApprovalStatus.APPROVED,
                                                 model_data=str(root)), actor="tests")
    yield store
    store.close()


@pytest.fixture
def server(forgeline_home: Path) -> Any:
    started: list[ServingServer] = []

    def start() -> ServingServer:
        started.append(ServingServer.start(forgeline_home))
        return started[-1]

    yield start
    for each in started:
        each.stop()


def test_create_serve_invoke_update_describe_logs_and_delete(cli: Any, registry: Any, server: Any,
                                                             forgeline_home: Path, wait_until: Any) -> None:
    assert "predict_fn accepts batches" in cli("models", "describe", "payments-de", "1").stdout
    assert "accepts batches" not in cli("models", "describe", "features", "1").stdout
    assert cli("endpoints", "create", "risk-de", "--model", "payments-de@approved").returncode == 0
    created = cli("endpoints", "create", "risk-fr", "--model", "features@1", "--model", "payments-fr@1")
    assert created.returncode == 0 and "features@1 → payments-fr@1" in created.stdout
    running = server()
    running.wait_serving("risk-de")
    running.wait_serving("risk-fr")

    assert running.invoke("risk-de", [[1, 2]]).json() == [[3.0, 1]]
    fr = running.invoke("risk-fr", ORDER)
    assert (fr.status_code, fr.json()[0][0], fr.headers["x-forgeline-model"]) == (200, 24.0,
                                                                                  "features@1,payments-fr@1")

    updated = cli("endpoints", "update", "risk-de", "--variant", "current=payments-de@1:90",
                  "--variant", "canary=payments-de@2:10")
    assert updated.returncode == 0 and "revision 2" in updated.stdout
    running.wait_serving("risk-de", 2)
    canary = running.invoke("risk-de", [[1, 2]], headers={"X-Forgeline-Variant": "canary"})
    assert (canary.headers["x-forgeline-variant"], canary.headers["x-forgeline-model"]) == ("canary",
                                                                                           "payments-de@2")

    swap = cli("endpoints", "update", "risk-de", "--model", "payments-de@2", "--capture", "0.05",
               "--max-batch-size", "8", "--max-batch-wait-us", "100")
    assert swap.returncode == 0
    running.wait_serving("risk-de", 3)
    assert running.invoke("risk-de", [[1, 2]]).json() == [[103.0, 1]]

    listing = cli("endpoints", "list")
    assert listing.returncode == 0
    assert [line.split()[:3] for line in listing.stdout.splitlines()[1:]] == [
        ["risk-de", "InService", "3"], ["risk-fr", "InService", "1"]]
    described = cli("endpoints", "describe", "risk-de").stdout
    assert "InService" in described and "payments-de@2" in described and "up to 8 requests" in described
    assert "waiting up to 100 µs" in described and "0.05 of requests" in described
    logs = cli("endpoints", "logs", "risk-de")
    assert logs.returncode == 0 and "revision 3 in service" in logs.stdout

    follower = subprocess.Popen([sys.executable, "-m", "forgeline.cli.main", "endpoints", "logs", "risk-de",
                                 "--follow"], env={**os.environ, "FORGELINE_HOME": str(forgeline_home)},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert follower.stdout is not None
    assert "revision 1 in service" in follower.stdout.readline() + follower.stdout.readline()
    assert cli("endpoints", "delete", "risk-de").returncode == 0
    follower.wait(timeout=30)  # --follow ends when the endpoint is deleted
    assert "deleted" in follower.stdout.read()
    follower.stdout.close()
    wait_until(lambda: running.invoke("risk-de", [[1]]).status_code == 404, timeout=30, what="risk-de gone")
    assert running.invoke("risk-fr", ORDER).status_code == 200


REFUSALS = [
    (["create", "x", "--model", "nope@1"], "model nope@1: no model package group 'nope'"),
    (["create", "x", "--model", "payments-de@9"], "has no version 9"),
    (["create", "x", "--model", "nocode@1"], "has no inference code"),
    (["create", "x"], "needs at least one model"),
    (["create", "risk", "--model", "payments-de@1"], "already exists"),
    (["update", "nope", "--model", "payments-de@1"], "no endpoint 'nope'"),
    (["update", "risk", "--variant", "payments-de@1:90"], "name=group@version:weight"),
    (["describe", "nope"], "no endpoint 'nope' (endpoints: risk)"),
    (["create", "bad name", "--model", "payments-de@1"], "invalid endpoint name"),
]


def test_bad_commands_are_refused_with_one_line_and_change_nothing(cli: Any, registry: Any) -> None:
    assert cli("endpoints", "create", "risk", "--model", "payments-de@1").returncode == 0

    for arguments, message in REFUSALS:
        refused = cli("endpoints", *arguments)
        assert refused.returncode == 1, refused
        assert refused.stderr.startswith("error: ") and message in refused.stderr, refused
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.output

    assert [line.split()[:3] for line in cli("endpoints", "list").stdout.splitlines()[1:]] == [
        ["risk", "Creating", "1"]]
