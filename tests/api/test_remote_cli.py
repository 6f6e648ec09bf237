"""The CLI over a server (FORGELINE_URL, FORGELINE_TOKEN) prints what it prints against the store.

Each command runs twice as a real subprocess, once against the store and once against a real server on the
same store, and the outputs are compared.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from api.conftest import RunningServer
from api.projects import gated_project
from conftest import Cli, CliRun


def remote(server: RunningServer, cli: Cli, token: str = "viewer") -> Callable[..., CliRun]:
    """Run a CLI command against ``server`` with a token of ``token``'s role."""
    env = {"FORGELINE_URL": server.url, "FORGELINE_TOKEN": server.token_for(token)}
    return lambda *args, **options: cli(*args, env=env, **options)


def same_output(cli: Cli, server: RunningServer, *args: str, cwd=None) -> CliRun:
    """Run ``args`` locally and remotely; assert the same exit code, stdout and stderr."""
    here = cli(*args, **({"cwd": cwd} if cwd else {}))
    there = remote(server, cli)(*args, **({"cwd": cwd} if cwd else {}))
    assert (there.returncode, there.stdout, there.stderr) == (here.returncode, here.stdout, here.stderr), \
        f"local:\n{here!r}\nremote:\n{there!r}"
    return here


@pytest.mark.timeout(900)  # two dozen CLI processes
def test_run_then_read_executions_and_logs_the_same_way(server: RunningServer, cli: Cli, project) -> None:
    gate = gated_project(project)
    gate.write_text("")
    ran = remote(server, cli, "operator")("run", "pipeline.py", "-p", "Count=2", cwd=project.root)
    assert ran.returncode == 0, ran
    assert "Succeeded" in ran.stdout and "Gate" in ran.stdout
    execution_id = ran.stdout.strip().splitlines()[-1].split()[1]

    listed = same_output(cli, server, "executions", "list")
    assert execution_id in listed.stdout
    same_output(cli, server, "executions", "list", "--json")
    same_output(cli, server, "executions", "list", "--pipeline", "gated", "--status", "Succeeded", "--since", "1h")
    same_output(cli, server, "executions", "list", "--pipeline", "other")
    described = same_output(cli, server, "executions", "describe", execution_id[:8])
    assert "snapshot" in described.stdout
    same_output(cli, server, "executions", "describe", execution_id, "--json")
    log = same_output(cli, server, "logs", execution_id, "Gate")
    assert log.stdout == "line 0 ünïcode\nline 1 ünïcode\nreleased\n"
    same_output(cli, server, "logs", execution_id, "Gate", "--json")
    same_output(cli, server, "logs", execution_id, "Gate", "--follow")
    same_output(cli, server, "pipelines", "list")
    same_output(cli, server, "pipelines", "show", "gated")
    same_output(cli, server, "pipelines", "show", "gated", "--version", "1", "--json")
    same_output(cli, server, "pipelines", "show", "gated", "--definition")
    missing = same_output(cli, server, "executions", "describe", "ffffffff")
    assert missing.returncode == 1 and missing.stderr.startswith("error: ")
    assert same_output(cli, server, "logs", execution_id, "Nope").returncode == 1


