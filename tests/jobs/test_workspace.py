"""Staging refuses destinations outside the job directory; collection stores outputs the script never wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeline.errors import JobError, JobInputError
from forgeline.jobs.spec import CollectedOutput, StagedInput
from forgeline.jobs.workspace import collect_outputs, prepare_workspace, stage_input

from .conftest import processing_spec, write


@pytest.mark.parametrize("destination", ["../escape", "/opt/ml/processing/input"])
def test_an_input_destination_outside_the_job_directory_is_refused(tmp_path, artifacts, destination):
    source = write(tmp_path / "data.csv", "x\n")
    with pytest.raises(JobError, match=f"input '{destination}'"):
        stage_input(StagedInput(str(source), destination), tmp_path / "job", artifacts)


def test_an_optional_output_the_script_did_not_write_is_stored_as_an_empty_folder(tmp_path, project, artifacts):
    code = write(project / "noop.py", "")
    uri = artifacts.uri("exec", "report")
    spec = processing_spec(tmp_path, code, outputs=(CollectedOutput("report", "output/report", uri, optional=True),))
    prepare_workspace(spec, artifacts)
    (Path(spec.job_dir) / "output" / "report").rmdir()
    assert collect_outputs(spec, artifacts) == {"report": uri}
    assert artifacts.is_dir(uri)
    assert artifacts.list(uri) == []


@pytest.mark.parametrize("remove_folder", [False, True])
def test_a_required_output_the_script_did_not_write_is_refused_by_name(tmp_path, project, artifacts, remove_folder):
    code = write(project / "noop.py", "")
    uri = artifacts.uri("exec", "report")
    spec = processing_spec(tmp_path, code, outputs=(CollectedOutput("report", "output/report", uri),))
    prepare_workspace(spec, artifacts)
    if remove_folder:
        (Path(spec.job_dir) / "output" / "report").rmdir()
    with pytest.raises(JobInputError, match="output 'report' was never written.*optional=True"):
        collect_outputs(spec, artifacts)
    assert not artifacts.exists(uri)


def test_a_self_referencing_symlink_input_is_named_a_symlink_loop(tmp_path, artifacts):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(JobInputError, match="is a symlink loop"):
        stage_input(StagedInput(str(loop), "input"), tmp_path / "job", artifacts)


def test_a_broken_symlink_input_says_where_it_points(tmp_path, artifacts):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(JobInputError, match="is a broken symlink to .*gone"):
        stage_input(StagedInput(str(link), "input"), tmp_path / "job", artifacts)


def test_a_missing_script_is_reported(tmp_path, artifacts):
    spec = processing_spec(tmp_path, tmp_path / "gone.py")
    with pytest.raises(JobError, match="gone.py does not exist"):
        prepare_workspace(spec, artifacts)


def test_a_symlink_loop_inside_an_input_folder_is_named(tmp_path, artifacts):
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("a\n")
    (data / "loop").symlink_to(data / "loop")
    with pytest.raises(JobInputError, match=r"input 'input': .*data/loop is a symlink loop"):
        stage_input(StagedInput(str(data), "input"), tmp_path / "job", artifacts)
