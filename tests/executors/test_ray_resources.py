"""What a job asks of the Ray cluster: its step's resources, else its instance type through an overridable table."""

from __future__ import annotations

import pytest

from forgeline.errors import ConfigurationError
from forgeline.executors.ray_resources import GIB, actor_options, instance_table
from forgeline.jobs.spec import JobKind, JobSpec


def spec(**fields) -> JobSpec:
    return JobSpec(kind=JobKind.PROCESSING, job_id="e/Step/1", **fields)


def test_a_job_that_names_nothing_asks_for_one_cpu():
    assert actor_options(spec(), instance_table(None)) == {"num_cpus": 1}


def test_an_instance_type_maps_through_the_table_and_the_step_s_resources_win():
    table = instance_table(None)
    assert actor_options(spec(instance_type="ml.g5.xlarge"), table) == {"num_cpus": 4, "num_gpus": 1,
                                                                         "memory": 16 * GIB}
    both = spec(instance_type="ml.m5.large", resources={"num_cpus": 1.0, "tpu": 2.0})
    assert actor_options(both, table) == {"num_cpus": 1.0, "memory": 8 * GIB, "resources": {"tpu": 2.0}}


def test_users_add_and_override_instance_types():
    table = instance_table({"ml.m5.large": {"num_cpus": 1}, "gpu-box": {"num_gpus": 2, "memory": "64GiB"}})
    assert actor_options(spec(instance_type="ml.m5.large"), table) == {"num_cpus": 1.0}  # the entry replaced
    assert actor_options(spec(instance_type="gpu-box"), table) == {"num_cpus": 1, "num_gpus": 2.0,
                                                                    "memory": 64 * GIB}
    with pytest.raises(ConfigurationError, match="FORGELINE_INSTANCE_TYPES: instance type 'bad': resources has "
                                                 "no key 'cores'"):
        instance_table({"bad": {"cores": 2}})


def test_an_unknown_instance_type_names_the_table_and_the_way_out():
    with pytest.raises(ConfigurationError, match="instance type 'ml.x99.huge' is not in the table of instance "
                                                 r"types .*; give the step resources=\{...\} or add it to "
                                                 "FORGELINE_INSTANCE_TYPES"):
        actor_options(spec(instance_type="ml.x99.huge"), instance_table(None))
