"""ModelPackageStore: the part of the metadata store the model registry uses (packages, approvals, events)."""

from __future__ import annotations

from typing import Protocol

from forgeline.store.metadata.records import (
    ModelPackageDraft,
    ModelPackageEvent,
    ModelPackageGroupSummary,
    ModelPackageRecord,
)
from forgeline.workflow.models import ModelApprovalStatus


class ModelPackageStore(Protocol):
    """Versioned model packages per group and the history of their approval statuses; each call one transaction."""

    def create_model_package(self, draft: ModelPackageDraft, *, actor: str,
                             epoch: int | None = None) -> ModelPackageRecord:
        """Store the draft as its group's next version (1, 2, 3, … never reused), creating the group if needed.

        Records the first event (no from_status → the draft's status) by ``actor``; concurrent calls for one
        group get distinct versions. ``epoch`` fences the registration like every write of the execution named
        by ``lineage['execution_id']`` (StaleOwnerError, nothing registered).
        """
        ...

    def get_model_package(self, group: str, version: int) -> ModelPackageRecord:
        """One package; ModelPackageNotFoundError names an unknown group or version."""
        ...

    def list_model_packages(
        self, group: str, status: ModelApprovalStatus | None = None
    ) -> list[ModelPackageRecord]:
        """The group's packages, newest first, optionally with one status only; ModelPackageNotFoundError."""
        ...

    def list_model_package_groups(self) -> list[ModelPackageGroupSummary]:
        """Every group with its counts and newest (Approved) versions, by name."""
        ...

    def latest_approved_model_package(self, group: str) -> ModelPackageRecord:
        """The group's Approved package with the highest version; ModelPackageNotFoundError when none is."""
        ...

    def update_model_package_status(
        self, group: str, version: int, status: ModelApprovalStatus | str, *, actor: str, note: str | None = None
    ) -> ModelPackageEvent:
        """Move a package to ``status`` and return the recorded transition.

        ModelRegistryError for an invalid status or the status the package already has (nothing changes).
        """
        ...

    def list_model_package_events(
        self,
        group: str | None = None,
        *,
        version: int | None = None,
        to_status: ModelApprovalStatus | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[ModelPackageEvent]:
        """Status transitions matching every given filter, oldest first (the newest ``limit`` when given).

        ``after`` keeps only events whose seq is greater: a subscriber polls with the last seq it has seen.
        """
        ...
