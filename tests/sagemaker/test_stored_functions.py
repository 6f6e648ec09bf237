"""The job side of an SDK @step: payloads written by the real SDK's classes are hash- or HMAC-checked, their
placeholders resolved (typed parameters, step properties, an older SDK's DelayedReturn by URI), and the return
value stored in the SDK's layout; an altered payload or a wrong key fails the call with one clear message."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import pytest

from forgeline.sagemaker.stored_functions import SECRET_KEY_ENV, PayloadStore, StoredFunctionError, run_stored_function
from forgeline.store.artifacts import ArtifactStore

cloudpickle = pytest.importorskip("cloudpickle")

# Run outside the tests folder, where `sagemaker` is the SDK (here it is the name of the tests' package).
WRITE_WITH_SDK = """
import hashlib, hmac, json, sys
from pathlib import Path
import cloudpickle
from sagemaker.remote_function.core.pipeline_variables import (
    _DelayedReturn, _ExecutionVariable, _ParameterBoolean, _ParameterInteger, _Properties, _S3BaseUriIdentifier)

folder, key = Path(sys.argv[1]), sys.argv[2]
def store(name, value):
    payload = cloudpickle.dumps(value)
    digest = hmac.new(key.encode(), payload, hashlib.sha256).hexdigest() if key else hashlib.sha256(payload).hexdigest()
    (folder / name).mkdir(parents=True)
    (folder / name / "payload.pkl").write_bytes(payload)
    (folder / name / "metadata.json").write_text(json.dumps({"sha256_hash": digest, "version": "2023-04-24",
                                                            "python_version": "3", "serialization_module": "cloudpickle"}))
def fail(*args, **kwargs):
    raise ValueError(f"no rows for {args[3]}")
store("function", fail if sys.argv[3:] == ["fail"] else lambda flag, count, model, run, upstream=None: {
    "flag": flag, "count": count * 2, "model": model, "run": run, "upstream": upstream})
store("arguments", ((_ParameterBoolean("Flag"), _ParameterInteger("Count"),
                     _Properties("Steps.Train.ModelArtifacts.S3ModelArtifacts"), _ExecutionVariable("PipelineExecutionId")),
                    {"upstream": _DelayedReturn(uri=[_S3BaseUriIdentifier(), _ExecutionVariable("PipelineExecutionId"),
                                                     "Up", "results"], reference_path=(("__getitem__", "rows"),))}))
"""

REFERENCES = {"Parameters.Flag": "true", "Parameters.Count": 21, "Execution.PipelineExecutionId": "exec1",
              "Steps.Train.ModelArtifacts.S3ModelArtifacts": "/models/train/model.tar.gz"}


def stored_by_sdk(root: Path, key: str = "", *mode: str) -> Path:
    """A step's function and arguments as the SDK stores them (signed with ``key`` when given; ``fail``: a function
    that raises)."""
    folder = root / "bucket" / "pipe" / "Fit" / "2026-01-01-00-00-00-000"
    done = subprocess.run([sys.executable, "-c", WRITE_WITH_SDK, str(folder), key, *mode], capture_output=True,
                          text=True, cwd=root, timeout=120)
    if done.returncode != 0 and "No module named 'sagemaker" in done.stderr:
        pytest.skip("the SageMaker SDK is not installed")
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def upstream_result(root: Path, key: str | None) -> None:
    """What the step ``Up`` returned in execution exec1, where an older SDK's DelayedReturn URI points."""
    PayloadStore(ArtifactStore(str(root)), key).write(str(root / "bucket" / "pipe" / "exec1" / "Up" / "results"),
                                                      {"rows": 12})


def run(root: Path, folder: Path) -> object:
    return run_stored_function(str(folder), str(root / "bucket" / "pipe" / "exec1" / "Fit" / "results"),
                               str(root / "bucket" / "pipe"), REFERENCES, results_json=True)


def test_stored_function_runs_with_its_placeholders_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    folder = stored_by_sdk(tmp_path)
    upstream_result(tmp_path, None)
    expected = {"flag": True, "count": 42, "model": "/models/train/model.tar.gz", "run": "exec1", "upstream": 12}
    assert run(tmp_path, folder) == expected
    results = tmp_path / "bucket" / "pipe" / "exec1" / "Fit" / "results"
    payload = (results / "payload.pkl").read_bytes()
    assert json.loads((results / "metadata.json").read_text())["sha256_hash"] == hashlib.sha256(payload).hexdigest()
    assert cloudpickle.loads(payload) == expected
    assert json.loads((results / "results.json").read_text()) == {"Result": expected, "Exception": None}


def test_payloads_signed_with_the_sdk_secret_key_are_checked_with_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = stored_by_sdk(tmp_path, key="s3cr3t")
    upstream_result(tmp_path, "s3cr3t")
    monkeypatch.setenv(SECRET_KEY_ENV, "s3cr3t")
    assert run(tmp_path, folder)["upstream"] == 12
    payload = (tmp_path / "bucket" / "pipe" / "exec1" / "Fit" / "results" / "payload.pkl").read_bytes()
    written = json.loads((tmp_path / "bucket" / "pipe" / "exec1" / "Fit" / "results" / "metadata.json").read_text())
    assert written["sha256_hash"] == hmac.new(b"s3cr3t", payload, hashlib.sha256).hexdigest()

    monkeypatch.setenv(SECRET_KEY_ENV, "another key")
    with pytest.raises(StoredFunctionError, match="integrity check failed.*function/payload.pkl.*another key"):
        run(tmp_path, folder)
    monkeypatch.delenv(SECRET_KEY_ENV)
    with pytest.raises(StoredFunctionError, match="integrity check failed"):
        run(tmp_path, folder)


def test_an_altered_payload_is_refused_before_it_is_unpickled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    folder = stored_by_sdk(tmp_path)
    upstream_result(tmp_path, None)
    arguments = folder / "arguments" / "payload.pkl"
    arguments.write_bytes(arguments.read_bytes().replace(b"Count", b"Cnt_X"))
    with pytest.raises(StoredFunctionError) as refused:
        run(tmp_path, folder)
    assert "integrity check failed" in str(refused.value) and "arguments/payload.pkl" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "bucket" / "pipe" / "exec1" / "Fit" / "results").exists()


def test_missing_payloads_and_references_are_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    with pytest.raises(StoredFunctionError, match="cannot read the stored payload in .*nowhere/function"):
        run_stored_function(str(tmp_path / "nowhere"), str(tmp_path / "out"), str(tmp_path), {})
    folder = stored_by_sdk(tmp_path)
    with pytest.raises(StoredFunctionError, match="passes no value for Parameters.Flag"):
        run_stored_function(str(folder), str(tmp_path / "out"), str(tmp_path), {})


def test_an_exception_of_the_function_fails_the_call_and_is_stored_for_the_sdk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    folder = stored_by_sdk(tmp_path, "", "fail")
    upstream_result(tmp_path, None)
    with pytest.raises(ValueError, match="no rows for exec1"):
        run(tmp_path, folder)
    stored = tmp_path / "bucket" / "pipe" / "exec1" / "Fit" / "exception"
    payload = (stored / "payload.pkl").read_bytes()
    assert json.loads((stored / "metadata.json").read_text())["sha256_hash"] == hashlib.sha256(payload).hexdigest()
    error = cloudpickle.loads(payload)
    assert isinstance(error, ValueError) and str(error) == "no rows for exec1"
    assert not (tmp_path / "bucket" / "pipe" / "exec1" / "Fit" / "results").exists()