def test_a_remote_follow_prints_a_running_steps_log_until_it_ends(server: RunningServer, cli: Cli, project,
                                                                  wait_until) -> None:
    import subprocess
    import sys

    gate = gated_project(project)
    started = remote(server, cli, "operator")("run", "pipeline.py", "--detach", cwd=project.root)
    assert started.returncode == 0, started
    execution_id = started.stdout.strip()
    env = {**cli.env, "FORGELINE_URL": server.url, "FORGELINE_TOKEN": server.token_for("viewer")}
    follower = subprocess.Popen([sys.executable, "-m", "forgeline.cli.main", "logs", execution_id, "Gate", "-f"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "line 0 ünïcode\n"  # printed while the step still runs
        gate.write_text("")
        out = follower.stdout.read()  # to the end of the stream: the command ends when the step does
        follower.wait(120)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, follower.stderr.read() if follower.stderr else ""
    assert out == "line 1 ünïcode\nreleased\n"


def test_stop_over_a_server(server: RunningServer, cli: Cli, project, wait_until) -> None:
    gated_project(project)
    operator = remote(server, cli, "operator")
    execution_id = operator("run", "pipeline.py", "--detach", cwd=project.root).stdout.strip()
    stopped = operator("executions", "stop", execution_id)
    assert stopped.returncode == 0, stopped
    assert stopped.stdout.startswith(f"execution {execution_id}: ")
    refused = remote(server, cli, "viewer")("executions", "stop", execution_id)
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and "needs operator or higher" in refused.stderr


def test_remote_only_refusals_are_one_line(server: RunningServer, cli: Cli, project) -> None:
    gated_project(project)
    operator = remote(server, cli, "operator")
    no_cache = operator("run", "pipeline.py", "--no-cache", cwd=project.root)
    assert no_cache.returncode == 1 and "--no-cache/--keep-jobs is not available with a server" in no_cache.stderr
    unreachable = cli("executions", "list", env={"FORGELINE_URL": "http://127.0.0.1:9"})
    assert unreachable.returncode == 1 and "cannot reach the forgeline server" in unreachable.stderr
    assert unreachable.stderr.strip().count("\n") == 0
    bad_url = cli("executions", "list", env={"FORGELINE_URL": "localhost:8080"})
    assert bad_url.returncode == 1 and "FORGELINE_URL='localhost:8080' is not a server URL" in bad_url.stderr
    no_token = cli("executions", "list", env={"FORGELINE_URL": server.url})
    assert no_token.returncode == 1 and "set FORGELINE_TOKEN" in no_token.stderr


@pytest.fixture
def registered(forgeline_home) -> None:
    """Two versions of model package group ``risk`` in the store, one approved, with metrics."""
    from forgeline.config import Settings
    from forgeline.store.metadata.records import ModelPackageDraft
    from forgeline.store.metadata.sql_store import SqlMetadataStore
    from forgeline.workflow.models import ModelApprovalStatus

    store = SqlMetadataStore(Settings.from_env().database_url)
    for auc, status in ((0.81, ModelApprovalStatus.APPROVED), (0.84, ModelApprovalStatus.PENDING_MANUAL_APPROVAL)):
        store.create_model_package(ModelPackageDraft(
            group="risk", approval_status=status, model_data="/models/risk/model.pkl",
            metrics={"auc": auc, "rows": 1000}, description="gradient boosting", content_types=["text/csv"]),
            actor="pipeline")
    store.close()


def test_models_read_the_same_way(server: RunningServer, cli: Cli, registered: None) -> None:
    same_output(cli, server, "models", "groups")
    same_output(cli, server, "models", "list", "risk")
    same_output(cli, server, "models", "list", "risk", "--json")
    same_output(cli, server, "models", "describe", "risk", "2")
    same_output(cli, server, "models", "compare", "risk", "1", "2")
    same_output(cli, server, "models", "events", "risk", "--json")


def test_approvals_through_the_server_record_the_token(server: RunningServer, cli: Cli, registered: None) -> None:
    refused = remote(server, cli, "operator")("models", "approve", "risk", "2", "--note", "better auc")
    assert refused.returncode == 1 and "needs approver or higher" in refused.stderr
    approved = remote(server, cli, "approver")("models", "approve", "risk", "2", "--note", "better auc")
    assert approved.returncode == 0, approved
    assert approved.stdout.strip() == "risk/2: PendingManualApproval → Approved by approver-test (better auc)"
    rejected = remote(server, cli, "admin")("models", "reject", "risk", "1")
    assert "by admin-0" in rejected.stdout
    by = remote(server, cli, "approver")("models", "reject", "risk", "2", "--by", "mallory")
    assert by.returncode == 1 and "--by is not available with a server" in by.stderr

    with server.client("approver") as client:
        events = client.get("/models/events", params={"group": "risk"}).json()
    assert [(e["version"], e["to_status"], e["actor"], e["note"]) for e in events[-2:]] == [
        (2, "Approved", "approver-test", "better auc"), (1, "Rejected", "admin-0", None)]
    same_output(cli, server, "models", "describe", "risk", "2")
