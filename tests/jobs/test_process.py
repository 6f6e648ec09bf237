"""Starting a script: a command the operating system would refuse is refused first, naming step and argument."""

from __future__ import annotations

import pytest

from forgeline.errors import JobInputError
from forgeline.jobs.process import EXIT_STATUS_FILE, MAX_ARGUMENT_BYTES, adopted_exit, check_command_size
from forgeline.jobs.spec import JobSpec

SPEC = JobSpec(kind="processing", job_id="exec-1/Prepare/2", job_dir="/nowhere", log_path="/nowhere.log")
BIG = "x" * (MAX_ARGUMENT_BYTES + 1)


def test_a_command_the_os_accepts_passes():
    check_command_size(["python", "prep.py", "--config", "x" * MAX_ARGUMENT_BYTES], {"A": "1"}, SPEC)


def test_an_argument_after_a_flag_is_named_by_its_flag():
    with pytest.raises(JobInputError, match=r"^step 'Prepare': the value of --config is 131,073 bytes, over the 131,072 "):
        check_command_size(["python", "prep.py", "--config", BIG], {}, SPEC)


def test_a_positional_argument_is_named_by_its_position():
    with pytest.raises(JobInputError, match=r"^step 'Prepare': argument 2 is"):
        check_command_size(["python", "prep.py", "small", BIG], {}, SPEC)


def test_an_environment_variable_is_named():
    with pytest.raises(JobInputError, match=r"^step 'Prepare': environment variable SM_HPS is .*in a file"):
        check_command_size(["python", "train.py"], {"SM_HPS": BIG}, SPEC)


def test_many_arguments_that_are_each_fine_but_too_many_together_are_refused():
    many = ["x" * 100_000] * 40  # 4 MB in all, over any usual ARG_MAX
    with pytest.raises(JobInputError, match=r"^step 'Prepare': its arguments and environment together are"):
        check_command_size(["python", "prep.py", *many], {}, SPEC)


@pytest.mark.parametrize(("status", "adopted"), [("0", True), ("3", True), ("-11", True), ("-15", False), ("-9", False)])
def test_a_job_ended_unwatched_by_a_stop_signal_is_not_adopted_but_run_again(tmp_path, status, adopted):
    (tmp_path / EXIT_STATUS_FILE).write_text(f"{status}\n")
    ended = adopted_exit(tmp_path, str(tmp_path / "job.log"))
    assert (ended is not None) == adopted
    if ended is not None:
        assert ended.exit_code == int(status)
