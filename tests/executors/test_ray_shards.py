"""instance_count N > 1 as N shards: a sharded input split by file, outputs gathered once all shards succeeded."""

from __future__ import annotations

from pathlib import Path

from forgeline.executors.ray_shards import merge_shards, shard_specs
from forgeline.jobs.spec import CollectedOutput, FailureKind, JobKind, JobResult, JobSpec, JobStatus, StagedInput
from forgeline.store.artifacts import ArtifactStore


def transform_like(artifacts: ArtifactStore, files: int, count: int) -> JobSpec:
    data = artifacts.uri("data")
    for n in range(files):
        artifacts.write_bytes(artifacts.uri("data", f"part-{n}" if n % 2 else f"sub/part-{n}"), f"{n}\n".encode())
    return JobSpec(kind=JobKind.PROCESSING, job_id="e/Predict/1", instance_count=count,
                   inputs=(StagedInput(data, "input/data", sharded=True), StagedInput(artifacts.uri("model"), "model")),
                   outputs=(CollectedOutput("output", "output", artifacts.uri("out")),))


def test_each_shard_gets_every_nth_file_in_its_folder_and_the_other_inputs_whole(tmp_path: Path):
    artifacts = ArtifactStore(str(tmp_path / "store"))
    shards = shard_specs(transform_like(artifacts, files=5, count=2), artifacts)
    assert [s.job_id for s in shards] == ["e/Predict/1#1", "e/Predict/1#2"]
    assert [s.env for s in shards] == [{"FORGELINE_SHARD_INDEX": "0", "FORGELINE_SHARD_COUNT": "2"},
                                       {"FORGELINE_SHARD_INDEX": "1", "FORGELINE_SHARD_COUNT": "2"}]
    staged = [[(i.source.rsplit("/", 2)[-2:], i.destination) for i in s.inputs if i.destination != "model"]
              for s in shards]
    every = sorted(x for shard in staged for x in shard)
    assert len(every) == 5 and len(staged[0]) == 3 and len(staged[1]) == 2
    assert (["sub", "part-0"], "input/data/sub") in every and (["data", "part-1"], "input/data") in every
    assert all(any(i.destination == "model" for i in s.inputs) for s in shards)
    assert all(s.outputs[0].destination != artifacts.uri("out") for s in shards)  # each its own staging place


def test_never_more_shards_than_files_and_one_instance_is_the_job_itself(tmp_path: Path):
    artifacts = ArtifactStore(str(tmp_path / "store"))
    assert len(shard_specs(transform_like(artifacts, files=2, count=8), artifacts)) == 2
    single = transform_like(artifacts, files=2, count=1)
    assert shard_specs(single, artifacts) == [single]


def test_outputs_are_gathered_in_the_destination_only_when_every_shard_succeeded(tmp_path: Path):
    artifacts = ArtifactStore(str(tmp_path / "store"))
    spec = transform_like(artifacts, files=4, count=2)
    shards = shard_specs(spec, artifacts)
    for n, shard in enumerate(shards):
        artifacts.write_bytes(shard.outputs[0].destination + f"/part-{n}.out", f"{n}\n".encode())
    failed = JobResult(JobStatus.FAILED, failure_kind=FailureKind.JOB_FAILED, failure_reason="shard 2 broke")
    assert merge_shards(spec, [JobResult(JobStatus.SUCCEEDED), failed], artifacts) == failed
    assert not artifacts.exists(artifacts.uri("out"))
    merged = merge_shards(spec, [JobResult(JobStatus.SUCCEEDED)] * 2, artifacts)
    assert merged.status is JobStatus.SUCCEEDED and merged.outputs == {"output": artifacts.uri("out")}
    assert sorted(Path(p).name for p in artifacts.list(artifacts.uri("out"))) == ["part-0.out", "part-1.out"]
