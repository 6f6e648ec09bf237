"""Runtime records returned by the metadata store: plain frozen values, no database handles."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from forgeline.store.metadata.execution_record import ExecutionRecord, ExecutionStatus, StepStatus
from forgeline.workflow.models import ModelApprovalStatus

__all__ = [
    "CacheEntry",
    "ContentIndexEntry",
    "ExecutionRecord",
    "ExecutionStatus",
    "MetricPoint",
    "ModelPackageDraft",
    "ModelPackageEvent",
    "ModelPackageGroupSummary",
    "ModelPackageRecord",
    "PipelineSummary",
    "PipelineVersion",
    "StepAttempt",
    "StepEvent",
    "StepEventDraft",
    "StepEventKind",
    "StepRun",
    "StepStatus",
]


@dataclass(frozen=True)
class PipelineVersion:
    """One stored version of a pipeline definition."""

    pipeline_name: str
    version: int
    definition: dict[str, Any]
    digest: str
    created_at: datetime
    code_snapshot: str | None = None  # the code snapshot of this version's latest save (what a schedule runs)


@dataclass(frozen=True)
class PipelineSummary:
    """A pipeline with its newest version and how often it ran."""

    name: str
    latest_version: int
    created_at: datetime
    updated_at: datetime
    execution_count: int


@dataclass(frozen=True)
class StepRun:
    """One step of one execution: its status, timing, outputs and properties."""

    execution_id: str
    name: str
    kind: str
    status: StepStatus
    started_at: datetime | None = None
    ended_at: datetime | None = None
    attempts: int = 0
    failure_reason: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    cache_hit: bool = False
    cache_source: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StepAttempt:
    """One attempt at running a step's job."""

    execution_id: str
    step_name: str
    attempt: int
    status: StepStatus
    started_at: datetime
    ended_at: datetime | None = None
    failure_kind: str | None = None
    failure_reason: str | None = None
    log_path: str | None = None


@dataclass(frozen=True)
class CacheEntry:
    """The result of a succeeded step that later executions with the same cache key may reuse."""

    cache_key: str
    pipeline_name: str
    step_name: str
    step_kind: str
    execution_id: str
    components: dict[str, str]  # the named parts the key was computed from, to explain a miss
    outputs: dict[str, str]
    properties: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class ContentIndexEntry:
    """A file's stat signature and content digest, so an unchanged file need not be read again."""

    path: str
    size: int
    version: str  # mtime in ns for local files; ETag, checksum or mtime for object stores
    digest: str


@dataclass(frozen=True)
class MetricPoint:
    """One value of a training metric, as parsed from an attempt's log."""

    execution_id: str
    step_name: str
    attempt: int
    name: str
    value: float
    timestamp: datetime
    seq: int  # order within the attempt


@dataclass(frozen=True)
class ModelPackageDraft:
    """A model package about to be registered; the store gives it the group's next version number."""

    group: str
    approval_status: ModelApprovalStatus
    model_data: str  # URI or absolute path of model.tar.gz, a folder or a file
    code_uri: str | None = None  # the inference code folder, copied into the artifact store
    entry_point: str | None = None  # relative to code_uri
    content_types: list[str] = field(default_factory=list)
    response_types: list[str] = field(default_factory=list)
    metrics: Any = None  # the parsed JSON report
    description: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)  # execution, step, parameters, data and fingerprints
    accepts_batches: bool = False  # predict_fn takes the rows of several requests at once (micro-batching)


@dataclass(frozen=True)
class ModelPackageRecord:
    """One registered version of a model package group."""

    group: str
    version: int
    approval_status: ModelApprovalStatus
    model_data: str
    created_at: datetime
    updated_at: datetime
    code_uri: str | None = None
    entry_point: str | None = None
    content_types: list[str] = field(default_factory=list)
    response_types: list[str] = field(default_factory=list)
    metrics: Any = None
    description: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)
    accepts_batches: bool = False

    @property
    def arn(self) -> str:
        """The package's identifier: ``<group>/<version>``."""
        return f"{self.group}/{self.version}"


@dataclass(frozen=True)
class ModelPackageGroupSummary:
    """A model package group with its version count, newest version and newest Approved version."""

    name: str
    created_at: datetime
    updated_at: datetime
    version_count: int
    latest_version: int
    latest_approved_version: int | None


@dataclass(frozen=True)
class ModelPackageEvent:
    """One approval-status transition of a package (from_status None: the package was registered)."""

    seq: int  # increases with every event of the store
    group: str
    version: int
    from_status: ModelApprovalStatus | None
    to_status: ModelApprovalStatus
    actor: str
    created_at: datetime
    note: str | None = None

    @property
    def arn(self) -> str:
        """The package's identifier: ``<group>/<version>``."""
        return f"{self.group}/{self.version}"


class StepEventKind(StrEnum):
    """What a step event is about: a transition of the execution, a step or an attempt, or a pointer."""

    EXECUTION = "execution"
    STEP = "step"
    ATTEMPT = "attempt"
    LOG = "log"
    METRIC = "metric"


@dataclass(frozen=True)
class StepEventDraft:
    """An event about to be appended; the store gives it its cursor (id) and time."""

    execution_id: str
    kind: StepEventKind
    step_name: str | None = None
    attempt: int | None = None
    status: str | None = None  # the new ExecutionStatus or StepStatus value, for transitions
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepEvent:
    """One appended event; ``id`` is the cursor: it grows with every event of an execution, in commit order."""

    id: int
    execution_id: str
    kind: StepEventKind
    step_name: str | None
    attempt: int | None
    status: str | None
    payload: dict[str, Any]
    created_at: datetime
