"""Registry: the model registry from Python — groups, versions, approvals, events, comparisons and loading."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, singledispatch
from typing import Any

from forgeline.config import Settings
from forgeline.engine.registration import current_user
from forgeline.engine.resolve import ResolutionContext, model_package_of
from forgeline.engine.runtime import Runtime
from forgeline.errors import ModelRegistryError
from forgeline.inference.loader import Predictor, load_model
from forgeline.registry.comparison import MetricsComparison, compare_metrics
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.model_package_store import ModelPackageStore
from forgeline.store.metadata.records import (
    ModelPackageEvent,
    ModelPackageGroupSummary,
    ModelPackageRecord,
)
from forgeline.workflow.models import (
    LatestApprovedModelPackage,
    ModelApprovalStatus,
    parse_approval_status,
    parse_package_arn,
)


@dataclass(frozen=True)
class ModelPackageDescription:
    """A package with its approval history, oldest change first."""

    package: ModelPackageRecord
    history: list[ModelPackageEvent]


class Registry:
    """Model package groups and versions in the metadata store, with their code and artifacts."""

    def __init__(self, settings: Settings | None = None, *, store: ModelPackageStore | None = None,
                 artifacts: ArtifactStore | None = None, runtime: Runtime | None = None) -> None:
        """Packages in ``runtime``'s stores; without one (the Python API), in those ``settings`` or FORGELINE_* name."""
        self._runtime = runtime
        self._given_settings = settings
        self._given_store = store
        self._given_artifacts = artifacts

    @cached_property
    def store(self) -> ModelPackageStore:
        """The metadata store holding the packages."""
        return self._given_store or self._backends().store

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """The artifact store holding model data and copied inference code."""
        return self._given_artifacts or self._backends().artifacts

    @cached_property
    def settings(self) -> Settings:
        """Where the packages live (the runtime's settings, the ones given, or FORGELINE_*'s)."""
        if self._runtime is None and self._given_settings is not None:
            return self._given_settings
        return self._backends().settings

    def _backends(self) -> Runtime:
        if self._runtime is None:  # the Python API is an edge: its runtime is built here
            self._runtime = Runtime.at_edge(self._given_settings)
        return self._runtime

    def groups(self) -> builtins.list[ModelPackageGroupSummary]:
        """Every group with its number of versions, newest version and newest Approved version."""
        return self.store.list_model_package_groups()

    def describe(self, group: str, version: int) -> ModelPackageDescription:
        """A package (artifacts, code, metrics, lineage) and its approval history."""
        package = self.store.get_model_package(group, version)
        return ModelPackageDescription(package, self.store.list_model_package_events(group, version=version))

    def approve(self, group: str, version: int, note: str | None = None, by: str | None = None) -> ModelPackageEvent:
        """Mark a package Approved (by ``by``, default the OS user); it becomes the latest approved if newest."""
        return self.set_status(group, version, ModelApprovalStatus.APPROVED, note=note, by=by)

    def reject(self, group: str, version: int, note: str | None = None, by: str | None = None) -> ModelPackageEvent:
        """Mark a package Rejected; the newest remaining Approved version becomes the latest approved."""
        return self.set_status(group, version, ModelApprovalStatus.REJECTED, note=note, by=by)

    def set_status(self, group: str, version: int, status: ModelApprovalStatus | str, note: str | None = None,
                   by: str | None = None) -> ModelPackageEvent:
        """Move a package to any status and return the recorded transition."""
        target = parse_approval_status(status, ModelRegistryError)
        return self.store.update_model_package_status(group, version, target, actor=by or current_user(), note=note)

    def compare(self, group: str, a: int, b: int) -> MetricsComparison:
        """The metrics of versions ``a`` and ``b`` side by side, with ``b - a`` for numbers."""
        first, second = self.store.get_model_package(group, a), self.store.get_model_package(group, b)
        return compare_metrics(group, a, first.metrics, b, second.metrics)

    def events(self, group: str | None = None, *, version: int | None = None,
               to_status: ModelApprovalStatus | str | None = None, after: int | None = None,
               limit: int | None = None) -> builtins.list[ModelPackageEvent]:
        """Status transitions, oldest first; ``to_status="Approved"`` gives only the moves that approved a package.

        A subscriber polls with ``after=<seq of the last event it handled>`` to see each transition once.
        """
        status = None if to_status is None else parse_approval_status(to_status, ModelRegistryError)
        return self.store.list_model_package_events(group, version=version, to_status=status, after=after,
                                                    limit=limit)

    def latest_approved(self, group: str) -> ModelPackageRecord:
        """The group's Approved package with the highest version (rejecting it falls back to the one before)."""
        return self.store.latest_approved_model_package(group)

    def resolve_package(self, model: Any, parameters: Mapping[str, Any] | None = None) -> ModelPackageRecord:
        """The package a ``ModelPackage.latest_approved(...)`` expression, ``"group/version"`` or record names."""
        return _package_of(model, self, dict(parameters or {}))

    def load(self, group: str, version: int | None = None) -> Predictor:
        """A Predictor running the package's inference code (default: the latest approved version)."""
        package = self.latest_approved(group) if version is None else self.store.get_model_package(group, version)
        return load_model(package, artifacts=self.artifacts, cache_dir=self.settings.home / "model-cache")

    def list(self, group: str, status: ModelApprovalStatus | str | None = None) -> builtins.list[ModelPackageRecord]:
        """The group's packages, newest first, optionally only those with ``status``."""
        chosen = None if status is None else parse_approval_status(status, ModelRegistryError)
        return self.store.list_model_packages(group, chosen)


@singledispatch
def _package_of(model: Any, registry: Registry, parameters: dict[str, Any]) -> ModelPackageRecord:
    raise ModelRegistryError(
        f"cannot find a model package for {model!r}: pass ModelPackage.latest_approved(group), "
        "'<group>/<version>' or a package record"
    )


@_package_of.register
def _record(model: ModelPackageRecord, registry: Registry, parameters: dict[str, Any]) -> ModelPackageRecord:
    return model


@_package_of.register
def _arn(model: str, registry: Registry, parameters: dict[str, Any]) -> ModelPackageRecord:
    parsed = parse_package_arn(model)
    if parsed is None:
        raise ModelRegistryError(f"{model!r} is not a model package identifier like 'digits-cnn/7'")
    return registry.store.get_model_package(*parsed)


@_package_of.register
def _latest(model: LatestApprovedModelPackage, registry: Registry, parameters: dict[str, Any]) -> ModelPackageRecord:
    ctx = ResolutionContext(execution_id="", pipeline_name="", start_datetime=datetime.now(UTC),
                            parameters=parameters, find_latest_approved=registry.store.latest_approved_model_package)
    return model_package_of(model, ctx)
