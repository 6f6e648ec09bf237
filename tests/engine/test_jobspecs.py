"""Job specs of an execution with a code snapshot: code by snapshot id and relative path, no host folder in them."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime

import pytest

from forgeline.config import Settings
from forgeline.engine.caching import compute_cache_key
from forgeline.engine.code_snapshot import code_rules_of, pipeline_code_files
from forgeline.engine.fingerprint import Fingerprinter
from forgeline.engine.jobspecs import JobContext, build_job_spec
from forgeline.engine.resolve import ResolutionContext
from forgeline.jobs.placement import JobRoots, checkout_snapshot, place_job
from forgeline.jobs.spec import JobSpec
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.snapshots import save_snapshot
from forgeline.workflow import (
    Pipeline,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    TrainingStep,
    TransformInput,
    TransformStep,
    step,
)
from forgeline.workflow.policies import CacheConfig
from forgeline.workflow.steps.model import Model

FILES = {
    "src/prep.py": "import helpers\nprint(helpers.VALUE)\n",
    "src/helpers.py": "VALUE = 1\n",
    "requirements.txt": "\n",
    "train.py": "import shared\n",
    "shared.py": "X = 2\n",
    "serve/inference.py": "def model_fn(d):\n    return d\n",
}


@step(name="Double")
def double(x: int) -> int:
    return 2 * x


@pytest.fixture
def lab(tmp_path, monkeypatch):
    root = tmp_path / "project"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    monkeypatch.chdir(root)
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n")
    settings = Settings.from_env({"FORGELINE_HOME": str(tmp_path / "home")})
    pipeline = Pipeline(name="specs", steps=[
        ProcessingStep(name="Prep", code="prep.py", source_dir="src", requirements="requirements.txt",
                       inputs=[ProcessingInput(source=str(data), destination="in")],
                       outputs=[ProcessingOutput(output_name="out", source="out")],
                       cache_config=CacheConfig(enable_caching=True)),
        TrainingStep(name="Train", entry_point="train.py", cache_config=CacheConfig(enable_caching=True)),
        TransformStep(name="Score", model=Model(model_data=str(data), entry_point="inference.py",
                                                source_dir="serve"),
                      inputs=TransformInput(data=str(data))),
        double(3),
    ])
    return root, data, settings, pipeline


def specs(lab, snapshot: str | None) -> dict[str, JobSpec]:
    root, _, settings, pipeline = lab
    artifacts = ArtifactStore(settings.artifact_root)
    resolution = ResolutionContext("exec00000001", pipeline.name, datetime.now(UTC), {})
    ctx = JobContext("exec00000001", 1, settings, artifacts, resolution, str(root), snapshot)
    return {s.name: build_job_spec(s, ctx) for s in pipeline.steps}


def strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def test_a_spec_names_code_in_its_snapshot_and_no_folder_of_this_machine(lab):
    root, data, settings, _ = lab
    built = specs(lab, "a" * 64)
    prep, train, score, function = built["Prep"], built["Train"], built["Score"], built["Double"]
    assert (prep.code_snapshot, prep.source_dir, prep.code, prep.requirements) == (
        "a" * 64, "src", "src/prep.py", "requirements.txt")
    assert (prep.job_dir, prep.log_path, prep.envs_dir) == ("", "", None)  # the executor's to choose
    assert train.code == "train.py"
    assert score.code == "forgeline:jobs/entrypoints/batch_transform.py"
    assert [i.source for i in score.inputs if i.code_rules is not None] == ["serve"]
    # a module outside the working folder has a place of its own in the snapshot
    assert function.function.file.startswith("_external/") and function.function.file.endswith("/test_jobspecs.py")
    for spec in built.values():
        assert JobSpec.from_json(spec.to_json()) == spec
        absolute = {s for s in strings(json.loads(spec.to_json()))
                    if s.startswith("/") and not s.startswith(settings.artifact_root + "/")}  # artifact URIs
        # the only absolute paths left are the data the user gave and the user's working folder (for data)
        assert absolute <= {str(data), str(root)}, (spec.job_id, absolute)


def test_cache_keys_from_the_snapshot_equal_those_from_the_working_folder(lab):
    root, _, settings, pipeline = lab
    artifacts = ArtifactStore(settings.artifact_root)
    snapshot = save_snapshot(artifacts, pipeline_code_files(pipeline, str(root), code_rules_of(settings)))
    checkout = checkout_snapshot(artifacts, snapshot, settings.home / "code")
    from_folder, from_snapshot = specs(lab, None), specs(lab, snapshot)
    for name in ("Prep", "Train"):
        step_ = next(s for s in pipeline.steps if s.name == name)
        in_folder = compute_cache_key(step_, from_folder[name], {}, str(root), Fingerprinter())
        in_snapshot = compute_cache_key(step_, from_snapshot[name], {}, str(root), Fingerprinter(), str(checkout))
        assert in_snapshot.components == in_folder.components
    (root / "src" / "helpers.py").write_text("VALUE = 'edited'\n")  # the user's copy, not the snapshot's
    prep = next(s for s in pipeline.steps if s.name == "Prep")
    assert compute_cache_key(prep, specs(lab, snapshot)["Prep"], {}, str(root), Fingerprinter(),
                             str(checkout)).digest != compute_cache_key(
        prep, specs(lab, None)["Prep"], {}, str(root), Fingerprinter()).digest


def test_placing_a_job_checks_its_snapshot_out_once_and_fills_in_this_machines_folders(lab, tmp_path):
    root, _, settings, pipeline = lab
    artifacts = ArtifactStore(settings.artifact_root)
    snapshot = save_snapshot(artifacts, pipeline_code_files(pipeline, str(root), code_rules_of(settings)))
    (root / "src" / "prep.py").unlink()  # the snapshot is what runs
    roots = JobRoots(tmp_path / "jobs", tmp_path / "logs", tmp_path / "code", tmp_path / "envs")
    prep = specs(lab, snapshot)["Prep"]
    placed = place_job(prep, roots, artifacts)
    assert placed.job_dir == str(tmp_path / "jobs" / "exec00000001" / "Prep" / "1")
    assert placed.log_path == str(tmp_path / "logs" / "exec00000001" / "Prep" / "1.log")
    assert placed.code == str(tmp_path / "code" / snapshot / "src" / "prep.py")
    assert open(placed.code).read() == FILES["src/prep.py"]
    assert placed.requirements == str(tmp_path / "code" / snapshot / "requirements.txt")
    assert placed.envs_dir == str(tmp_path / "envs")
    assert place_job(prep, roots, artifacts) == placed  # the same places every time
    assert [p.name for p in (tmp_path / "code").iterdir()] == [snapshot]  # one checkout, no leftovers
