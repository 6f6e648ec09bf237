"""From model references to registered packages: what ``group@approved`` means in the registry right now."""

from __future__ import annotations

from forgeline.errors import EndpointError, ModelPackageNotFoundError
from forgeline.serving.config import APPROVED, LATEST, EndpointConfig, ModelRef
from forgeline.store.metadata.model_package_store import ModelPackageStore
from forgeline.store.metadata.records import ModelPackageRecord


def resolve_model(ref: ModelRef, store: ModelPackageStore) -> ModelPackageRecord:
    """The package a reference names today; EndpointError for an unknown group or version, or no inference code."""
    try:
        if ref.selector == APPROVED:
            package = store.latest_approved_model_package(ref.group)
        elif ref.selector == LATEST:
            package = store.list_model_packages(ref.group)[0]
        else:
            package = store.get_model_package(ref.group, int(ref.selector))
    except ModelPackageNotFoundError as exc:
        raise EndpointError(f"model {ref}: {exc}") from None
    if not package.entry_point or not package.code_uri:
        raise EndpointError(
            f"model {ref} is package {package.arn}, which has no inference code: register it with "
            "Model(entry_point=...) so a server knows how to read requests and answer them"
        )
    return package


def resolve_config(config: EndpointConfig, store: ModelPackageStore) -> dict[str, list[ModelPackageRecord]]:
    """Every variant's packages in pipeline order, checked; EndpointError names the first model that cannot serve."""
    return {variant.name: [resolve_model(ref, store) for ref in variant.models] for variant in config.variants}


def model_label(package: ModelPackageRecord) -> str:
    """How responses and listings name a package: ``group@version``."""
    return f"{package.group}@{package.version}"
