"""Training jobs in script mode: SageMaker's contract, metrics from the log, checkpoint sync and spot restarts.

The job directory is laid out as SageMaker's ``/opt/ml``: ``input/data/<channel>`` (SM_CHANNEL_<NAME>),
``input/config/hyperparameters.json``, ``model`` (SM_MODEL_DIR), ``output/data`` (SM_OUTPUT_DATA_DIR) and
``checkpoints`` (SM_CHECKPOINT_DIR). The script runs as ``python <entry_point> --<name> <value> ...`` with
the job directory as its working directory. After a zero exit the model dir is packed into model.tar.gz and
stored with the output data dir; the rest of the job directory stays where it is.

With ``restart_on_interruption`` (``use_spot_instances``), a process killed by a signal forgeline did not
send is treated like a reclaimed spot instance: the model and output dirs are emptied, the checkpoints are
restored afresh from the checkpoint URI, and the script starts again, until it ends some other way or
``max_wait_seconds`` have passed since the first start. ``max_run_seconds`` bounds the running time of all
starts together.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeline.errors import JobError
from forgeline.jobs.checkpoints import POLL_SECONDS, CheckpointSync
from forgeline.jobs.control import JobControl, ended_by_forgeline
from forgeline.jobs.environments import job_interpreter
from forgeline.jobs.metrics import MetricRecorder, metric_series_path
from forgeline.jobs.process import (
    TIMEOUT_GRACE_SECONDS,
    ScriptExit,
    adopted_exit,
    check_command_size,
    failed_script_result,
    note_in_log,
    run_script,
    script_environment,
    staging_failure,
)
from forgeline.jobs.results import complete_job, failure_of, infrastructure_failure, interrupted, signal_name
from forgeline.jobs.sagemaker_paths import OPT_ML, at_opt_ml
from forgeline.jobs.spec import CollectedOutput, JobResult, JobSpec, TrainingSpec
from forgeline.jobs.workspace import CODE_FOLDER, prepare_workspace

if TYPE_CHECKING:
    from forgeline.store.artifacts import ArtifactStore

MODEL_DIR = "model"
OUTPUT_DIR = "output"
OUTPUT_DATA_DIR = "output/data"
MODEL_ARCHIVE = "output/model.tar.gz"
INPUT_DIR = "input"
INPUT_CONFIG_DIR = "input/config"
HYPERPARAMETERS_FILE = "input/config/hyperparameters.json"
CHECKPOINT_DIR = "checkpoints"
CURRENT_HOST = "algo-1"
MODEL_OUTPUT = "model"
OUTPUT_DATA_OUTPUT = "output_data"


def channel_destination(channel: str) -> str:
    """Where a channel's data is staged, relative to the job directory."""
    return f"{INPUT_DIR}/data/{channel}"


def training_outputs(model_uri: str, output_data_uri: str) -> tuple[CollectedOutput, ...]:
    """The outputs a training job stores after a zero exit: model.tar.gz and the output data dir."""
    return (CollectedOutput(MODEL_OUTPUT, MODEL_ARCHIVE, model_uri),
            CollectedOutput(OUTPUT_DATA_OUTPUT, OUTPUT_DATA_DIR, output_data_uri, optional=True))


def hyperparameter_text(value: Any) -> str:
    """A hyperparameter as it appears on the command line: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def hyperparameter_arguments(hyperparameters: Mapping[str, Any]) -> list[str]:
    """``--name value`` for every hyperparameter, in the order given."""
    return [part for name, value in hyperparameters.items() for part in (f"--{name}", hyperparameter_text(value))]


def training_environment(spec: JobSpec, training: TrainingSpec, job_dir: Path) -> dict[str, str]:
    """SageMaker's script-mode variables, every folder inside the job directory."""
    def at(relative: str) -> str:
        return str(job_dir / relative)

    code = Path(spec.code or "")
    env = {
        "SM_MODEL_DIR": at(MODEL_DIR),
        "SM_OUTPUT_DIR": at(OUTPUT_DIR),
        "SM_OUTPUT_DATA_DIR": at(OUTPUT_DATA_DIR),
        "SM_INPUT_DIR": at(INPUT_DIR),
        "SM_INPUT_CONFIG_DIR": at(INPUT_CONFIG_DIR),
        "SM_CHECKPOINT_DIR": at(CHECKPOINT_DIR),
        "FORGELINE_CHECKPOINT_DIR": at(CHECKPOINT_DIR),
        "SM_CHANNELS": json.dumps(sorted(training.channels)),
        "SM_HPS": json.dumps(training.hyperparameters),
        "SM_USER_ARGS": json.dumps(hyperparameter_arguments(training.hyperparameters)),
        "SM_NUM_CPUS": str(_cpu_count()),
        "SM_NUM_GPUS": "0",
        "SM_CURRENT_HOST": CURRENT_HOST,
        "SM_HOSTS": json.dumps([CURRENT_HOST]),
        "SM_CURRENT_INSTANCE_TYPE": training.instance_type or "local",
        "SM_MODULE_DIR": at(CODE_FOLDER) if spec.source_dir else str(code.parent),
        "SM_USER_ENTRY_POINT": os.path.relpath(code, spec.source_dir) if spec.source_dir else code.name,
    }
    env.update({f"SM_CHANNEL_{channel.upper()}": at(channel_destination(channel)) for channel in training.channels})
    env.update({f"SM_HP_{name.upper()}": hyperparameter_text(value)
                for name, value in training.hyperparameters.items()})
    return env


