"""Frozen policy values: caching, retries and parallelism (pure data and arithmetic)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from forgeline.errors import PipelineDefinitionError

FAILURE_KINDS = ("JobFailed", "Interrupted", "Timeout", "InfrastructureError")

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration such as ``P30D``, ``PT12H`` or ``P1DT30M`` (years and months are refused)."""
    match = _DURATION.match(text or "")
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise PipelineDefinitionError(
            f"invalid ISO 8601 duration {text!r}; examples: P30D, PT12H, P1DT30M"
        )
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(**parts)


@dataclass(frozen=True)
class CacheConfig:
    """Whether a step's result may be reused by later executions, and for how long."""

    enable_caching: bool = False
    expire_after: str | None = None

    def __post_init__(self) -> None:
        if self.expire_after is not None:
            parse_duration(self.expire_after)

    @property
    def expires_after(self) -> timedelta | None:
        """``expire_after`` as a timedelta (None: never expires)."""
        return None if self.expire_after is None else parse_duration(self.expire_after)

    def to_request(self) -> dict[str, Any]:
        """``{"Enabled": ..., "ExpireAfter": ...}``."""
        request: dict[str, Any] = {"Enabled": self.enable_caching}
        if self.expire_after is not None:
            request["ExpireAfter"] = self.expire_after
        return request

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> CacheConfig:
        """Inverse of :meth:`to_request`."""
        return cls(enable_caching=bool(request.get("Enabled")), expire_after=request.get("ExpireAfter"))


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a step's job on the listed failure kinds, with exponential back-off."""

    on: Sequence[str] = field(default_factory=lambda: ["JobFailed"])
    max_attempts: int = 3
    interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    max_interval_seconds: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "on", tuple(self.on))
        unknown = [kind for kind in self.on if kind not in FAILURE_KINDS]
        if unknown or not self.on:
            raise PipelineDefinitionError(
                f"RetryPolicy on={list(self.on)!r}: failure kinds must be among {', '.join(FAILURE_KINDS)}"
            )
        if self.max_attempts < 1:
            raise PipelineDefinitionError("RetryPolicy max_attempts must be at least 1")
        if self.interval_seconds < 0 or self.backoff_rate < 1.0:
            raise PipelineDefinitionError("RetryPolicy needs interval_seconds >= 0 and backoff_rate >= 1")

    def allows(self, failure_kind: str | None, attempt: int) -> bool:
        """Whether a failure of this kind on attempt number ``attempt`` (of this round) earns another attempt."""
        return failure_kind in self.on and attempt < self.max_attempts

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2 is the first retry)."""
        delay = self.interval_seconds * self.backoff_rate ** max(attempt - 2, 0)
        return delay if self.max_interval_seconds is None else min(delay, self.max_interval_seconds)

    def to_request(self) -> dict[str, Any]:
        """The definition-JSON form."""
        return {"On": list(self.on), "MaxAttempts": self.max_attempts, "IntervalSeconds": self.interval_seconds,
                "BackoffRate": self.backoff_rate, "MaxIntervalSeconds": self.max_interval_seconds}

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> RetryPolicy:
        """Inverse of :meth:`to_request`."""
        return cls(on=request["On"], max_attempts=request["MaxAttempts"],
                   interval_seconds=request["IntervalSeconds"], backoff_rate=request["BackoffRate"],
                   max_interval_seconds=request.get("MaxIntervalSeconds"))


@dataclass(frozen=True)
class ParallelismConfiguration:
    """How many steps of one execution may run at once (None: one per CPU core)."""

    max_parallel_steps: int | None = None

    def __post_init__(self) -> None:
        if self.max_parallel_steps is not None and self.max_parallel_steps < 1:
            raise PipelineDefinitionError("ParallelismConfiguration max_parallel_steps must be at least 1")

    def to_request(self) -> dict[str, Any]:
        """``{"MaxParallelExecutionSteps": N}``."""
        return {"MaxParallelExecutionSteps": self.max_parallel_steps}

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> ParallelismConfiguration:
        """Inverse of :meth:`to_request`."""
        return cls(max_parallel_steps=request.get("MaxParallelExecutionSteps"))


@dataclass(frozen=True)
class SelectiveExecutionConfig:
    """Run only ``selected_steps``, taking every step they need from ``source_execution_id``'s outputs."""

    source_execution_id: str
    selected_steps: Sequence[str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "selected_steps", tuple(self.selected_steps))
        if not self.selected_steps:
            raise PipelineDefinitionError("SelectiveExecutionConfig needs at least one selected step")
