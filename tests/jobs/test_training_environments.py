"""Script jobs may run in a virtual environment built once from a requirements file, or under a given python."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from forgeline.jobs.control import JobControl
from forgeline.jobs.environments import READY_MARKER
from forgeline.jobs.processing import run_processing_job
from forgeline.jobs.spec import FailureKind, JobSpec, JobStatus, TrainingSpec
from forgeline.jobs.training import run_training_job, training_outputs
from forgeline.store.artifacts import ArtifactStore

from .conftest import processing_spec, write

PROBE = "forgeline_env_probe"
REPORT = """
import json, os, sys
import numpy  # from forgeline's own environment, seen through the new one
import forgeline_env_probe
print(json.dumps({"prefix": sys.prefix, "executable": sys.executable, "probe": forgeline_env_probe.VALUE}))
"""


def make_wheel(folder: Path, name: str = PROBE, version: str = "1.0") -> Path:
    """A pure-Python wheel built by hand, so installing it needs neither a build backend nor an index."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "VALUE = 42\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: forgeline-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


def report_of(spec: JobSpec) -> dict:
    line = next(line for line in Path(spec.log_path).read_text().splitlines() if line.startswith("{"))
    return json.loads(line)


def training_job(tmp_path: Path, code: Path, name: str, **fields) -> JobSpec:
    return JobSpec(
        kind="training", job_id=f"exec-1/{name}/1", job_dir=str(tmp_path / "jobs" / name),
        log_path=str(tmp_path / "logs" / f"{name}.log"), code=str(code), working_dir=str(code.parent),
        outputs=training_outputs(str(tmp_path / "artifacts" / name / "model.tar.gz"),
                                 str(tmp_path / "artifacts" / name / "output_data")),
        training=TrainingSpec(checkpoint_uri=str(tmp_path / "checkpoints" / name)), **fields,
    )


def test_an_environment_is_built_once_for_concurrent_jobs_and_reused_after(tmp_path, project, artifacts):
    assert importlib.util.find_spec(PROBE) is None, "the probe package must not be in forgeline's own environment"
    make_wheel(project)
    requirements = write(project / "requirements.txt", f"./{PROBE}-1.0-py3-none-any.whl\n")
    envs = tmp_path / "envs"
    code = write(project / "report.py", REPORT)
    environment = {"requirements": str(requirements), "envs_dir": str(envs)}
    first, second = (training_job(tmp_path, code, name, **environment) for name in ("train-a", "train-b"))

    with ThreadPoolExecutor(2) as pool:  # both need the environment at once: one builds, the other waits
        results = list(pool.map(lambda spec: run_training_job(spec, artifacts, JobControl()), [first, second]))
    assert [r.status for r in results] == [JobStatus.SUCCEEDED] * 2, [r.failure_reason for r in results]
    [env_dir] = [p for p in envs.iterdir() if p.is_dir()]
    assert (env_dir / READY_MARKER).is_file()
    logs = Path(first.log_path).read_text() + Path(second.log_path).read_text()
    assert logs.count("[forgeline] built environment") == 1
    assert logs.count("[forgeline] using environment") == 1
    for spec in (first, second):
        report = report_of(spec)
        assert report["prefix"] == str(env_dir)  # the job ran under the environment's python
        assert report["probe"] == 42

    # A processing job with the same requirements file reuses the environment.
    reuse = processing_spec(tmp_path, code, requirements=str(requirements), envs_dir=str(envs))
    result = run_processing_job(reuse, artifacts, JobControl())
    assert result.status is JobStatus.SUCCEEDED, result.failure_reason
    assert "[forgeline] using environment" in Path(reuse.log_path).read_text()
    assert report_of(reuse)["prefix"] == str(env_dir)
    assert [p.name for p in envs.iterdir() if p.is_dir()] == [env_dir.name]


def test_requirements_that_cannot_be_installed_fail_with_pips_own_words(tmp_path, project, artifacts):
    requirements = write(project / "requirements.txt", "./no-such-package-1.0-py3-none-any.whl\n")
    code = write(project / "report.py", "print('never')\n")
    spec = processing_spec(tmp_path, code, requirements=str(requirements), envs_dir=str(tmp_path / "envs"))
    result = run_processing_job(spec, artifacts, JobControl())

    assert result.status is JobStatus.FAILED
    assert result.failure_kind is FailureKind.INFRASTRUCTURE_ERROR
    assert "could not install" in (result.failure_reason or "")
    assert "no-such-package" in (result.failure_reason or "")
    assert not any((p / READY_MARKER).exists() for p in (tmp_path / "envs").iterdir())  # retried next time


def test_a_job_runs_under_the_python_it_names(tmp_path, project, artifacts: ArtifactStore):
    code = write(project / "report.py", "import json, sys\nprint(json.dumps({'executable': sys.executable}))\n")
    spec = processing_spec(tmp_path, code, python=sys.executable)
    result = run_processing_job(spec, artifacts, JobControl(), python="/nonexistent/python")

    assert result.status is JobStatus.SUCCEEDED, result.failure_reason
    assert report_of(spec)["executable"] == sys.executable
