"""Cache keys and the step cache: what a key is made of, how a miss is explained, which entry a lookup returns.

Keys are computed from real JobSpecs built the way the orchestrator builds them (build_job_spec), for a tiny
project in tmp_path; the cache works over a real SQLite metadata store and a real artifact folder.
"""

from __future__ import annotations

import os
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from forgeline.config import Settings
from forgeline.engine.caching import StepCache, compute_cache_key, explain_miss
from forgeline.engine.fingerprint import Fingerprinter
from forgeline.engine.jobspecs import JobContext, build_job_spec
from forgeline.engine.resolve import ResolutionContext
from forgeline.errors import ArtifactNotFoundError
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow import (
    CacheConfig,
    ParameterFloat,
    ParameterString,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
)

CACHED = CacheConfig(enable_caching=True)


class KeyLab:
    """A project with one processing step, and the cache key of that step as an execution would compute it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings = Settings.from_env({"FORGELINE_HOME": str(root / ".forgeline")})
        self.artifacts = ArtifactStore(self.settings.artifact_root)
        self.tick = time.time_ns() - 10**12
        self.write("clean.py", """
            import sys
            from pathlib import Path
            import rules
            Path("out/clean.csv").write_text(rules.apply(Path("in/raw.csv").read_text(), sys.argv[1:]))
        """)
        self.write("rules.py", """
            def apply(text, args):
                return text.lower() + " ".join(args)
        """)
        self.write("raw.csv", "A,B\n1,2\n")

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        self.tick += 10**6
        os.utime(path, ns=(self.tick, self.tick))

    def step(self, **changes) -> ProcessingStep:
        ratio = ParameterFloat("Ratio", default_value=0.5)
        arguments = {"code": "clean.py", "inputs": [ProcessingInput(source="raw.csv", destination="in")],
                     "outputs": [ProcessingOutput(output_name="data", source="out")],
                     "arguments": ["--ratio", ratio], "env": {"MODE": "strict"}, "cache_config": CACHED}
        arguments.update(changes)
        return ProcessingStep(name="Clean", **arguments)

    def key(self, step: ProcessingStep | None = None, parameters: dict | None = None,
            execution_id: str = "exec00000001", attempt: int = 1, fingerprinter: Fingerprinter | None = None):
        step = step or self.step()
        parameters = {"Ratio": 0.5, "Unused": "x", **(parameters or {})}
        resolution = ResolutionContext(execution_id, "keys", datetime.now(UTC), parameters)
        ctx = JobContext(execution_id, attempt, self.settings, self.artifacts, resolution, str(self.root))
        spec = build_job_spec(step, ctx)
        return compute_cache_key(step, spec, parameters, str(self.root), fingerprinter or Fingerprinter())


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return KeyLab(tmp_path)


def test_a_key_names_everything_it_depends_on(lab):
    components = lab.key().components
    assert components["kind"] == "Processing"
    assert components["arguments"] == '["--ratio", "0.5"]'
    assert components["parameter:Ratio"] == "0.5"
    assert "parameter:Unused" not in components  # the step does not use it
    assert components["env:MODE"] == "strict"
    assert {"code:clean.py", "code:rules.py"} <= set(components)  # the script and the helper it imports
    assert components["input:in"] == Fingerprinter().fingerprint(str(lab.root / "raw.csv"))


def test_the_same_step_in_another_execution_and_attempt_has_the_same_key(lab):
    # job folders, log paths and output URIs carry the execution id and attempt: none of them is content
    assert lab.key(execution_id="aaaaaaaaaaaa", attempt=1).digest == lab.key(execution_id="bbbbbbbbbbbb",
                                                                             attempt=3).digest


def test_a_timestamp_alone_does_not_change_the_key(lab):
    before = lab.key().digest
    for name in ("clean.py", "rules.py", "raw.csv"):
        os.utime(lab.root / name)  # touched: new mtime, same bytes
    assert lab.key().digest == before


@pytest.mark.parametrize("change, expected_reason", [
    (lambda lab: lab.write("clean.py", (lab.root / "clean.py").read_text().replace("sys.argv[1:]", "sys.argv[2:]")),
     "code file 'clean.py' changed"),
    (lambda lab: lab.write("rules.py", (lab.root / "rules.py").read_text().replace("lower", "upper")),
     "code file 'rules.py' changed"),
    (lambda lab: lab.write("raw.csv", "A,B\n1,3\n"), "input 'in' changed"),
])
def test_one_changed_character_of_code_or_data_changes_the_key_and_says_where(lab, change, expected_reason):
    before = lab.key()
    change(lab)
    after = lab.key()
    assert after.digest != before.digest
    assert explain_miss(after.components, before.components) == [expected_reason]


def test_a_parameter_the_step_uses_changes_the_key_and_one_it_does_not_use_does_not(lab):
    before = lab.key()
    assert lab.key(parameters={"Unused": "y"}).digest == before.digest
    after = lab.key(parameters={"Ratio": 0.7})
    assert after.digest != before.digest
    assert explain_miss(after.components, before.components) == [
        'arguments changed: ["--ratio", "0.5"] -> ["--ratio", "0.7"]',
        "parameter 'Ratio' changed: 0.5 -> 0.7",
    ]


def test_environment_variables_and_declared_outputs_are_part_of_the_key(lab):
    base = lab.key()
    env = lab.key(lab.step(env={"MODE": "lenient"}))
    assert explain_miss(env.components, base.components) == ["environment variable 'MODE' changed: strict -> lenient"]
    outputs = lab.key(lab.step(outputs=[ProcessingOutput(output_name="data", source="out"),
                                        ProcessingOutput(output_name="report", source="report")],
                               property_files=[PropertyFile(name="R", output_name="report", path="r.json")]))
    assert outputs.digest != base.digest
    assert explain_miss(outputs.components, base.components) == ["outputs changed", "property files is new"]


def test_a_parameter_used_as_an_input_source_is_part_of_the_key(lab):
    source = ParameterString("Data", default_value="raw.csv")
    step = lab.step(inputs=[ProcessingInput(source=source, destination="in")])
    (lab.root / "other.csv").write_text("A,B\n1,2\n")  # the same bytes elsewhere
    first = lab.key(step, parameters={"Data": "raw.csv"})
    other = lab.key(step, parameters={"Data": "other.csv"})
    assert other.components["input:in"] == first.components["input:in"]  # content, not path
    assert explain_miss(other.components, first.components) == ["parameter 'Data' changed: raw.csv -> other.csv"]


def test_a_source_dir_counts_as_a_whole(lab):
    (lab.root / "job").mkdir()
    lab.write("job/run.py", "print('hi')\n")
    lab.write("job/settings.toml", "depth = 3\n")
    step = lab.step(code="run.py", source_dir="job")
    before = lab.key(step)
    lab.write("job/settings.toml", "depth = 4\n")
    after = lab.key(step)
    assert explain_miss(after.components, before.components) == ["code file 'job/settings.toml' changed"]


def test_a_missing_input_gives_no_key(lab):
    (lab.root / "raw.csv").unlink()
    with pytest.raises(ArtifactNotFoundError):
        lab.key()


def test_explain_miss_without_an_earlier_entry_and_for_new_and_gone_parts():
    assert explain_miss({"kind": "Processing"}, None) == ["no earlier cached result of this step"]
    assert explain_miss({"env:A": "1"}, {"env:B": "1"}) == [
        "environment variable 'A' is new", "environment variable 'B' is gone"]
    assert explain_miss({"package:numpy": "numpy==2.0"}, {"package:numpy": "numpy==1.26"}) == [
        "package 'numpy' changed: numpy==1.26 -> numpy==2.0"]


class CacheLab:
    """A real metadata store and artifact folder, with results recorded under one key."""

    def __init__(self, root: Path) -> None:
        self.store = SqlMetadataStore(f"sqlite:///{root / 'meta.db'}")
        self.artifacts = ArtifactStore(str(root / "artifacts"))
        self.cache = StepCache(self.store, self.artifacts)
        self.root = root

    def record(self, lab: KeyLab, key, execution_id: str) -> str:
        local = self.root / execution_id
        local.mkdir()
        (local / "clean.csv").write_text(execution_id)
        uri = self.artifacts.put(str(local), self.artifacts.uri("executions", execution_id, "Clean", "data"))
        self.cache.record(key, "keys", lab.step(), execution_id, {"data": uri},
                          {"PropertyFiles": {"R": {"n": 1}}})
        return uri


def test_a_lookup_returns_the_newest_entry_whose_artifacts_still_exist(lab, tmp_path):
    cache = CacheLab(tmp_path)
    key = lab.key()
    assert cache.cache.lookup(key, None) is None

    older = cache.record(lab, key, "older0000001")
    newer = cache.record(lab, key, "newer0000001")
    hit = cache.cache.lookup(key, None)
    assert (hit.execution_id, hit.outputs, hit.properties) == ("newer0000001", {"data": newer},
                                                               {"PropertyFiles": {"R": {"n": 1}}})

    cache.artifacts.delete(newer)  # deleted artifacts: that entry is not usable, the older one is
    assert cache.cache.lookup(key, None).outputs == {"data": older}
    cache.artifacts.delete(older)
    assert cache.cache.lookup(key, None) is None  # a miss, not an error


def test_an_entry_older_than_expire_after_is_not_used(lab, tmp_path):
    cache = CacheLab(tmp_path)
    key = lab.key()
    cache.record(lab, key, "exec00000001")
    assert cache.cache.lookup(key, timedelta(days=30)) is not None
    time.sleep(0.3)
    assert cache.cache.lookup(key, timedelta(seconds=0.2)) is None
    assert cache.cache.lookup(key, None) is not None


def test_a_lookup_never_answers_for_another_key(lab, tmp_path):
    cache = CacheLab(tmp_path)
    cache.record(lab, lab.key(), "exec00000001")
    assert cache.cache.lookup(lab.key(parameters={"Ratio": 0.9}), None) is None
