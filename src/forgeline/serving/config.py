"""Endpoint configurations as frozen values: model references, weighted variants, batching and capture settings.

A model is named ``group@version``, ``group@approved`` (the newest Approved version, followed as approvals change)
or ``group@latest`` (the newest version). A variant is an ordered list of models (an inference pipeline: each
stage's output is the next stage's input) with a traffic weight.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from forgeline.errors import EndpointError
from forgeline.workflow.models import FOLLOW_APPROVED, FOLLOW_LATEST, parse_package_id

APPROVED = FOLLOW_APPROVED
LATEST = FOLLOW_LATEST
DEFAULT_VARIANT = "AllTraffic"
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_BATCH_WAIT_US = 500
MAX_BATCH_SIZE_LIMIT = 10_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_VARIANT = re.compile(r"^(?P<name>[^=]+)=(?P<models>[^:]+)(?::(?P<weight>[^:]+))?$")


def check_endpoint_name(name: str) -> str:
    """Refuse endpoint names that could not be a URL path segment or a folder name."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise EndpointError(f"invalid endpoint name {name!r}: use up to 63 letters, digits, '.', '_' or '-', "
                            "starting with a letter or digit")
    return name


@dataclass(frozen=True)
class ModelRef:
    """One stage's model: a group and ``approved``, ``latest`` or a version number."""

    group: str
    selector: str

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """``payments@7``, ``payments@approved`` or ``payments@latest`` (a package id ``payments/7`` too)."""
        parsed = parse_package_id(text)
        if parsed is None:
            raise EndpointError(f"invalid model {text!r}: write group@version, group@approved or group@latest "
                                "(e.g. payments-de@7)")
        if parsed.version is not None and parsed.version < 1:
            raise EndpointError(f"invalid model {text!r}: versions count from 1; write group@version")
        return cls(parsed.group, parsed.selector)

    @property
    def follows_registry(self) -> bool:
        """Whether the version depends on the registry's state (``@approved``, ``@latest``)."""
        return not self.selector.isdigit()

    def __str__(self) -> str:
        return f"{self.group}@{self.selector}"


@dataclass(frozen=True)
class VariantConfig:
    """A named inference pipeline (one or more models, in order) and its share of the traffic."""

    name: str
    models: tuple[ModelRef, ...]
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> VariantConfig:
        """``name=group@version:weight``; several models of a pipeline are separated by commas."""
        match = _VARIANT.match(str(text).strip())
        if match is None:
            raise EndpointError(f"invalid variant {text!r}: write name=group@version:weight, "
                                "e.g. canary=payments-de@8:10 (models of a pipeline separated by commas)")
        weight_text = match.group("weight")
        try:
            weight = 1.0 if weight_text is None else float(weight_text)
        except ValueError:
            raise EndpointError(f"invalid variant {text!r}: the weight {weight_text!r} is not a number") from None
        models = tuple(ModelRef.parse(part) for part in match.group("models").split(",") if part.strip())
        return cls(match.group("name").strip(), models, weight)

    def __str__(self) -> str:
        return f"{self.name}={','.join(map(str, self.models))}:{self.weight:g}"


