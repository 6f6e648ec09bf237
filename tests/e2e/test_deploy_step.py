"""DeployStep against a real `forgeline serve`: a deployment goes live; a failed one leaves the old version live."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from forgeline.serving import Endpoint
from forgeline.store.metadata.sql_store import SqlMetadataStore
from serving.server_process import ServingServer, register, settings_for

PIPELINE = """
    import json
    from forgeline.workflow import DeployStep, ParameterString, Pipeline

    model = ParameterString("Model", default_value="payments-de/2")
    timeout = float(open("timeout.txt").read())
    deploy = DeployStep(name="Deploy", endpoint_name="risk-de", model=model, wait=True,
                        sample_body=json.dumps([[1, 2]]), timeout=timeout)
    pipeline = Pipeline(name="deploy", parameters=[model], steps=[deploy])
"""


@pytest.fixture
def store(forgeline_home: Path, tmp_path: Path) -> Any:
    store = SqlMetadataStore(settings_for(forgeline_home).database_url)
    root = tmp_path / "models"
    register(store, root, "payments-de", bias=0.0)  # v1
    register(store, root, "payments-de", bias=100.0, status="PendingManualApproval")  # v2
    register(store, root, "payments-de", bias=5.0, fail=True)  # v3: answers 500 to every request
    register(store, root, "payments-de", bias=7.0)  # v4
    register(store, root, "payments-de", code="def model_fn(model_dir):\n    raise RuntimeError('corrupt model')\n")
    yield store
    store.close()


@pytest.fixture
def server(forgeline_home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    running = ServingServer.start(forgeline_home)
    monkeypatch.setenv("FORGELINE_SERVE_URL", running.url)
    yield running
    running.stop()


def _deploy(project: Any, model: str, timeout: float = 60) -> Any:
    project.write("timeout.txt", str(timeout))
    return project.run(parameters={"Model": model}, timeout=timeout + 120)


def test_a_deployment_goes_live_and_a_failing_one_leaves_the_previous_version(project: Any, store: Any,
                                                                           server: Any) -> None:
    project.write("pipeline.py", PIPELINE)
    Endpoint.create("risk-de", ["payments-de@1"], store=store)
    server.wait_serving("risk-de", model="payments-de@1")

    finished = _deploy(project, "payments-de/2")
    assert finished.status == "Succeeded", finished.failure_reason
    deploy = finished.steps["Deploy"]
    assert deploy.properties["models"] == ["payments-de@2"]
    assert deploy.properties["revision"] == store.get_endpoint("risk-de").revision == 2
    answer = server.invoke("risk-de", [[1, 2]])
    assert (answer.status_code, answer.headers["x-forgeline-model"], answer.json()) == (200, "payments-de@2",
                                                                                        [[103.0, 1]])

    broken = _deploy(project, "payments-de/3")
    assert broken.status == "Failed"
    reason = broken.steps["Deploy"].failure_reason or ""
    assert "endpoint risk-de answered 500" in reason and "back to its previous configuration" in reason
    record = store.get_endpoint("risk-de")
    assert record.config["variants"][0]["models"] == ["payments-de@2"]
    server.wait_serving("risk-de", revision=record.revision, model="payments-de@2")
    assert server.invoke("risk-de", [[1, 2]]).headers["x-forgeline-model"] == "payments-de@2"

    unloadable = _deploy(project, "payments-de/5")  # the server cannot load it: it never serves that revision
    assert unloadable.status == "Failed"
    reason = unloadable.steps["Deploy"].failure_reason or ""
    assert "could not serve revision" in reason and "corrupt model" in reason, reason
    assert store.get_endpoint("risk-de").config["variants"][0]["models"] == ["payments-de@2"]
    assert server.invoke("risk-de", [[1, 2]]).headers["x-forgeline-model"] == "payments-de@2"


def test_without_a_server_the_deployment_fails_after_its_timeout_and_changes_nothing(
        project: Any, store: Any, forgeline_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project.write("pipeline.py", PIPELINE)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("FORGELINE_SERVE_URL", f"http://127.0.0.1:{probe.getsockname()[1]}")
    Endpoint.create("risk-de", ["payments-de@1"], store=store)

    finished = _deploy(project, "payments-de/4", timeout=3)
    assert finished.status == "Failed"
    reason = finished.steps["Deploy"].failure_reason or ""
    assert "no forgeline serve answered" in reason and "\n" not in reason.strip()
    assert store.get_endpoint("risk-de").config["variants"][0]["models"] == ["payments-de@1"]

    Endpoint("risk-de", store=store).delete()  # now the deployment has to create the endpoint
    created = _deploy(project, "payments-de/4", timeout=3)
    assert created.status == "Failed" and "was removed again" in (created.steps["Deploy"].failure_reason or "")
    assert [e.name for e in Endpoint.list(store=store)] == []
