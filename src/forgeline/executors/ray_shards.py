"""A job of ``instance_count`` N > 1 as N shards, one actor each, and their results as the job's one result.

Each shard runs the same job with FORGELINE_SHARD_INDEX / FORGELINE_SHARD_COUNT set. An input marked
``sharded`` (a batch transform's data, SageMaker's ShardedByS3Key) is split by file: shard k gets every N-th
file, so each worker loads the model once and a file's records stay in order in its own output file. Every
other input goes to every shard whole. Each shard stores its outputs under a staging URI; once all succeeded
they are gathered into the job's destinations (files of the same name: the later shard's win).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from forgeline.executors.ray_job import SHARD_COUNT_ENV, SHARD_INDEX_ENV
from forgeline.executors.ray_staging import staging_uri
from forgeline.jobs.spec import CollectedOutput, FailureKind, JobKind, JobResult, JobSpec, JobStatus, StagedInput
from forgeline.store.artifacts import ArtifactStore

SHARDABLE = (JobKind.PROCESSING,)
"""Job kinds that run as several shards (a transform is a processing job of forgeline's own script)."""


def shard_specs(spec: JobSpec, artifacts: ArtifactStore) -> list[JobSpec]:
    """The specs of the job's shards; the spec itself when it runs as one."""
    count = spec.instance_count if spec.kind in SHARDABLE else 1
    sharded = [staged for staged in spec.inputs if staged.sharded]
    files = {staged.destination: _files(staged, artifacts) for staged in sharded}
    if files:
        count = min(count, max(len(found) for found in files.values()) or 1)
    if count <= 1:
        return [spec]
    return [_shard(spec, index, count, files, artifacts) for index in range(count)]


def merge_shards(spec: JobSpec, results: list[JobResult], artifacts: ArtifactStore) -> JobResult:
    """The job's result: the first shard that did not succeed, else every output gathered to its destination."""
    for result in results:
        if result.status is not JobStatus.SUCCEEDED:
            return result
    outputs: dict[str, str] = {}
    for output in spec.outputs:
        with tempfile.TemporaryDirectory(prefix="forgeline-shards-") as scratch:
            gathered = Path(scratch, output.name)
            gathered.mkdir()
            for index in range(len(results)):
                part = _part_uri(spec, index, output, artifacts)
                if artifacts.exists(part):
                    artifacts.get(part, gathered)
            if not output.optional and not any(gathered.iterdir()):
                return JobResult(status=JobStatus.FAILED, failure_kind=FailureKind.JOB_FAILED,
                                 failure_reason=f"output '{output.name}' was never written by any of the "
                                                f"{len(results)} shards; write it, or declare it optional=True")
            outputs[output.name] = artifacts.put(gathered, output.destination)
    artifacts.delete(staging_uri(artifacts, spec, "shards"))
    metrics = tuple(sample for result in results for sample in result.metrics)
    return replace(results[0], outputs=outputs, metrics=metrics)


def _shard(spec: JobSpec, index: int, count: int, files: dict[str, list[str]],
           artifacts: ArtifactStore) -> JobSpec:
    inputs: list[StagedInput] = []
    for staged in spec.inputs:
        if not staged.sharded:
            inputs.append(staged)
            continue
        base = staged.source.rstrip("/")
        for uri in files[staged.destination][index::count]:
            folder = uri[len(base) + 1:].rsplit("/", 1)[0] if "/" in uri[len(base) + 1:] else ""
            inputs.append(StagedInput(uri, f"{staged.destination}/{folder}".rstrip("/"), staged.code_rules))
    outputs = tuple(replace(output, destination=_part_uri(spec, index, output, artifacts), optional=True)
                    for output in spec.outputs)
    return replace(spec, job_id=f"{spec.job_id}#{index + 1}", instance_count=1,
                   job_dir=f"{spec.job_dir}-shard{index + 1}" if spec.job_dir else "",
                   inputs=tuple(inputs), outputs=outputs,
                   env={**spec.env, SHARD_INDEX_ENV: str(index), SHARD_COUNT_ENV: str(count)})


def _files(staged: StagedInput, artifacts: ArtifactStore) -> list[str]:
    if "://" not in staged.source and not Path(staged.source).is_absolute():
        return []  # relative to a folder of the orchestrator's machine: shipped whole, not split
    return artifacts.list(staged.source) if artifacts.is_dir(staged.source) else []


def _part_uri(spec: JobSpec, index: int, output: CollectedOutput, artifacts: ArtifactStore) -> str:
    return staging_uri(artifacts, spec, "shards", str(index + 1), output.name)
