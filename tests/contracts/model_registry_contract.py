"""ModelRegistryContract: model package groups, versions, approvals and events every MetadataStore must keep.

MetadataStoreContract inherits it, so a backend that subclasses that suite runs these tests too.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from forgeline.errors import ModelPackageNotFoundError, ModelRegistryError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ModelPackageDraft
from forgeline.workflow.models import ModelApprovalStatus

PENDING = ModelApprovalStatus.PENDING_MANUAL_APPROVAL
APPROVED = ModelApprovalStatus.APPROVED
REJECTED = ModelApprovalStatus.REJECTED

DRAFT = ModelPackageDraft(
    group="digits-cnn",
    approval_status=PENDING,
    model_data="/artifacts/executions/e1/Train/model.tar.gz",
    code_uri="/artifacts/model-packages/digits-cnn/abc/code",
    entry_point="inference.py",
    content_types=["application/json"],
    response_types=["application/json", "text/csv"],
    metrics={"metrics": {"accuracy": {"value": 0.93}}, "confusion": [[5, 1], [0, 6]]},
    description="trained by e1 — ünïcode ✓",
    lineage={"execution_id": "e1", "pipeline": "digits", "data": [{"uri": "/d/train.csv", "fingerprint": "ab"}]},
)


class ModelRegistryContract:
    """Shared tests of the model registry part of a MetadataStore (the subclass provides ``store``)."""

    def _register(self, store: MetadataStore, group: str = "digits-cnn", status: ModelApprovalStatus = PENDING,
                  actor: str = "ci") -> int:
        return store.create_model_package(replace(DRAFT, group=group, approval_status=status), actor=actor).version

    def test_a_registered_package_keeps_every_field(self, store: MetadataStore) -> None:
        package = store.create_model_package(DRAFT, actor="alice")

        assert (package.group, package.version, package.arn) == ("digits-cnn", 1, "digits-cnn/1")
        assert package.approval_status == PENDING
        assert (package.model_data, package.code_uri, package.entry_point) == (
            DRAFT.model_data, DRAFT.code_uri, DRAFT.entry_point)
        assert (package.content_types, package.response_types) == (DRAFT.content_types, DRAFT.response_types)
        assert (package.metrics, package.description, package.lineage) == (
            DRAFT.metrics, DRAFT.description, DRAFT.lineage)
        assert package.created_at.utcoffset() == timedelta(0)
        assert store.get_model_package("digits-cnn", 1) == package

    def test_versions_count_up_per_group(self, store: MetadataStore) -> None:
        assert [self._register(store) for _ in range(3)] == [1, 2, 3]
        assert self._register(store, group="other") == 1
        assert self._register(store) == 4

    def test_a_package_without_code_or_metrics(self, store: MetadataStore) -> None:
        bare = ModelPackageDraft(group="bare", approval_status=APPROVED, model_data="/m/model.pkl")
        package = store.create_model_package(bare, actor="ci")
        assert (package.code_uri, package.entry_point, package.metrics, package.description) == (None, None, None, None)
        assert (package.content_types, package.lineage) == ([], {})

    def test_registration_is_the_first_event(self, store: MetadataStore) -> None:
        self._register(store, status=APPROVED, actor="alice")
        [event] = store.list_model_package_events("digits-cnn")
        assert (event.arn, event.from_status, event.to_status, event.actor, event.note) == (
            "digits-cnn/1", None, APPROVED, "alice", None)

    def test_unknown_group_and_version_are_named(self, store: MetadataStore) -> None:
        with pytest.raises(ModelPackageNotFoundError, match="no model package group 'nope' \\(none yet"):
            store.get_model_package("nope", 1)
        self._register(store)
        self._register(store)
        with pytest.raises(ModelPackageNotFoundError, match="has no version 9 \\(versions 1 to 2 exist\\)"):
            store.get_model_package("digits-cnn", 9)
        with pytest.raises(ModelPackageNotFoundError, match="groups: digits-cnn"):
            store.list_model_packages("nope")
        with pytest.raises(ModelPackageNotFoundError, match="nope"):
            store.update_model_package_status("nope", 1, APPROVED, actor="x")
        with pytest.raises(ModelPackageNotFoundError, match="nope"):
            store.list_model_package_events("nope")

    def test_list_is_newest_first_and_filters_by_status(self, store: MetadataStore) -> None:
        for status in (APPROVED, PENDING, APPROVED, REJECTED):
            self._register(store, status=status)
        assert [p.version for p in store.list_model_packages("digits-cnn")] == [4, 3, 2, 1]
        assert [p.version for p in store.list_model_packages("digits-cnn", APPROVED)] == [3, 1]
        assert store.list_model_packages("digits-cnn", REJECTED)[0].version == 4

    def test_status_changes_are_recorded_with_who_and_why(self, store: MetadataStore) -> None:
        self._register(store)
        event = store.update_model_package_status("digits-cnn", 1, "Approved", actor="bob", note="looks good")
        assert (event.from_status, event.to_status, event.actor, event.note) == (PENDING, APPROVED, "bob", "looks good")
        assert store.get_model_package("digits-cnn", 1).approval_status == APPROVED
        store.update_model_package_status("digits-cnn", 1, REJECTED, actor="carol", note="label drift")
        history = store.list_model_package_events("digits-cnn", version=1)
        assert [(e.from_status, e.to_status, e.actor) for e in history] == [
            (None, PENDING, "ci"), (PENDING, APPROVED, "bob"), (APPROVED, REJECTED, "carol")]
        assert history == sorted(history, key=lambda e: e.seq)
        assert history[-1].created_at >= history[0].created_at

    def test_a_move_to_the_same_status_or_an_unknown_one_changes_nothing(self, store: MetadataStore) -> None:
        self._register(store)
        with pytest.raises(ModelRegistryError, match="already PendingManualApproval"):
            store.update_model_package_status("digits-cnn", 1, PENDING, actor="x")
        with pytest.raises(ModelRegistryError, match="invalid model approval status 'Deployed'"):
            store.update_model_package_status("digits-cnn", 1, "Deployed", actor="x")
        assert len(store.list_model_package_events("digits-cnn")) == 1

    def test_latest_approved_falls_back_when_the_newest_is_rejected(self, store: MetadataStore) -> None:
        for _ in range(3):
            self._register(store)
        with pytest.raises(ModelPackageNotFoundError, match="no Approved version.*models approve digits-cnn"):
            store.latest_approved_model_package("digits-cnn")
        store.update_model_package_status("digits-cnn", 1, APPROVED, actor="a")
        store.update_model_package_status("digits-cnn", 2, APPROVED, actor="a")
        assert store.latest_approved_model_package("digits-cnn").version == 2
        store.update_model_package_status("digits-cnn", 2, REJECTED, actor="a")
        assert store.latest_approved_model_package("digits-cnn").version == 1
        store.update_model_package_status("digits-cnn", 3, APPROVED, actor="a")
        assert store.latest_approved_model_package("digits-cnn").version == 3
        with pytest.raises(ModelPackageNotFoundError, match="no model package group 'other'"):
            store.latest_approved_model_package("other")

    def test_events_filter_by_group_version_and_target_status(self, store: MetadataStore) -> None:
        self._register(store)
        self._register(store)
        self._register(store, group="other", status=APPROVED)
        store.update_model_package_status("digits-cnn", 2, APPROVED, actor="a")
        store.update_model_package_status("digits-cnn", 2, REJECTED, actor="a")

        assert len(store.list_model_package_events()) == 5
        assert {e.group for e in store.list_model_package_events("other")} == {"other"}
        assert [e.arn for e in store.list_model_package_events(to_status=APPROVED)] == ["other/1", "digits-cnn/2"]
        assert [e.to_status for e in store.list_model_package_events("digits-cnn", version=2)] == [
            PENDING, APPROVED, REJECTED]
        assert [e.to_status for e in store.list_model_package_events(limit=2)] == [APPROVED, REJECTED]
        seen = store.list_model_package_events()[2].seq
        assert [e.to_status for e in store.list_model_package_events(after=seen)] == [APPROVED, REJECTED]
        assert store.list_model_package_events(after=store.list_model_package_events()[-1].seq) == []

    def test_groups_summarise_versions_and_the_latest_approved(self, store: MetadataStore) -> None:
        assert store.list_model_package_groups() == []
        self._register(store, group="b-group", status=APPROVED)
        self._register(store, group="b-group")
        self._register(store, group="a-group")
        summaries = store.list_model_package_groups()
        assert [(s.name, s.version_count, s.latest_version, s.latest_approved_version) for s in summaries] == [
            ("a-group", 1, 1, None), ("b-group", 2, 2, 1)]
        assert all(s.updated_at >= s.created_at for s in summaries)
