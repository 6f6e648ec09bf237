"""What a job asks of the Ray cluster: its step's ``resources``, else its instance type through a table.

The table maps SageMaker instance types to Ray resources; users extend or override it with
FORGELINE_INSTANCE_TYPES (JSON: ``{"ml.g5.xlarge": {"num_cpus": 4, "num_gpus": 1, "memory": "16GiB"}}``). A job
that names neither asks for one CPU. Values the step gives win over those of its instance type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forgeline.errors import ConfigurationError
from forgeline.jobs.spec import JobSpec
from forgeline.workflow.steps.resources import check_resources

GIB = 1024**3
INSTANCE_TYPES: dict[str, dict[str, Any]] = {
    "local": {"num_cpus": 1},
    "ml.t3.medium": {"num_cpus": 2, "memory": 4 * GIB},
    "ml.m5.large": {"num_cpus": 2, "memory": 8 * GIB},
    "ml.m5.xlarge": {"num_cpus": 4, "memory": 16 * GIB},
    "ml.m5.2xlarge": {"num_cpus": 8, "memory": 32 * GIB},
    "ml.m5.4xlarge": {"num_cpus": 16, "memory": 64 * GIB},
    "ml.c5.xlarge": {"num_cpus": 4, "memory": 8 * GIB},
    "ml.c5.2xlarge": {"num_cpus": 8, "memory": 16 * GIB},
    "ml.r5.xlarge": {"num_cpus": 4, "memory": 32 * GIB},
    "ml.g4dn.xlarge": {"num_cpus": 4, "num_gpus": 1, "memory": 16 * GIB},
    "ml.g5.xlarge": {"num_cpus": 4, "num_gpus": 1, "memory": 16 * GIB},
    "ml.g5.2xlarge": {"num_cpus": 8, "num_gpus": 1, "memory": 32 * GIB},
    "ml.p3.2xlarge": {"num_cpus": 8, "num_gpus": 1, "memory": 61 * GIB},
}
"""Ray resources of common instance types (vCPUs, GPUs, memory), for jobs that name an instance type only."""
DEFAULT_RESOURCES = {"num_cpus": 1}


def instance_table(overrides: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """The built-in table with the user's entries (checked) on top."""
    table = {name: dict(values) for name, values in INSTANCE_TYPES.items()}
    for name, values in (overrides or {}).items():
        try:
            table[name] = check_resources(f"instance type {name!r}", values)
        except Exception as exc:
            raise ConfigurationError(f"FORGELINE_INSTANCE_TYPES: {exc}") from None
    return table


def actor_options(spec: JobSpec, table: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Ray ``.options()`` of the actor that runs ``spec``: num_cpus, num_gpus, memory and custom resources."""
    wanted: dict[str, Any] = dict(DEFAULT_RESOURCES)
    if spec.instance_type is not None:
        if spec.instance_type not in table:
            known = ", ".join(sorted(table))
            raise ConfigurationError(
                f"job {spec.job_id}: instance type {spec.instance_type!r} is not in the table of instance types "
                f"({known}); give the step resources={{...}} or add it to FORGELINE_INSTANCE_TYPES")
        wanted.update(table[spec.instance_type])
    wanted.update(spec.resources)
    options: dict[str, Any] = {}
    custom: dict[str, float] = {}
    for name, value in wanted.items():
        if name in ("num_cpus", "num_gpus", "memory"):
            options[name] = int(value) if name == "memory" else value
        else:
            custom[name] = float(value)
    if custom:
        options["resources"] = custom
    return options
