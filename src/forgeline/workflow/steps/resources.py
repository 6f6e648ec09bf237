"""``resources=``: what one job of a step needs of the machine that runs it (a Ray executor places it by them)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from forgeline.config import parse_size
from forgeline.errors import ConfigurationError, PipelineDefinitionError

RESOURCE_KEYS = ("num_cpus", "num_gpus", "memory")
"""The keys ``resources`` accepts besides custom Ray resources, written ``custom:<name>``."""
CUSTOM_PREFIX = "custom:"
_CUSTOM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]*$")


def check_resources(what: str, resources: Any) -> dict[str, float]:
    """The resources as Ray counts them (memory in bytes); PipelineDefinitionError naming a bad key or value."""
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise PipelineDefinitionError(f"{what}: resources must be a dict like {{'num_cpus': 4, 'memory': '8GiB'}}, "
                                      f"not {resources!r}")
    checked: dict[str, float] = {}
    for key, value in resources.items():
        if key == "memory":
            checked[key] = _memory(what, value)
            continue
        if key not in RESOURCE_KEYS and not (isinstance(key, str) and key.startswith(CUSTOM_PREFIX)
                                             and _CUSTOM_NAME.match(key.removeprefix(CUSTOM_PREFIX))):
            raise PipelineDefinitionError(
                f"{what}: resources has no key {key!r}; use {', '.join(RESOURCE_KEYS)} or custom:<name> for a "
                "custom Ray resource")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
                or (key == "num_cpus" and value <= 0):
            raise PipelineDefinitionError(f"{what}: resources[{key!r}] must be a positive number, not {value!r}")
        checked[key.removeprefix(CUSTOM_PREFIX)] = float(value)
    return checked


def _memory(what: str, value: Any) -> float:
    if isinstance(value, bool):
        raise PipelineDefinitionError(f"{what}: resources['memory'] must be a size like '8GiB', not {value!r}")
    if isinstance(value, (int, float)) and value > 0:
        return float(value)
    try:
        size = parse_size(str(value), "memory")
    except ConfigurationError:
        size = 0
    if size <= 0:
        raise PipelineDefinitionError(
            f"{what}: resources['memory'] must be a size like '8GiB' or '512MB' (or bytes), not {value!r}")
    return float(size)
