"""Jobs with SageMaker's /opt/ml paths: the script sees its job directory at /opt/ml through a private mount
namespace, and where no namespace can be made the job fails with one clear line."""

from __future__ import annotations

import json

import pytest

from forgeline.jobs import sagemaker_paths
from forgeline.jobs.control import JobControl
from forgeline.jobs.processing import run_processing_job
from forgeline.jobs.spec import CollectedOutput, JobStatus, StagedInput

from .conftest import processing_spec, write


def test_a_script_that_hard_codes_opt_ml_paths_runs_unchanged(tmp_path, project, artifacts):
    write(project / "data" / "rows.csv", "1\n2\n3\n")
    script = write(project / "count.py", """
        import json, os
        rows = open("/opt/ml/processing/input/rows.csv").read().split()
        os.makedirs("/opt/ml/processing/output", exist_ok=True)
        json.dump({"rows": len(rows)}, open("/opt/ml/processing/output/count.json", "w"))
    """)
    spec = processing_spec(tmp_path, script, sagemaker_paths=True,
                           inputs=(StagedInput(str(project / "data" / "rows.csv"), "processing/input"),),
                           outputs=(CollectedOutput("counted", "processing/output", str(tmp_path / "out")),))
    result = run_processing_job(spec, artifacts, JobControl())
    assert result.status == JobStatus.SUCCEEDED, result.failure_reason
    assert json.loads((tmp_path / "out" / "count.json").read_text()) == {"rows": 3}


def test_without_a_mount_namespace_the_job_fails_with_one_clear_line(tmp_path, project, artifacts, monkeypatch):
    monkeypatch.setattr(sagemaker_paths.shutil, "which", lambda name: None)
    sagemaker_paths._probe.cache_clear()
    try:
        script = write(project / "noop.py", "print('never runs')\n")
        result = run_processing_job(processing_spec(tmp_path, script, sagemaker_paths=True), artifacts, JobControl())
    finally:
        sagemaker_paths._probe.cache_clear()
    assert result.status == JobStatus.FAILED
    assert "\n" not in result.failure_reason
    assert "/opt/ml" in result.failure_reason and "mount namespace" in result.failure_reason
    assert "unshare" in result.failure_reason


@pytest.mark.parametrize("reason", ["unshare: unshare failed: Operation not permitted"])
def test_a_refused_namespace_names_the_systems_reason(monkeypatch, reason):
    class Refused:
        returncode = 1
        stderr = reason + "\n"

    monkeypatch.setattr(sagemaker_paths.subprocess, "run", lambda *a, **k: Refused())
    sagemaker_paths._probe.cache_clear()
    try:
        with pytest.raises(Exception, match="Operation not permitted"):
            sagemaker_paths.check_mount_namespace()
    finally:
        sagemaker_paths._probe.cache_clear()