def pack_model(model_dir: Path, archive: Path) -> None:
    """Pack the content of the model dir (not the dir itself) into a gzipped tar, as SageMaker does."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        for entry in sorted(model_dir.iterdir()):
            tar.add(entry, arcname=entry.name)


def run_training_job(
    spec: JobSpec,
    artifacts: ArtifactStore,
    control: JobControl,
    *,
    python: str = sys.executable,
    timeout_grace_seconds: float = TIMEOUT_GRACE_SECONDS,
    checkpoint_poll_seconds: float = POLL_SECONDS,
) -> JobResult:
    """Run one training job to its end, restarting it after interruptions when asked; never raises."""
    what = _what(spec)
    if control.cause is not None:
        return ended_by_forgeline(control.cause, what, spec.max_run_seconds)
    training = spec.training
    if training is None:
        return infrastructure_failure(JobError(f"job {spec.job_id} is not a training job (it has no training spec)"))
    try:
        recorder = MetricRecorder(training.metric_definitions, metric_series_path(spec.log_path))
    except Exception as exc:  # a regex that does not compile (definitions are checked, specs may be hand-made)
        return infrastructure_failure(exc)
    try:
        try:
            run = _start(spec, training, artifacts, control, recorder, what, python, timeout_grace_seconds,
                         checkpoint_poll_seconds)
        except Exception as exc:  # staging the code or inputs, or choosing the interpreter
            return staging_failure(exc, spec)
        result = run.until_done()
    except Exception as exc:  # a checkpoint restore or packing the model
        result = failure_of(exc)
    finally:
        recorder.close()
    return dataclasses.replace(result, metrics=recorder.samples)


def _start(spec: JobSpec, training: TrainingSpec, artifacts: ArtifactStore, control: JobControl,
           recorder: MetricRecorder, what: str, python: str, grace_seconds: float,
           poll_seconds: float) -> _TrainingRun:
    model_uri = next((o.destination for o in spec.outputs if o.name == MODEL_OUTPUT), None)
    if model_uri is None:
        raise JobError(f"training job {spec.job_id} has no '{MODEL_OUTPUT}' output to store model.tar.gz at")
    workspace = prepare_workspace(spec, artifacts)
    if workspace.code is None:
        raise JobError(f"training job {spec.job_id} has no entry point to run")
    hyperparameters = workspace.job_dir / HYPERPARAMETERS_FILE
    hyperparameters.parent.mkdir(parents=True, exist_ok=True)
    hyperparameters.write_text(json.dumps({k: hyperparameter_text(v) for k, v in training.hyperparameters.items()}))
    sync = CheckpointSync(artifacts, training.checkpoint_uri, workspace.job_dir / CHECKPOINT_DIR,
                          poll_seconds=poll_seconds, on_error=lambda message: note_in_log(spec.log_path, message))
    command = [job_interpreter(spec, python), str(workspace.code),
               *hyperparameter_arguments(training.hyperparameters)]
    seen_at = Path(OPT_ML) if spec.sagemaker_paths else workspace.job_dir  # where the script sees its folders
    env = script_environment(spec, workspace.job_dir, training_environment(spec, training, seen_at))
    check_command_size(command, env, spec)
    return _TrainingRun(
        spec=spec, training=training, artifacts=artifacts, control=control, recorder=recorder, sync=sync,
        what=what, grace_seconds=grace_seconds, job_dir=workspace.job_dir, model_uri=model_uri,
        command=at_opt_ml(command, workspace.job_dir) if spec.sagemaker_paths else command,
        env=env,
    )


@dataclass
class _TrainingRun:
    """The starts of one training job's process, until one of them ends it."""

    spec: JobSpec
    training: TrainingSpec
    artifacts: ArtifactStore
    control: JobControl
    recorder: MetricRecorder
    sync: CheckpointSync
    what: str
    grace_seconds: float
    job_dir: Path
    model_uri: str
    command: list[str]
    env: dict[str, str]
    interruptions: list[dict[str, str]] = field(default_factory=list)

    def until_done(self) -> JobResult:
        """Start the script, and again after each interruption that may be restarted; the final result."""
        first_start = time.monotonic()
        ran = 0.0
        while True:
            restored_from = self._fresh_instance()
            if self.interruptions:  # this start is a restart: it becomes an attempt of its own
                self.interruptions[-1]["resumed_from"] = restored_from
                self.control.restarted(f"{self.interruptions[-1]['reason']}, which forgeline did not send; "
                                       f"restarted from {restored_from}")
            started = time.monotonic()
            self.sync.start()
            try:
                ended = run_script(
                    self.command, cwd=self.job_dir, env=self.env, log_path=self.spec.log_path,
                    control=self.control, line_callbacks=(self.recorder,),
                    max_run_seconds=None if self.spec.max_run_seconds is None
                    else max(self.spec.max_run_seconds - ran, 0.0),
                    grace_seconds=self.grace_seconds, final=not self.training.restart_on_interruption,
                )
            finally:
                self.sync.stop()
            ran += time.monotonic() - started
            signal_number = ended.interrupted_by_signal
            if signal_number is None or not self.training.restart_on_interruption:
                return self._finish(ended)
            waited = time.monotonic() - first_start
            max_wait = self.training.max_wait_seconds
            if max_wait is not None and waited >= max_wait:
                result = interrupted(self.what, signal_number, ended.exit_code)
                reason = (f"{result.failure_reason}; not restarted: {waited:.0f} s have passed since the first "
                          f"start, more than max_wait ({max_wait:g} s)")
                return dataclasses.replace(result, failure_reason=reason, properties=self._properties())
            if self.control.cause is not None:  # stopped while it was dying
                return dataclasses.replace(ended_by_forgeline(self.control.cause, self.what,
                                                              self.spec.max_run_seconds),
                                           properties=self._properties())
            self._record_interruption(f"killed by signal {signal_name(signal_number)}")

    def _fresh_instance(self) -> str:
        """Empty model and output dirs, checkpoints as last uploaded (a new spot instance); says what it restored."""
        for folder in (MODEL_DIR, OUTPUT_DATA_DIR):
            shutil.rmtree(self.job_dir / folder, ignore_errors=True)
            (self.job_dir / folder).mkdir(parents=True)
        restored = self.sync.restore()
        uri = self.training.checkpoint_uri
        if not restored:
            return f"scratch (no checkpoint at {uri} yet)"
        note_in_log(self.spec.log_path, f"restored {restored} checkpoint file(s) from {uri}")
        names = sorted(str(p.relative_to(self.sync.local_dir)) for p in self.sync.local_dir.rglob("*") if p.is_file())
        shown = ", ".join(names[-3:]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return f"checkpoint {uri} ({shown})"

    def _record_interruption(self, reason: str) -> None:
        self.interruptions.append({"at": datetime.now(UTC).isoformat(), "reason": reason})
        self.recorder.attempt += 1
        note_in_log(self.spec.log_path, f"training was {reason}, which forgeline did not send; restarting from "
                                        f"the last checkpoint (start {self.recorder.attempt})")

    def _finish(self, ended: ScriptExit) -> JobResult:
        return finish_training(self.spec, self.training, self.artifacts, ended, self.what,
                               {"interruptions": list(self.interruptions)})

    def _properties(self) -> dict[str, Any]:
        return {"interruptions": list(self.interruptions), "instance_type": self.training.instance_type,
                "instance_count": self.training.instance_count}


def finish_training(spec: JobSpec, training: TrainingSpec, artifacts: ArtifactStore, ended: ScriptExit,
                    what: str, properties: dict[str, Any]) -> JobResult:
    """The result of a training script's last start: a failure, or model.tar.gz packed and outputs stored."""
    properties = {**properties, "instance_type": training.instance_type, "instance_count": training.instance_count}
    failure = failed_script_result(ended, what, spec)
    if failure is not None:
        return dataclasses.replace(failure, properties=properties)
    job_dir = Path(spec.job_dir)
    model_uri = next(o.destination for o in spec.outputs if o.name == MODEL_OUTPUT)
    pack_model(job_dir / MODEL_DIR, job_dir / MODEL_ARCHIVE)
    return complete_job(spec, artifacts, ended.exit_code, {"model_artifacts": model_uri, **properties})


def adopt_training_job(spec: JobSpec, artifacts: ArtifactStore) -> JobResult | None:
    """The result of a training job whose script ended while no orchestrator watched it; None to run it again.

    A spot job killed by a signal is not adopted: running it again restarts it from its checkpoints.
    """
    ended = adopted_exit(Path(spec.job_dir), spec.log_path)
    if ended is None or spec.training is None:
        return None
    if ended.interrupted_by_signal is not None and spec.training.restart_on_interruption:
        return None
    try:
        return finish_training(spec, spec.training, artifacts, ended, _what(spec), {"interruptions": []})
    except Exception as exc:  # packing the model or storing it
        return infrastructure_failure(exc)


def _what(spec: JobSpec) -> str:
    return f"training script {Path(spec.code).name}" if spec.code else f"training job {spec.job_id}"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
