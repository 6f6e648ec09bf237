"""Registry from Python: approvals with fall-back, typed events, comparisons, resolving and loading packages."""

from __future__ import annotations

import getpass
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forgeline.config import Settings
from forgeline.errors import ModelPackageNotFoundError, ModelRegistryError
from forgeline.registry import Registry
from forgeline.registry.comparison import compare_metrics, flatten_metrics
from forgeline.store.metadata.records import ModelPackageDraft
from forgeline.workflow import ModelApprovalStatus, ModelPackage, ParameterString

APPROVED, REJECTED = ModelApprovalStatus.APPROVED, ModelApprovalStatus.REJECTED
PENDING = ModelApprovalStatus.PENDING_MANUAL_APPROVAL


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'forgeline.db'}",
                        artifact_root=str(home / "artifacts"))
    yield Registry(settings)


def register(registry: Registry, tiny: Any, *, group: str = "digits-cnn", bias: float = 0.5,
             metrics: Any = None, status: ModelApprovalStatus = PENDING) -> Any:
    """Register a tiny model the way the RegisterModel step leaves one: code copied into the artifact store."""
    model_dir, code_dir, model = tiny(name=f"{group}-{bias}", bias=bias)
    code_uri = registry.artifacts.uri("model-packages", group, f"b{bias}", "code")
    shutil.copytree(code_dir, code_uri)
    draft = ModelPackageDraft(group=group, approval_status=status, model_data=str(model_dir), code_uri=code_uri,
                              entry_point="inference.py", response_types=["application/json"], metrics=metrics)
    return registry.store.create_model_package(draft, actor="ci"), model


def test_approve_reject_and_fall_back_to_the_previous_approved_version(registry: Registry, tiny: Any) -> None:
    for bias in (0.1, 0.2, 0.3):
        register(registry, tiny, bias=bias)
    approved = registry.approve("digits-cnn", 2, note="confusion matrix checked")
    assert (approved.from_status, approved.to_status, approved.actor, approved.note) == (
        PENDING, APPROVED, getpass.getuser(), "confusion matrix checked")
    registry.approve("digits-cnn", 3, by="alice")
    assert registry.latest_approved("digits-cnn").version == 3
    registry.reject("digits-cnn", 3, note="label drift")
    assert registry.latest_approved("digits-cnn").version == 2
    assert [p.version for p in registry.list("digits-cnn", status="Approved")] == [2]
    assert [p.version for p in registry.list("digits-cnn")] == [3, 2, 1]

    history = registry.describe("digits-cnn", 3).history
    assert [(e.from_status, e.to_status, e.actor) for e in history] == [
        (None, PENDING, "ci"), (PENDING, APPROVED, "alice"), (APPROVED, REJECTED, getpass.getuser())]
    with pytest.raises(ModelRegistryError, match="already Rejected"):
        registry.reject("digits-cnn", 3)


def test_events_are_typed_transitions_a_subscriber_can_filter(registry: Registry, tiny: Any) -> None:
    register(registry, tiny, bias=0.1)
    register(registry, tiny, bias=0.2, status=APPROVED)
    registry.approve("digits-cnn", 1)
    registry.reject("digits-cnn", 1)

    became_approved = registry.events(to_status="Approved")
    assert [(e.arn, e.from_status) for e in became_approved] == [("digits-cnn/2", None), ("digits-cnn/1", PENDING)]
    assert [e.to_status for e in registry.events("digits-cnn", version=1)] == [PENDING, APPROVED, REJECTED]
    assert len(registry.events(limit=1)) == 1
    last_seen = became_approved[0].seq
    assert [e.arn for e in registry.events(to_status=APPROVED, after=last_seen)] == ["digits-cnn/1"]
    with pytest.raises(ModelRegistryError, match="invalid model approval status 'Live'"):
        registry.events(to_status="Live")
    with pytest.raises(ModelRegistryError, match="invalid model approval status 'Live'"):
        registry.list("digits-cnn", status="Live")


def test_unknown_groups_and_versions_are_clear_errors(registry: Registry, tiny: Any) -> None:
    assert registry.groups() == []
    with pytest.raises(ModelPackageNotFoundError, match="no model package group 'digits-cnn'"):
        registry.approve("digits-cnn", 1)
    register(registry, tiny)
    with pytest.raises(ModelPackageNotFoundError, match="has no version 7 \\(versions 1 to 1 exist\\)"):
        registry.describe("digits-cnn", 7)
    with pytest.raises(ModelPackageNotFoundError, match="no Approved version"):
        registry.load("digits-cnn")
    assert [g.name for g in registry.groups()] == ["digits-cnn"]


def test_compare_puts_metrics_side_by_side_with_the_difference(registry: Registry, tiny: Any) -> None:
    register(registry, tiny, bias=0.1, metrics={"metrics": {"accuracy": {"value": 0.9}, "loss": 0.3}, "n": 10})
    register(registry, tiny, bias=0.2, metrics={"metrics": {"accuracy": {"value": 0.95}}, "n": 10, "note": "x"})
    comparison = registry.compare("digits-cnn", 1, 2)
    rows = {row.name: (row.a, row.b, row.difference) for row in comparison.metrics}
    assert rows["metrics.accuracy.value"][:2] == (0.9, 0.95)
    assert rows["metrics.accuracy.value"][2] == pytest.approx(0.05)
    assert rows["metrics.loss"] == (0.3, None, None)
    assert rows["n"] == (10, 10, 0)
    assert rows["note"] == (None, "x", None)
    assert list(rows) == ["metrics.accuracy.value", "metrics.loss", "n", "note"]


def test_flatten_and_compare_reports_of_any_shape() -> None:
    assert flatten_metrics(None) == {}
    assert flatten_metrics(0.5) == {"value": 0.5}
    assert flatten_metrics({"a": {"b": [1, 2]}, "ok": True}) == {"a.b": [1, 2], "ok": True}
    assert compare_metrics("g", 1, {"ok": True}, 2, {"ok": False}).metrics[0].difference is None


def test_load_runs_the_registered_inference_code(registry: Registry, tiny: Any) -> None:
    package, model = register(registry, tiny, bias=0.25)
    register(registry, tiny, bias=0.75, status=APPROVED)
    rows = [[1, 2], [3, 4]]

    predictor = registry.load("digits-cnn", 1)
    assert json.loads(predictor.predict(json.dumps(rows), "application/json")) == model.predict(rows)
    assert json.loads(registry.load("digits-cnn").predict(json.dumps(rows))) == [5.75, 11.75]


def test_resolve_package_from_an_expression_an_identifier_or_a_record(registry: Registry, tiny: Any) -> None:
    first, _ = register(registry, tiny, bias=0.1, status=APPROVED)
    register(registry, tiny, bias=0.2)
    assert registry.resolve_package(ModelPackage.latest_approved("digits-cnn")) == first
    group = ParameterString("Group")
    assert registry.resolve_package(ModelPackage.latest_approved(group), {"Group": "digits-cnn"}) == first
    assert registry.resolve_package("digits-cnn/2").version == 2
    assert registry.resolve_package(first) is first
    with pytest.raises(ModelRegistryError, match="not a model package identifier"):
        registry.resolve_package("digits-cnn")
    with pytest.raises(ModelRegistryError, match="cannot find a model package for 42"):
        registry.resolve_package(42)
