"""Staging refuses destinations outside the job directory; collection stores outputs the script never wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeline.errors import JobError
from forgeline.jobs.spec import CollectedOutput, StagedInput
from forgeline.jobs.workspace import collect_outputs, prepare_workspace, stage_input

from .conftest import processing_spec, write


@pytest.mark.parametrize("destination", ["../escape", "/opt/ml/processing/input"])
def test_an_input_destination_outside_the_job_directory_is_refused(tmp_path, artifacts, destination):
    source = write(tmp_path / "data.csv", "x\n")
    with pytest.raises(JobError, match=f"input '{destination}'"):
        stage_input(StagedInput(str(source), destination), tmp_path / "job", artifacts)


def test_an_output_the_script_did_not_write_is_stored_as_an_empty_folder(tmp_path, project, artifacts):
    code = write(project / "noop.py", "")
    uri = artifacts.uri("exec", "report")
    spec = processing_spec(tmp_path, code, outputs=(CollectedOutput("report", "output/report", uri),))
    prepare_workspace(spec, artifacts)
    (Path(spec.job_dir) / "output" / "report").rmdir()
    assert collect_outputs(spec, artifacts) == {"report": uri}
    assert artifacts.is_dir(uri)
    assert artifacts.list(uri) == []


def test_a_missing_script_is_reported(tmp_path, artifacts):
    spec = processing_spec(tmp_path, tmp_path / "gone.py")
    with pytest.raises(JobError, match="gone.py does not exist"):
        prepare_workspace(spec, artifacts)