@dataclass(frozen=True)
class EndpointConfig:
    """Everything a server needs to host an endpoint, stored as plain JSON in the metadata store."""

    variants: tuple[VariantConfig, ...]
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_batch_wait_us: int = DEFAULT_MAX_BATCH_WAIT_US
    capture: float = 0.0  # share of request/response pairs written to the artifact store
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.variants:
            raise EndpointError("an endpoint needs at least one model: give --model group@version or --variant")
        names = [variant.name for variant in self.variants]
        if len(set(names)) != len(names):
            raise EndpointError(f"variant names must differ, got {', '.join(names)}")
        for variant in self.variants:
            check_variant(variant)
        if sum(variant.weight for variant in self.variants) <= 0:
            raise EndpointError("at least one variant needs a weight above 0")
        if not 1 <= self.max_batch_size <= MAX_BATCH_SIZE_LIMIT:
            raise EndpointError(f"max batch size must be between 1 and {MAX_BATCH_SIZE_LIMIT}, "
                                f"got {self.max_batch_size}")
        if not 0 <= self.max_batch_wait_us <= 1_000_000:
            raise EndpointError(f"max batch wait must be between 0 and 1000000 µs, got {self.max_batch_wait_us}")
        if not 0.0 <= self.capture <= 1.0:
            raise EndpointError(f"capture is a share of requests between 0 and 1, got {self.capture}")

    def variant(self, name: str) -> VariantConfig:
        """The variant by that name; EndpointError listing the variants otherwise."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise EndpointError(f"no variant {name!r} (variants: {', '.join(v.name for v in self.variants)})")

    @property
    def model_refs(self) -> list[ModelRef]:
        """Every model of every variant, in order."""
        return [ref for variant in self.variants for ref in variant.models]

    def to_json(self) -> dict[str, Any]:
        """The document the metadata store keeps."""
        return {
            "variants": [{"name": v.name, "models": [str(m) for m in v.models], "weight": v.weight}
                         for v in self.variants],
            "max_batch_size": self.max_batch_size, "max_batch_wait_us": self.max_batch_wait_us,
            "capture": self.capture, **dict(self.extra),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> EndpointConfig:
        """Inverse of :meth:`to_json`."""
        known = {"variants", "max_batch_size", "max_batch_wait_us", "capture"}
        variants = tuple(VariantConfig(v["name"], tuple(ModelRef.parse(m) for m in v["models"]), float(v["weight"]))
                         for v in document.get("variants", []))
        return cls(variants, int(document.get("max_batch_size", DEFAULT_MAX_BATCH_SIZE)),
                   int(document.get("max_batch_wait_us", DEFAULT_MAX_BATCH_WAIT_US)),
                   float(document.get("capture", 0.0)), {k: v for k, v in document.items() if k not in known})

    def updated(self, *, models: Sequence[str] | None = None, variants: Iterable[str | VariantConfig] | None = None,
                max_batch_size: int | None = None, max_batch_wait_us: int | None = None,
                capture: float | None = None) -> EndpointConfig:
        """A copy with the given settings changed; ``models`` makes one variant (keeping a lone variant's name)."""
        chosen = self.variants
        if models and variants:
            raise EndpointError("give either models (one pipeline for all traffic) or variants, not both")
        if models:
            name = self.variants[0].name if len(self.variants) == 1 else DEFAULT_VARIANT
            chosen = (VariantConfig(name, tuple(ModelRef.parse(m) for m in models), 1.0),)
        elif variants:
            chosen = tuple(v if isinstance(v, VariantConfig) else VariantConfig.parse(v) for v in variants)
        return replace(
            self, variants=chosen,
            max_batch_size=self.max_batch_size if max_batch_size is None else max_batch_size,
            max_batch_wait_us=self.max_batch_wait_us if max_batch_wait_us is None else max_batch_wait_us,
            capture=self.capture if capture is None else capture,
        )

    @classmethod
    def build(cls, *, models: Sequence[str] | None = None, variants: Iterable[str | VariantConfig] | None = None,
              max_batch_size: int | None = None, max_batch_wait_us: int | None = None,
              capture: float | None = None) -> EndpointConfig:
        """A new endpoint's configuration from CLI-style arguments."""
        if not models and not variants:
            raise EndpointError("an endpoint needs at least one model: give --model group@version or --variant")
        placeholder = cls((VariantConfig(DEFAULT_VARIANT, (ModelRef("placeholder", "1"),)),))
        return placeholder.updated(models=models, variants=variants, max_batch_size=max_batch_size,
                                   max_batch_wait_us=max_batch_wait_us, capture=capture)


def check_variant(variant: VariantConfig) -> None:
    """Refuse a variant without models, with a negative weight or a name unfit for a header."""
    if not _NAME.match(variant.name):
        raise EndpointError(f"invalid variant name {variant.name!r}: use letters, digits, '.', '_' or '-'")
    if not variant.models:
        raise EndpointError(f"variant {variant.name!r} has no model")
    if variant.weight < 0 or variant.weight != variant.weight:
        raise EndpointError(f"variant {variant.name!r}: the weight must be 0 or more, got {variant.weight}")
