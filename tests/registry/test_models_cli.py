"""``forgeline models ...``: the output of every command, and one-line errors for bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from forgeline.config import Settings
from forgeline.registry import Registry
from forgeline.store.metadata.records import ModelPackageDraft
from forgeline.workflow import ModelApprovalStatus

LINEAGE = {
    "pipeline": "digits", "pipeline_version": 3, "execution_id": "0123abcd4567", "step": "RegisterModel",
    "parameters": {"Epochs": 5}, "model_step": "Train",
    "model_data": {"uri": "/a/Train/model.tar.gz", "fingerprint": "f" * 64},
    "data": [{"uri": "/data/digits.csv", "fingerprint": "d" * 64, "step": "Prepare", "input": "raw"}],
    "steps": [{"name": "Prepare", "kind": "Processing", "inputs": [{"name": "raw", "uri": "/data/digits.csv"}],
               "outputs": [{"name": "train", "uri": "/a/Prepare/train"}]}],
    "metrics_source": {"property_file": "Evaluation", "step": "Evaluate", "uri": "/a/Evaluate/evaluation.json"},
}


@pytest.fixture
def packages(forgeline_home: Path) -> Registry:
    registry = Registry(Settings.from_env())
    for version, accuracy in ((1, 0.90), (2, 0.95)):
        registry.store.create_model_package(ModelPackageDraft(
            group="digits-cnn", approval_status=ModelApprovalStatus.PENDING_MANUAL_APPROVAL,
            model_data=f"/a/v{version}/model.tar.gz", code_uri=f"/a/v{version}/code", entry_point="inference.py",
            content_types=["application/json"], response_types=["text/csv"],
            metrics={"metrics": {"accuracy": {"value": accuracy}}}, description=f"model {version}",
            lineage=LINEAGE), actor="ci")
    registry.store.create_model_package(ModelPackageDraft(
        group="other", approval_status=ModelApprovalStatus.APPROVED, model_data="/o/model.pkl"), actor="ci")
    return registry


def one_line_error(run: Any, *fragments: str) -> None:
    assert run.returncode == 1, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in run.output, run
    for fragment in fragments:
        assert fragment in lines[0], (fragment, run)


def test_groups_and_list(packages: Registry, cli: Any) -> None:
    groups = cli("models", "groups")
    assert groups.returncode == 0, groups
    assert re.search(r"digits-cnn\s+2\s+2\s+-", groups.stdout), groups
    assert re.search(r"other\s+1\s+1\s+1", groups.stdout), groups

    listed = cli("models", "list", "digits-cnn")
    assert listed.returncode == 0, listed
    assert listed.stdout.index("model 2") < listed.stdout.index("model 1"), listed
    assert "PendingManualApproval" in listed.stdout and "0123abcd4567" in listed.stdout

    packages.approve("digits-cnn", 1)
    approved = cli("models", "list", "digits-cnn", "--status", "Approved")
    assert "model 1" in approved.stdout and "model 2" not in approved.stdout, approved


def test_describe_shows_artifacts_metrics_lineage_and_history(packages: Registry, cli: Any) -> None:
    packages.approve("digits-cnn", 2, note="checked the confusion matrix", by="alice")
    run = cli("models", "describe", "digits-cnn", "2")
    assert run.returncode == 0, run
    out = run.stdout
    for fragment in ("model package digits-cnn/2  Approved", "model data: /a/v2/model.tar.gz",
                     "inference code: inference.py in /a/v2/code", "response types: text/csv",
                     "description: model 2", "metrics.accuracy.value", "0.95",
                     "metrics from property file Evaluation of step Evaluate",
                     "lineage: pipeline digits v3, execution 0123abcd4567, step RegisterModel, model from step Train",
                     "parameters: Epochs=5", "/data/digits.csv", "d" * 20, "Prepare (raw)", "approval history",
                     "registered as PendingManualApproval", "PendingManualApproval → Approved", "alice",
                     "checked the confusion matrix"):
        assert fragment in out, (fragment, run)

    as_json = cli("models", "describe", "digits-cnn", "2", "--json")
    doc = json.loads(as_json.stdout)
    assert doc["package"]["version"] == 2 and doc["package"]["lineage"]["execution_id"] == "0123abcd4567"
    assert [e["to_status"] for e in doc["history"]] == ["PendingManualApproval", "Approved"]


def test_approve_reject_compare_and_events(packages: Registry, cli: Any) -> None:
    approve = cli("models", "approve", "digits-cnn", "2", "--note", "checked the confusion matrix")
    assert approve.returncode == 0, approve
    assert re.search(r"digits-cnn/2: PendingManualApproval → Approved by \S+ \(checked the confusion matrix\)",
                     approve.stdout), approve
    reject = cli("models", "reject", "digits-cnn", "2", "--note", "label drift", "--by", "bob")
    assert "digits-cnn/2: Approved → Rejected by bob (label drift)" in reject.stdout, reject
    assert packages.store.get_model_package("digits-cnn", 2).approval_status == ModelApprovalStatus.REJECTED

    compare = cli("models", "compare", "digits-cnn", "1", "2")
    assert compare.returncode == 0, compare
    assert re.search(r"metrics\.accuracy\.value\s+0\.9\s+0\.95\s+\+0\.05", compare.stdout), compare

    events = cli("models", "events")
    assert events.returncode == 0, events
    assert events.stdout.count("registered as") == 3 and "label drift" in events.stdout, events
    only_approved = cli("models", "events", "digits-cnn", "--status", "Approved")
    assert "digits-cnn/2" in only_approved.stdout and "Rejected" not in only_approved.stdout, only_approved
    assert "other/1" not in only_approved.stdout


def test_bad_input_is_one_line_error(packages: Registry, cli: Any) -> None:
    one_line_error(cli("models", "list", "nope"), "no model package group 'nope'", "digits-cnn, other")
    one_line_error(cli("models", "describe", "digits-cnn", "9"), "has no version 9", "versions 1 to 2 exist")
    one_line_error(cli("models", "list", "digits-cnn", "--status", "Live"),
                   "invalid model approval status 'Live'", "Approved")
    one_line_error(cli("models", "approve", "other", "1"), "other/1 is already Approved; nothing changed")


def test_an_empty_registry_says_so(forgeline_home: Path, cli: Any) -> None:
    Registry(Settings.from_env()).groups()  # the store exists (read commands never create one) but is empty
    assert "no model package groups yet" in cli("models", "groups").stdout
    assert "no registry events yet" in cli("models", "events").stdout
