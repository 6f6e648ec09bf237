"""Model package vocabulary: approval statuses, package ids and ``ModelPackage.latest_approved(group)``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from forgeline.errors import ForgelineError, PipelineDefinitionError
from forgeline.workflow.expressions import Expression, check_name, parse_value, serialize

LATEST_APPROVED_FUNCTION = "Std:LatestApprovedModelPackage"


class ModelApprovalStatus(StrEnum):
    """Where a model package stands in the approval workflow (SageMaker's vocabulary)."""

    PENDING_MANUAL_APPROVAL = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


def parse_approval_status(value: Any, error: type[ForgelineError] = PipelineDefinitionError) -> ModelApprovalStatus:
    """The status named by ``value``; ``error`` lists the valid ones otherwise."""
    try:
        return ModelApprovalStatus(value)
    except ValueError:
        valid = ", ".join(status.value for status in ModelApprovalStatus)
        raise error(f"invalid model approval status {value!r}: use one of {valid}") from None


FOLLOW_APPROVED = "approved"
"""``group@approved``: the group's newest Approved version, whichever it is when the name is resolved."""
FOLLOW_LATEST = "latest"
"""``group@latest``: the group's newest version."""


@dataclass(frozen=True)
class PackageId:
    """A model package named in text: its group and a version number, ``approved`` or ``latest``."""

    group: str
    selector: str

    @property
    def version(self) -> int | None:
        """The version number, or None when the name follows the registry (``approved``, ``latest``)."""
        return int(self.selector) if self.selector.isdigit() else None

    def __str__(self) -> str:
        return f"{self.group}@{self.selector}"


def parse_package_id(text: str) -> PackageId | None:
    """The package ``group/7``, ``group@7``, ``group@approved`` or ``group@latest`` names; None for other text."""
    text = str(text).strip()
    group, at, selector = text.rpartition("@")
    if not at:
        group, _, selector = text.rpartition("/")
    selector = selector.lower()
    if not group or not (selector.isdigit() or (at and selector in (FOLLOW_APPROVED, FOLLOW_LATEST))):
        return None
    return PackageId(group, str(int(selector)) if selector.isdigit() else selector)


def parse_package_arn(arn: str) -> tuple[str, int] | None:
    """``("group", 7)`` for a package id naming one version (``group/7``, ``group@7``), else None."""
    parsed = parse_package_id(arn)
    return None if parsed is None or parsed.version is None else (parsed.group, parsed.version)


def check_group_name(name: str) -> str:
    """Refuse model package group names that could not name an artifact folder or a CLI argument."""
    return check_name("model package group", name)


class LatestApprovedModelPackage(Expression):
    """The newest Approved package of a group, looked up when a step that uses it runs."""

    PROPERTIES = ("ModelData", "Version", "Arn", "Metrics")
    NO_DEFAULT: Any = object()

    def __init__(self, group: str | Expression, property_name: str = "ModelData", default: Any = NO_DEFAULT) -> None:
        if isinstance(group, str):
            check_group_name(group)
        elif not isinstance(group, Expression):
            raise PipelineDefinitionError(f"a model package group must be a name or an expression, got {group!r}")
        if property_name not in self.PROPERTIES:
            raise PipelineDefinitionError(
                f"a model package has no property {property_name!r}; it has: {', '.join(self.PROPERTIES)}"
            )
        self.group = group
        self.property_name = property_name
        self.default = default

    @property
    def model_data(self) -> LatestApprovedModelPackage:
        """The URI of the package's model artifacts (also what the package itself resolves to)."""
        return LatestApprovedModelPackage(self.group, "ModelData", self.default)

    @property
    def version(self) -> LatestApprovedModelPackage:
        """The package's version number in its group."""
        return LatestApprovedModelPackage(self.group, "Version", self.default)

    @property
    def arn(self) -> LatestApprovedModelPackage:
        """The package's identifier, ``<group>/<version>``."""
        return LatestApprovedModelPackage(self.group, "Arn", self.default)

    @property
    def metrics(self) -> LatestApprovedModelPackage:
        """The metrics report registered with the package (the parsed JSON)."""
        return LatestApprovedModelPackage(self.group, "Metrics", self.default)

    @property
    def has_default(self) -> bool:
        """Whether a group without an approved package resolves to ``default`` instead of failing the step."""
        return self.default is not LatestApprovedModelPackage.NO_DEFAULT

    @property
    def expr(self) -> dict[str, Any]:
        """``{"Std:LatestApprovedModelPackage": {"Group": ..., "Property": ...}}`` (Property omitted for ModelData)."""
        body: dict[str, Any] = {"Group": serialize(self.group)}
        if self.property_name != "ModelData":
            body["Property"] = self.property_name
        if self.has_default:
            body["Default"] = serialize(self.default)
        return {LATEST_APPROVED_FUNCTION: body}

    @classmethod
    def from_expr(cls, body: Mapping[str, Any]) -> LatestApprovedModelPackage:
        """Inverse of :attr:`expr`, given the function's body."""
        if "Group" not in body:
            raise PipelineDefinitionError(f"{LATEST_APPROVED_FUNCTION} needs a 'Group', got {dict(body)!r}")
        return cls(parse_value(body["Group"]), body.get("Property", "ModelData"),
                   parse_value(body["Default"]) if "Default" in body else cls.NO_DEFAULT)

    def children(self) -> Iterable[Any]:
        """The group (a parameter, when it is one)."""
        return [self.group]


class ModelPackage:
    """Entry point for expressions over registered model packages."""

    @staticmethod
    def latest_approved(group: str | Expression, default: Any = LatestApprovedModelPackage.NO_DEFAULT,
                        ) -> LatestApprovedModelPackage:
        """The newest Approved version of ``group``; resolves to its model data URI unless a property is taken.

        With ``default`` given (``None`` too), a group with no approved package resolves to it instead of
        failing the step that uses it: how a first training run compares against "nothing yet".
        """
        return LatestApprovedModelPackage(group, default=default)
